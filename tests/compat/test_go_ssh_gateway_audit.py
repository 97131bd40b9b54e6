"""The SSH tunnel gateway side by side with Go frps 0.65, driven by the real OpenSSH client: what
the ssh user sees (stdout, the exit status, when the session ends), what the tunnel does, and
what frps logs, in the cases tests/compat/test_go_ssh_gateway.py does not compare.

* authentication with ``authorizedKeysFile``: an unlisted key, a client that only tries password
  or keyboard-interactive, a missing file, and the file parsed as x/crypto parses it (a line
  without a key skipped while a key follows, a bad line after the last key refusing the file, the
  comment's inner blanks kept, the key type word not checked; unlike Go, blank lines and comments
  after the last key are read past: Go refuses every key of such a file); the log line is x/crypto's
  ServerAuthError text (``[ssh: no auth passed yet, ...]``, one entry per failed attempt);
* the host key: the errors that stop frps carry Go's text (``open PATH: no such file or
  directory``, ``ssh: no key found``, ``read PATH: is a directory``, ``ssh: this private key
  is passphrase protected``); our line adds the config key in parentheses; the server banner;
* the virtual client's log lines (``[sshVirtualClient] try to connect to server...``, ``login
  to server success``, ``proxy added``, ``start proxy success`` / ``start error``, the login
  failure's lines, ``wait proxy status ready error: ssh tunnel server closed``);
* what server plugins get: the NewProxy content of each proxy type, as Go's (no
  ``bandwidth_limit_mode`` for the default "client"), and the Login op for ssh users;
* the session: a proxy name taken, a remote port taken or not in allowPorts (ours keeps Go's
  words and names the port and the rule, README "port not allowed: 6000 is not in ..."), ``-R``
  with a bind address, two ``-R``, no ``-R`` (3 s, then closed), ``-N``, stdin closed (the
  session stays), SIGINT (the proxy goes away at once).

Left out, on purpose:

* what ssh prints on stderr after frps closes the connection on an error (usage, a bad flag, a
  refused proxy): racy in Go itself ("Connection to HOST closed by remote host." or
  "client_loop: send disconnect: Broken pipe", depending on whether ssh reads the close or
  writes first), so only stdout and the exit status are compared there;
* ``-R 0:...`` (a port to allocate): Go answers without a port and OpenSSH aborts (``parse
  packet: incomplete message``); ours answers with a nominal port and works (docs/protocol.md
  5.14, a deliberate difference);
* the Login op's ``client_address`` (Go: ``pipe``; ours: the ssh user's address, as in the
  ``client login info`` line, docs/protocol.md 5.14) and frps's own lines outside the gateway
  (``register control error`` vs ``login from ... failed``, ``listen port [0]``).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support.plugin_server import MockPlugin
from support.ports import LOCALHOST, free_port
from support.processes import FrpLauncher, FrpProcess
from support.services import EchoServer, tcp_roundtrip
from support.ssh import SSHTunnel, keygen, ssh_run_with
from support.waits import poll, refused

pytestmark = [pytest.mark.compat, pytest.mark.timeout(420)]

TOKEN = "audit-ssh"
DENIED = "v0@127.0.0.1: Permission denied (publickey).\n"
CLOSED = "Connection to 127.0.0.1 closed by remote host.\n"
# a log line, ours or Go's: "DATE TIME [L] [where] message"
_LINE = re.compile(r"^\S+ \S+ \[([IWED])\] \[[^\]]+\] (.*)$", re.MULTILINE)


class Pair:
    """Go frps and ours with the same gateway config (``extra`` appended), each on its own ports
    (``vhosts``: with vhostHTTPPort, vhostHTTPSPort and tcpmuxHTTPConnectPort)."""

    def __init__(self, frp: FrpLauncher, tmp_path: Path, extra: str = "", *, vhosts: bool = False) -> None:
        host_key = tmp_path / "host_key"
        if not host_key.exists():
            keygen(tmp_path, "host_key")
        self.sides: list[Side] = [Side(frp, host_key, extra, vhosts, go) for go in (True, False)]

    @property
    def go(self) -> Side:
        return self.sides[0]

    @property
    def ours(self) -> Side:
        return self.sides[1]


class Side:
    def __init__(self, frp: FrpLauncher, host_key: Path, extra: str, vhosts: bool, go: bool) -> None:
        self.go = go
        self.bind, self.ssh = free_port(), free_port()
        conf = (f'bindAddr = "{LOCALHOST}"\nbindPort = {self.bind}\nauth.token = "{TOKEN}"\n'
                + (f"vhostHTTPPort = {free_port()}\nvhostHTTPSPort = {free_port()}\n"
                   f"tcpmuxHTTPConnectPort = {free_port()}\n" if vhosts else "")
                + f"sshTunnelGateway.bindPort = {self.ssh}\n"
                f'sshTunnelGateway.privateKeyFile = "{host_key}"\n' + extra)
        self.proc: FrpProcess = frp.go_frps(conf) if go else frp.ours_frps(conf)
        self.proc.wait_for_log(r"frps started successfully", 30)

    def lines(self, since: int) -> list[tuple[str, str]]:
        """(level, message) of each log line after ``since``, run ids, ports and random names
        replaced."""
        out = []
        for level, text in _LINE.findall(self.proc.log_text()[since:]):
            text = re.sub(r"\b[0-9a-f]{16}\b", "RUNID", text)
            text = re.sub(r"sshtunnel-(\w+)-[0-9a-f]{8}", r"sshtunnel-\1-RAND", text)
            text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
            out.append((level, text))
        return out

    def gateway_lines(self, since: int) -> list[tuple[str, str]]:
        """The lines of the gateway and of its virtual client."""
        return [(lv, t) for lv, t in self.lines(since)
                if "sshVirtualClient" in t or t.startswith(("wait proxy status ready", "ssh tunnel server run error",
                                                            "load authorized keys file error"))]


def _answer(ssh: SSHTunnel, timeout: float = 20.0) -> int | None:
    """Wait for the success block or for ssh to exit; ssh's exit status (None: still running)."""
    poll(lambda: ("RemoteAddress: " in ssh.output and ssh.output.endswith("\n\n")) or ssh.proc.poll() is not None,
         timeout, f"an answer on ssh's stdout ({ssh.output!r}, {ssh.errors!r})")
    return ssh.proc.poll()


def _run_error(side: Side, since: int) -> str:
    m = side.proc.wait_for_log(r"ssh tunnel server run error: (.*)$", 10, since=since)
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", m[1])


# -- authentication -----------------------------------------------------------------------------


def test_authentication_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    key = keygen(tmp_path, "listed", "alice")
    other = keygen(tmp_path, "other", "mallory")
    pub = Path(f"{key}.pub").read_text().strip()
    kind, blob = pub.split()[:2]
    keys = tmp_path / "authorized_keys"
    keys.write_text(pub + "\n")
    pair = Pair(frp, tmp_path, f'sshTunnelGateway.authorizedKeysFile = "{keys}"\n')

    # a key not listed, and clients that only try password or keyboard-interactive: ssh says
    # "Permission denied (publickey)" and exits 255; frps logs x/crypto's ServerAuthError
    attempts = [
        (other, ()),
        (None, ("-o", "PreferredAuthentications=password", "-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1")),
        (None, ("-o", "PreferredAuthentications=keyboard-interactive")),
    ]
    for who, options in attempts:
        seen = []
        for side in pair.sides:
            mark = side.proc.mark()
            r = ssh_run_with(side.ssh, who, "tcp -n k", options=options)
            seen.append((r.stdout, r.returncode, r.stderr, _run_error(side, mark)))
        assert seen[1] == seen[0], options
    assert seen[0][:3] == ("", 255, DENIED)
    assert seen[0][3] == "[ssh: no auth passed yet]"

    # the authorized_keys file is re-read at each attempt and parsed as x/crypto does
    files = {
        "a line without a key, then the key": f"not a key\n{pub}\n",
        "a bad line after the last key": f"{pub}\nssh-ed25519 AAAA\n",
        "inner blanks in the comment": f"{kind} {blob}   alice  smith \r\n",
        "another key type word": f"ssh-rsa {blob} dave\n",
        "options before the key": f'restrict,command="echo a b" {kind} {blob} carol\n',
    }
    for what, text in files.items():
        keys.write_text(text)
        parsed: list[tuple[int | None, str, list[str], list[str]]] = []
        for side in pair.sides:
            mark = side.proc.mark()
            with SSHTunnel(tmp_path, side.ssh, key, "tcp -n k", 9) as ssh:
                rc = _answer(ssh)
                if rc is not None:  # refused: both lines logged
                    _run_error(side, mark)
                lines = [t for _, t in side.gateway_lines(mark) if "authorized" in t or "run error" in t]
                parsed.append((rc, ssh.errors, re.findall(r"^User: (.*)$", ssh.output, re.MULTILINE), lines))
        assert parsed[1] == parsed[0], what
    # a blank line or a comment after the last key: Go refuses the whole file (every key), ours
    # reads the keys (README)
    for tail in ("\n", "# the end\n"):
        keys.write_text(f"{pub}\n{tail}")
        with EchoServer() as echo, SSHTunnel(tmp_path, pair.ours.ssh, key, "tcp -n k", echo.port) as ssh:
            assert _answer(ssh) is None, tail
        with SSHTunnel(tmp_path, pair.go.ssh, key, "tcp -n k", 9) as ssh:
            assert _answer(ssh) is not None, tail
    keys.write_text(files["inner blanks in the comment"])
    with EchoServer() as echo, SSHTunnel(tmp_path, pair.ours.ssh, key, "tcp -n k", echo.port) as ssh:
        assert _answer(ssh) is None
        assert ssh.field("User") == "alice  smith" and ssh.field("ProxyName") == "alice  smith.k"

    # no file there: every key refused, Go's file error text
    keys.unlink()
    missing: list[tuple[str, int, str, list[tuple[str, str]]]] = []
    for side in pair.sides:
        mark = side.proc.mark()
        r = ssh_run_with(side.ssh, key, "tcp -n k")
        assert _run_error(side, mark) == "[ssh: no auth passed yet, internal error]"
        missing.append((r.stdout, r.returncode, r.stderr, side.gateway_lines(mark)))
    assert missing[1] == missing[0]
    assert ("E", f"load authorized keys file error: open {keys}: no such file or directory") in missing[1][3]
    assert "Traceback" not in pair.ours.proc.log_text()


# -- the host key and the banner ----------------------------------------------------------------


def test_host_key_errors_and_banner_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    encrypted = tmp_path / "encrypted"
    keygen(tmp_path, "encrypted")
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "secret", "-P", "", "-f", str(encrypted)], check=True,
                   capture_output=True, timeout=30)
    cases = {
        f'privateKeyFile = "{tmp_path / "missing"}"': f"open {tmp_path / 'missing'}: no such file or directory",
        f'privateKeyFile = "{garbage}"': "ssh: no key found",
        f'privateKeyFile = "{tmp_path}"': f"read {tmp_path}: is a directory",
        f'privateKeyFile = "{encrypted}"': "ssh: this private key is passphrase protected",
        f'autoGenPrivateKeyPath = "{tmp_path / "no" / "dir"}"': f"open {tmp_path / 'no' / 'dir'}: no such file or directory",
        f'autoGenPrivateKeyPath = "{garbage}"': "ssh: no key found",
    }
    def conf(setting: str) -> str:
        return (f'bindAddr = "{LOCALHOST}"\nbindPort = {free_port()}\nsshTunnelGateway.bindPort = {free_port()}\n'
                f"sshTunnelGateway.{setting}\n")

    for setting, go_text in cases.items():
        go, ours = frp.go_frps(conf(setting)), frp.ours_frps(conf(setting))
        assert (go.wait_exit(30), ours.wait_exit(30)) == (1, 1), setting
        assert f"create ssh gateway error: {go_text}\n" in go.log_text(), go.log_text()
        line = ours.wait_for_log(r"create ssh gateway error: (.*)$", 5)[1]
        assert line.startswith(go_text + " (sshTunnelGateway."), (setting, line)
        assert "Traceback" not in ours.log_text()

    # the banner: x/crypto's "SSH-2.0-Go" (ssh -v: "remote software version Go")
    pair = Pair(frp, tmp_path)
    for side in pair.sides:
        with socket.create_connection((LOCALHOST, side.ssh), timeout=5) as sock:
            got = b""
            while not got.endswith(b"\r\n"):
                chunk = sock.recv(1)
                assert chunk, got
                got += chunk
        assert got == b"SSH-2.0-Go\r\n"


# -- what frps logs and what plugins get ----------------------------------------------------------


def test_virtual_client_log_lines_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    key = keygen(tmp_path, "user", "user")
    pair = Pair(frp, tmp_path)
    with EchoServer() as echo:
        for command, stays in [(f"tcp -t {TOKEN} -n up", True), ("tcp -t wrong -n bad", False),
                               (f"tcpmux -t {TOKEN} -n mux", False), (f"http -t {TOKEN}", False)]:
            seen = []
            for side in pair.sides:
                mark = side.proc.mark()
                if stays:
                    with SSHTunnel(tmp_path, side.ssh, key, command, echo.port) as ssh:
                        assert _answer(ssh) is None
                        side.proc.wait_for_log(r"start proxy success", 10, since=mark)
                else:
                    r = ssh_run_with(side.ssh, key, command, forward=f":80:127.0.0.1:{echo.port}")
                    assert r.returncode == 255 and r.stdout
                    side.proc.wait_for_log(r"wait proxy status ready error", 10, since=mark)
                seen.append(side.gateway_lines(mark))
            assert seen[1] == seen[0], command
    want_up = [
        ("I", "[sshVirtualClient] try to connect to server..."),
        ("I", "[RUNID] [sshVirtualClient] login to server success, get run id [RUNID]"),
        ("I", "[RUNID] [sshVirtualClient] proxy added: [up]"),
        ("I", "[RUNID] [sshVirtualClient] [up] start proxy success"),
    ]
    assert want_up == [(lv, t) for lv, t in pair.ours.lines(0) if "sshVirtualClient" in t][:4]
    text = pair.ours.proc.log_text()
    assert "[E] [server.sshgw] [sshVirtualClient] token in login doesn't match token from configuration" in text
    assert "wait proxy status ready error: ssh tunnel server closed" in text
    assert "[sshVirtualClient] [mux] start error: unknown multiplexer []" in text


def test_plugin_ops_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    key = keygen(tmp_path, "user", "user")
    commands = [
        "tcp -n a -r 0 --metadatas k=v --annotations x=y -u bob",
        "http -n b -d b.com,c.com --sd s --locations /a,/b --http_user u --http_pwd p --host_header_rewrite h",
        "https -n c -d c.com",
        "tcpmux -n d --mux httpconnect -d d.com --http_user u --http_pwd p",
        "stcp -n e --sk k --allow_users a,b",
    ]
    with MockPlugin() as plugin:
        pair = Pair(frp, tmp_path, 'subDomainHost = "example.org"\n' + plugin.toml("Login", "NewProxy"), vhosts=True)
        for command in commands:
            seen = []
            for side in pair.sides:
                before = len(plugin.calls)
                with SSHTunnel(tmp_path, side.ssh, key, f"{command} -t {TOKEN}", 9) as ssh:
                    assert _answer(ssh) is None, ssh.output
                calls = plugin.calls[before:]
                login = {k: v for k, v in calls[0].content.items()
                         if k not in ("privilege_key", "timestamp", "client_address")}
                new_proxy = dict(calls[1].content)
                new_proxy["user"] = {k: v for k, v in new_proxy["user"].items() if k != "run_id"}
                seen.append(([c.op for c in calls], login, new_proxy))
            assert seen[1] == seen[0], command
            assert "bandwidth_limit_mode" not in seen[1][2]


# -- the session ----------------------------------------------------------------------------------


def test_session_cases_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    key = keygen(tmp_path, "user", "user")
    low = free_port()
    pair = Pair(frp, tmp_path, f"allowPorts = [{{ start = {low}, end = {low} }}, {{ start = 20000, end = 40000 }}]\n")
    with EchoServer() as echo:
        fwd = f":80:127.0.0.1:{echo.port}"
        results = []
        for side in pair.sides:
            with SSHTunnel(tmp_path, side.ssh, key, f"tcp -t {TOKEN} -n taken -r {low}", echo.port) as first:
                assert _answer(first) is None
                assert tcp_roundtrip(low, b"hello") == b"hello"
                results.append([
                    ssh_run_with(side.ssh, key, f"tcp -t {TOKEN} -n taken", forward=fwd),  # the name
                    ssh_run_with(side.ssh, key, f"tcp -t {TOKEN} -n t2 -r {low}", forward=fwd),  # the port
                    ssh_run_with(side.ssh, key, f"tcp -t {TOKEN} -n t3 -r 1", forward=fwd),  # not in allowPorts
                ])
        go_results, ours_results = results
        assert (ours_results[0].stdout, ours_results[0].returncode) == (go_results[0].stdout, go_results[0].returncode)
        assert go_results[0].stdout == "proxy [taken] already exists\n"
        # ours keeps Go's words, then names the port and the rule (README)
        assert go_results[1].stdout == "port already used\n" and go_results[2].stdout == "port not allowed\n"
        for go, ours in zip(go_results[1:], ours_results[1:], strict=True):
            assert ours.returncode == go.returncode == 255
            assert ours.stdout.startswith(go.stdout.rstrip("\n") + ": ")

        # -R with a bind address, two -R (the first one is the tunnel's: the second one here goes to a
        # closed port), a pty: the proxy made, the tunnel working, the session kept until stopped
        cases = [("localhost:80", (), echo.port), ("192.0.2.1:8080", (), echo.port),
                 (":80", ("-R", f":81:127.0.0.1:{echo.port}"), 9), (":80", ("-tt",), echo.port)]
        for bind, extra, local in cases:
            seen = []
            for side in pair.sides:
                with SSHTunnel(tmp_path, side.ssh, key, f"tcp -t {TOKEN}", local, extra=extra, bind=bind) as ssh:
                    assert _answer(ssh) is None
                    port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])  # in allowPorts
                    assert tcp_roundtrip(port, b"x" * 1000) == b"x" * 1000, (side.go, bind, extra)
                    assert ssh.proc.poll() is None
                    seen.append(re.sub(r"sshtunnel-tcp-\w+|:\d+\n", "X", ssh.output))
            assert seen[1] == seen[0], (bind, extra)

        # no -R, or -N (no command): nothing printed, closed after 3 s, exit 255
        for forward, options in [(None, ()), (fwd, ("-N",))]:
            ends: list[tuple[str, int, str]] = []
            for side in pair.sides:
                started = time.monotonic()
                r = ssh_run_with(side.ssh, key, f"tcp -t {TOKEN}", forward=forward, options=options)
                assert 3 <= time.monotonic() - started < 8
                ends.append((r.stdout, r.returncode, r.stderr))
            assert ends[1] == ends[0] == ("", 255, CLOSED), (forward, options)

        # stdin closed: the session stays; SIGINT: ssh exits 255 and the proxy is gone at once
        for side in pair.sides:
            mark = side.proc.mark()
            with SSHTunnel(tmp_path, side.ssh, key, f"tcp -t {TOKEN} -n gone", echo.port) as ssh:
                assert _answer(ssh) is None
                port = int(ssh.field("RemoteAddress").rsplit(":", 1)[1])
                assert tcp_roundtrip(port, b"ping") == b"ping"
                ssh.proc.send_signal(signal.SIGINT)
                assert ssh.wait_exit(10) == 255
                poll(lambda p=port: refused(p), 5, "the proxy's port closed")
                side.proc.wait_for_log(r"\[gone\] proxy closing", 5, since=mark)
                side.proc.wait_for_log(r"client exit success", 5, since=mark)
    assert "Traceback" not in pair.ours.proc.log_text()
