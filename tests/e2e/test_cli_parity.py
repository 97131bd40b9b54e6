"""The ``frps`` / ``frpc`` command lines behave as Go frp 0.65's (cobra) where the CLI audit found
them different: usage errors exit 1, extra words after a command are ignored, bool flags take a
value only with ``=``, one-shot proxies need a name, ``frpc tcpmux`` needs ``--mux``,
``--api-timeout``, ``--dashboard-tls-mode``, the ``frpc status`` table byte for byte, admin API
failures and listener failures in Go's words, ``verify`` without a file, ``includes`` from the
current directory.

Our messages stay on stderr (Go prints its validation errors on stdout; README "Deliberate
differences"). The texts expected here were read from Go 0.65's output for the same command line;
``test_status_table_matches_go`` and ``test_side_by_side_with_go`` also run the Go binaries
(``gofrp_bins``: skipped where they cannot run).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.configs import block, frpc_config, frps_config
from support.ports import LOCALHOST, free_port, free_udp_port
from support.processes import go_cmd, ours_cmd
from support.waits import poll

pytestmark = pytest.mark.timeout(90)


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ours(which: str, *args: str, cwd: Path | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return run([*ours_cmd(which), *args], cwd=cwd, timeout=timeout)


def clean(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stdout + res.stderr, res


# --------------------------------------------------------------------------------------------------
# item 10: usage errors exit 1 (cobra), argparse's text on stderr
# --------------------------------------------------------------------------------------------------

USAGE_ERRORS = [
    ("frps", ["--foo"], "unrecognized arguments: --foo"),
    ("frpc", ["--foo"], "unrecognized arguments: --foo"),
    ("frpc", ["version"], "invalid choice: 'version'"),
    ("frps", ["extra"], "invalid choice: 'extra'"),
    ("frps", ["-p", "abc"], "argument -p/--bind-port: invalid int value: 'abc'"),
    ("frpc", ["tcp", "-n", "t", "-r", "abc"], "invalid int value: 'abc'"),
    ("frpc", ["tcp", "-n", "t", "--tls-enable=maybe"], "invalid boolean value 'maybe'"),
    ("frpc", ["tcp", "-n", "t", "--annotations", "bad"], "must be formatted as key=value"),
    ("frpc", ["verify", "-c", "x.toml", "--foo"], "unrecognized arguments: --foo"),
    ("frpc", ["status", "-c", "x.toml", "--api-timeout", "5x"], "invalid duration '5x'"),
    # `false` is not the bool flag's value but a word where a command is expected (Go: unknown command)
    ("frpc", ["-c", "x.toml", "--strict-config", "false"], "invalid choice: 'false'"),
]


@pytest.mark.parametrize(("which", "argv", "text"), USAGE_ERRORS, ids=[" ".join([w, *a]) for w, a, _ in USAGE_ERRORS])
def test_usage_errors_exit_1_on_stderr(which: str, argv: list[str], text: str) -> None:
    res = ours(which, *argv)
    assert res.returncode == 1, res
    assert res.stdout == "", res
    assert "usage: " in res.stderr and text in res.stderr, res
    clean(res)


# --------------------------------------------------------------------------------------------------
# items 11, 12: extra words after a command are ignored; a bool flag takes no separate value
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["frps", "frpc"])
def test_verify_ignores_extra_words(tmp_path: Path, which: str) -> None:
    conf = tmp_path / "empty.toml"
    conf.write_text("")
    for argv in (["verify", "-c", str(conf), "extra"], ["-c", str(conf), "verify", "one", "two"]):
        res = ours(which, *argv)
        assert res.returncode == 0, res
        assert res.stdout == f"{which}: the configuration file {conf} syntax is ok\n", res
        assert ": extra argument" in res.stderr and ", ignored" in res.stderr, res


def test_strict_config_takes_no_separate_value(tmp_path: Path) -> None:
    """`--strict-config false` is the flag (strict) and then an ignored word: the unknown key still
    fails; `--strict-config=false` really turns strict mode off."""
    conf = tmp_path / "unk.toml"
    conf.write_text("serverPortt = 7000\n")
    res = ours("frpc", "verify", "-c", str(conf), "--strict-config", "false")
    assert res.returncode == 1, res
    assert 'unknown field "serverPortt"' in res.stderr and "syntax is ok" not in res.stdout, res
    assert "frpc: false: extra argument, ignored" in res.stderr, res
    res = ours("frpc", "verify", "-c", str(conf), "--strict-config=false")
    assert res.returncode == 0 and "syntax is ok" in res.stdout, res


# --------------------------------------------------------------------------------------------------
# items 14, 15: one-shot proxies and visitors need a name; tcpmux needs --mux
# --------------------------------------------------------------------------------------------------

NAMELESS = [
    (["tcp", "-l", "22", "-r", "6000"], "name should not be empty"),
    (["udp", "-l", "53", "-r", "6000"], "name should not be empty"),
    (["http", "-l", "80", "-d", "a.example.com"], "name should not be empty"),
    (["https", "-l", "443", "-d", "a.example.com"], "name should not be empty"),
    (["tcpmux", "-l", "80", "-d", "a.example.com", "--mux", "httpconnect"], "name should not be empty"),
    (["stcp", "-l", "22", "--sk", "k"], "name should not be empty"),
    (["sudp", "-l", "53", "--sk", "k"], "name should not be empty"),
    (["xtcp", "-l", "22", "--sk", "k"], "name should not be empty"),
    (["tcp", "visitor"], "name should not be empty"),  # tcp has no visitor: Go ignores the word
    (["stcp", "visitor", "--server-name", "s", "--sk", "k"], "name is required"),
    (["sudp", "visitor", "--server-name", "s", "--sk", "k"], "name is required"),
    (["xtcp", "visitor", "--server-name", "s", "--sk", "k"], "name is required"),
]


@pytest.mark.parametrize(("argv", "text"), NAMELESS, ids=[" ".join(a) for a, _ in NAMELESS])
def test_one_shot_without_a_name_is_refused(argv: list[str], text: str) -> None:
    res = ours("frpc", *argv, "-P", str(free_port()))
    assert res.returncode == 1, res
    assert text in res.stderr, res
    assert "try to connect" not in res.stdout + res.stderr, res  # refused before anything starts
    clean(res)


def test_tcpmux_without_mux_is_refused() -> None:
    res = ours("frpc", "tcpmux", "-n", "m", "-l", "80", "-d", "m.example.com", "-P", str(free_port()))
    assert res.returncode == 1, res
    assert "not support multiplexer: " in res.stderr, res
    assert "try to connect" not in res.stdout + res.stderr, res
    clean(res)


# --------------------------------------------------------------------------------------------------
# item 8: verify without a config file
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("which", "argv"), [
    ("frpc", ["verify", "-c", ""]),
    ("frps", ["verify"]),
    ("frps", ["verify", "-c", ""]),
])
def test_verify_without_a_file(which: str, argv: list[str]) -> None:
    res = ours(which, *argv)
    assert res.returncode == 0, res  # as Go
    assert res.stderr == f"{which}: the configuration file is not specified\n", res
    assert "syntax is ok" not in res.stdout, res


# --------------------------------------------------------------------------------------------------
# items 13, 20: --api-timeout, admin API failures in Go's words
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (until the test ends)."""
    srv = socket.socket()
    srv.bind((LOCALHOST, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    done.set()
    t.join(5)
    for c in held:
        c.close()
    srv.close()


def admin_conf(tmp_path: Path, port: int, **keys: Any) -> Path:
    conf = tmp_path / "adm.toml"
    web: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": port, **keys}
    conf.write_text(frpc_config(free_port(), **web))
    return conf


def test_api_timeout(tmp_path: Path, silent_server: int) -> None:
    conf = admin_conf(tmp_path, silent_server)
    for cmd, verb, path in (("status", "Get", "/api/status"), ("stop", "Post", "/api/stop"),
                            ("reload", "Get", "/api/reload?strictConfig=true")):
        started = time.monotonic()
        res = ours("frpc", cmd, "-c", str(conf), "--api-timeout", "1s")
        took = time.monotonic() - started
        assert res.returncode == 1, res
        assert res.stderr == f'{verb} "http://{LOCALHOST}:{silent_server}{path}": context deadline exceeded\n', res
        assert took < 15, took  # 1 s, not the default 30 s
    res = ours("frpc", "status", "-c", str(conf), "--api-timeout=1m30s", "--api-timeout=500ms")
    assert res.returncode == 1 and "context deadline exceeded" in res.stderr, res


def test_admin_failures_in_gos_words(tmp_path: Path) -> None:
    port = free_port()  # nothing listens
    conf = admin_conf(tmp_path, port)
    for cmd, verb, path in (("status", "Get", "/api/status"), ("stop", "Post", "/api/stop"),
                            ("reload", "Get", "/api/reload?strictConfig=true")):
        res = ours("frpc", cmd, "-c", str(conf))
        assert res.returncode == 1, res
        assert res.stderr == (f'{verb} "http://{LOCALHOST}:{port}{path}": dial tcp {LOCALHOST}:{port}: '
                              "connect: connection refused\n"), res
        assert "urlopen" not in res.stderr
    res = ours("frpc", "reload", "-c", str(conf), "--strict-config=false")
    assert f'Get "http://{LOCALHOST}:{port}/api/reload": dial tcp' in res.stderr, res

    no_admin = tmp_path / "none.toml"
    no_admin.write_text(frpc_config(free_port()))
    for cmd in ("status", "stop", "reload"):
        res = ours("frpc", cmd, "-c", str(no_admin))
        assert res.returncode == 1, res
        assert res.stderr == "web server port should be set if you want to use this feature\n", res


def test_admin_wrong_password(frp, tmp_path: Path) -> None:
    bind, admin = free_port(), free_port()
    frp.ours_frps(frps_config(bind)).wait_for_log("frps started successfully", 10)
    keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": admin, "webServer.user": "adm",
            "webServer.password": "right"}
    frpc = frp.ours_frpc(frpc_config(bind, **keys))
    frpc.wait_for_log("admin server listen on", 15)
    assert frpc.config_path is not None
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(frpc.config_path.read_text().replace('"right"', '"wrong"'))
    for cmd in ("status", "stop", "reload"):
        res = ours("frpc", cmd, "-c", str(wrong))
        assert res.returncode == 1, res
        assert res.stderr == "api status code [401]\n", res
    res = ours("frpc", "status", "-c", str(frpc.config_path), "--api-timeout", "5s")
    assert res.returncode == 0 and res.stdout == "Proxy Status...\n\n", res
    res = ours("frpc", "stop", "-c", str(frpc.config_path))
    assert res.returncode == 0 and res.stdout == "stop success\n", res
    assert frpc.wait_exit(10) == 0


# --------------------------------------------------------------------------------------------------
# item 19: the `frpc status` table, byte for byte with Go's
# --------------------------------------------------------------------------------------------------


def _status_blocks(bind: int, echo: int) -> list[str]:
    """A proxy of every type (in an order that is neither Go's nor alphabetical), one in start
    error (frps's own bind port), one with a plugin."""
    return [
        block("proxies", name="x1", type="xtcp", secretKey="k", localPort=echo),
        block("proxies", name="st1", type="stcp", secretKey="k", localPort=echo),
        block("proxies", name="web", type="http", localPort=echo, customDomains=["a.example.com"]),
        block("proxies", name="u1", type="udp", localPort=echo, remotePort=free_udp_port()),
        block("proxies", name="su1", type="sudp", secretKey="k", localPort=echo),
        block("proxies", name="busy", type="tcp", localPort=echo, remotePort=bind),
        block("proxies", name="tls", type="https", localPort=echo, customDomains=["b.example.com"]),
        block("proxies", name="mux", type="tcpmux", multiplexer="httpconnect", localPort=echo,
              customDomains=["c.example.com"]),
        block("proxies", name="ssh-long-name", type="tcp", localPort=echo, remotePort=free_port()),
        block("proxies", name="pp", type="tcp", remotePort=free_port(), **{"plugin.type": "http_proxy"}),
    ]


def web_server(port: int) -> dict[str, Any]:
    return {"webServer.addr": LOCALHOST, "webServer.port": port}


NAMES = ("x1", "st1", "web", "u1", "su1", "busy", "tls", "mux", "ssh-long-name", "pp")


def test_status_table_matches_go(frp, tmp_path: Path, gofrp_bins) -> None:
    """Go frps and Go frpc run; Go's and our `frpc status` ask the same admin API and must print
    the same bytes: `Proxy Status...`, a blank line, Go's type order, every cell padded."""
    bind = free_port()
    frp.go_frps(frps_config(bind, vhostHTTPPort=free_port(), vhostHTTPSPort=free_port(),
                            tcpmuxHTTPConnectPort=free_port())).wait_for_log("frps started successfully", 10)
    admin = free_port()
    conf = tmp_path / "frpc.toml"
    conf.write_text(frpc_config(bind, *_status_blocks(bind, free_port()),
                                **web_server(admin)))
    frp.go_frpc(None, args=["-c", str(conf)])

    def settled() -> str | None:
        res = run([*go_cmd("frpc"), "status", "-c", str(conf)])
        text = res.stdout
        rows = [ln.split() for ln in text.splitlines() if ln.split() and ln.split()[0] in NAMES]
        if res.returncode or len(rows) != len(NAMES) or any(r[1] not in ("running", "start") for r in rows):
            return None
        return text

    go_text = poll(settled, 20, "Go frpc's proxies started or refused")
    res = ours("frpc", "status", "-c", str(conf))
    assert res.returncode == 0, res
    assert res.stdout == go_text, (go_text, res.stdout)
    # what makes it Go's: the blank line, the order, the trailing spaces of the last column
    assert go_text.startswith("Proxy Status...\n\nTCP\n"), go_text
    heads = [ln for ln in go_text.splitlines() if ln in ("TCP", "UDP", "TCPMUX", "HTTP", "HTTPS", "STCP", "SUDP", "XTCP")]
    assert heads == ["TCP", "UDP", "TCPMUX", "HTTP", "HTTPS", "STCP", "SUDP", "XTCP"], go_text
    assert any(ln.endswith(" ") for ln in go_text.splitlines()), go_text
    assert "start error" in go_text, go_text


def test_status_table_layout(frp, tmp_path: Path) -> None:
    """Without Go: our frpc's own table has Go's layout (blank line, Go's order, padded cells)."""
    bind = free_port()
    frp.ours_frps(frps_config(bind, vhostHTTPPort=free_port(), vhostHTTPSPort=free_port(),
                              tcpmuxHTTPConnectPort=free_port())).wait_for_log("frps started successfully", 10)
    admin = free_port()
    conf = tmp_path / "frpc.toml"
    conf.write_text(frpc_config(bind, *_status_blocks(bind, free_port()),
                                **web_server(admin)))
    frpc = frp.ours_frpc(None, args=["-c", str(conf)])
    frpc.wait_for_proxies("ssh-long-name", "u1", "web", "tls", "mux", "st1", "su1", "x1", timeout=20)
    frpc.wait_for_log(r"\[busy\] start error", 10)
    res = ours("frpc", "status", "-c", str(conf))
    assert res.returncode == 0, res
    lines = res.stdout.split("\n")
    assert lines[:3] == ["Proxy Status...", "", "TCP"], res.stdout
    heads = [ln for ln in lines if ln in ("TCP", "UDP", "TCPMUX", "HTTP", "HTTPS", "STCP", "SUDP", "XTCP")]
    assert heads == ["TCP", "UDP", "TCPMUX", "HTTP", "HTTPS", "STCP", "SUDP", "XTCP"], res.stdout
    tcp = lines[3:lines.index("", 3)]
    header = tcp[0]
    assert header.startswith("Name           Status       LocalAddr"), header
    assert header.rstrip().endswith("Error") and header.endswith("  "), repr(header)  # the last column padded too
    assert len({len(ln) for ln in tcp}) == 1, tcp  # every row as wide as the header


# --------------------------------------------------------------------------------------------------
# item 13: frps --dashboard-tls-mode
# --------------------------------------------------------------------------------------------------


def _make_cert(directory: Path) -> tuple[str, str]:
    from support.plugin_services import make_cert

    return make_cert(str(directory), "localhost")


def test_dashboard_tls_mode(frp, tmp_path: Path) -> None:
    crt, key = _make_cert(tmp_path)
    bind, dash = free_port(), free_port()
    base = ["--bind-addr", LOCALHOST, "-p", str(bind), "--dashboard-addr", LOCALHOST, "--dashboard-port", str(dash)]

    # the files without the mode would do nothing (as Go's flags): refused
    res = ours("frps", *base, "--dashboard-tls-cert-file", crt, "--dashboard-tls-key-file", key)
    assert res.returncode == 1, res
    assert "--dashboard-tls-cert-file: has no effect without --dashboard-tls-mode=true" in res.stderr, res
    # the mode without the files
    res = ours("frps", *base, "--dashboard-tls-mode=true")
    assert res.returncode == 1 and "--dashboard-tls-cert-file: must be set" in res.stderr, res
    # beside a config file, as every frps config flag
    conf = tmp_path / "frps.toml"
    conf.write_text(frps_config(bind))
    res = ours("frps", "-c", str(conf), "--dashboard-tls-mode=true")
    assert res.returncode == 1 and "--dashboard-tls-mode: has no effect with a config file" in res.stderr, res

    frps = frp.run(ours_cmd("frps"), None, name="frps",
                   args=[*base, "--dashboard-tls-mode=true", "--dashboard-tls-cert-file", crt,
                         "--dashboard-tls-key-file", key])
    frps.wait_for_log("frps started successfully", 10)
    ctx = ssl.create_default_context(cafile=crt)
    ctx.check_hostname = False
    req = urllib.request.Request(f"https://{LOCALHOST}:{dash}/api/serverinfo")
    with pytest.raises(urllib.error.HTTPError) as err:  # HTTPS, then the dashboard's auth (admin/admin)
        urllib.request.urlopen(req, timeout=5, context=ctx)
    assert err.value.code == 401
    req.add_header("Authorization", "Basic YWRtaW46YWRtaW4=")
    with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
        assert resp.status == 200
    with socket.create_connection((LOCALHOST, dash), timeout=5) as plain:  # no plain HTTP there
        plain.sendall(b"GET /api/serverinfo HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = plain.recv(1024)
        except OSError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 401"), answer

    frps.stop()
    # =false: plain HTTP dashboard, no files needed
    frps = frp.run(ours_cmd("frps"), None, name="frps", args=[*base, "--dashboard-tls-mode=false"])
    frps.wait_for_log("frps started successfully", 10)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://{LOCALHOST}:{dash}/api/serverinfo", timeout=5)
    assert err.value.code == 401


# --------------------------------------------------------------------------------------------------
# item 21: a listener frps cannot open is named, with its address
# --------------------------------------------------------------------------------------------------


def test_listener_failures_name_the_address(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind((LOCALHOST, 0))
    taken.listen()
    busy = taken.getsockname()[1]
    utaken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    utaken.bind((LOCALHOST, 0))
    ubusy = utaken.getsockname()[1]
    inuse = "bind: address already in use"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"bindPort": busy}, f"create server listener error, listen tcp {LOCALHOST}:{busy}: {inuse}"),
        ({"vhostHTTPPort": busy}, f"create vhost http listener error, listen tcp {LOCALHOST}:{busy}: {inuse}"),
        ({"vhostHTTPSPort": busy}, f"create server listener error, listen tcp {LOCALHOST}:{busy}: {inuse}"),
        ({"tcpmuxHTTPConnectPort": busy}, f"create server listener error, listen tcp {LOCALHOST}:{busy}: {inuse}"),
        ({"webServer.addr": LOCALHOST, "webServer.port": busy}, f"listen tcp {LOCALHOST}:{busy}: {inuse}"),
        ({"kcpBindPort": ubusy},
         f"listen on kcp udp address {LOCALHOST}:{ubusy} error: listen udp {LOCALHOST}:{ubusy}: {inuse}"),
        ({"quicBindPort": ubusy},
         f"listen on quic udp address {LOCALHOST}:{ubusy} error: listen udp {LOCALHOST}:{ubusy}: {inuse}"),
    ]
    try:
        for keys, text in cases:
            conf = tmp_path / "frps.toml"
            conf.write_text(frps_config(free_port(), **keys))
            res = ours("frps", "-c", str(conf))
            assert res.returncode == 1, (keys, res)
            assert text in res.stdout + res.stderr, (keys, res)
            assert "frps started successfully" not in res.stdout + res.stderr, res
            clean(res)
    finally:
        taken.close()
        utaken.close()


# --------------------------------------------------------------------------------------------------
# item 4: includes relative to the config file, else from the current directory (as Go)
# --------------------------------------------------------------------------------------------------


def test_includes_from_the_current_directory(tmp_path: Path) -> None:
    main = tmp_path / "sub" / "frpc.toml"
    main.parent.mkdir()
    main.write_text('includes = ["inc/*.toml"]\n')
    (tmp_path / "inc").mkdir()
    # a broken included file shows which one was read
    (tmp_path / "inc" / "a.toml").write_text('[[proxies]]\nname = "a"\ntype = "tcpx"\n')
    res = ours("frpc", "verify", "-c", "sub/frpc.toml", cwd=tmp_path)  # only ./inc exists: Go's choice
    assert res.returncode == 1 and "inc/a.toml" in res.stderr and "tcpx" in res.stderr, res
    (tmp_path / "inc" / "a.toml").write_text('[[proxies]]\nname = "a"\ntype = "tcp"\nlocalPort = 22\n')
    res = ours("frpc", "verify", "-c", "sub/frpc.toml", cwd=tmp_path)
    assert res.returncode == 0 and "syntax is ok" in res.stdout, res

    # beside the config file wins when both exist
    (tmp_path / "sub" / "inc").mkdir()
    (tmp_path / "sub" / "inc" / "b.toml").write_text('[[proxies]]\nname = "b"\ntype = "udpx"\n')
    res = ours("frpc", "verify", "-c", "sub/frpc.toml", cwd=tmp_path)
    assert res.returncode == 1 and "udpx" in res.stderr and "tcpx" not in res.stderr, res
    # from elsewhere (neither directory from the cwd): the one beside the file
    res = ours("frpc", "verify", "-c", str(main), cwd=tmp_path / "sub" / "inc")
    assert res.returncode == 1 and "udpx" in res.stderr, res
    (tmp_path / "sub" / "inc" / "b.toml").unlink()
    (tmp_path / "sub" / "inc").rmdir()
    res = ours("frpc", "verify", "-c", str(main), cwd=main.parent)  # ./inc does not exist there
    assert res.returncode == 1 and "does not exist" in res.stderr, res


# --------------------------------------------------------------------------------------------------
# the same command lines through Go 0.65: same exit status, same words (in either of Go's streams)
# --------------------------------------------------------------------------------------------------

SIDE_BY_SIDE = [
    ("frpc", ["verify", "-c", "empty.toml", "extra"], 0, "frpc: the configuration file empty.toml syntax is ok"),
    ("frps", ["-c", "empty.toml", "verify", "one", "two"], 0, "frps: the configuration file empty.toml syntax is ok"),
    ("frpc", ["verify", "-c", ""], 0, "frpc: the configuration file is not specified"),
    ("frps", ["verify"], 0, "frps: the configuration file is not specified"),
    ("frpc", ["verify", "-c", "unk.toml", "--strict-config", "false"], 1, '"serverPortt"'),
    ("frpc", ["verify", "-c", "unk.toml", "--strict-config=false"], 0, "syntax is ok"),
    ("frpc", ["tcp", "visitor"], 1, "name should not be empty"),
    ("frpc", ["status", "-c", "empty.toml", "extra"], 1, "web server port should be set if you want to use this feature"),
    ("frps", ["extra"], 1, "extra"),
    ("frpc", ["-c", "empty.toml", "--strict-config", "false"], 1, "false"),
    # cobra prints help and exits 0 for an unknown help topic, an unknown shell, a bare nathole
    ("frpc", ["help", "foo"], 0, "Unknown help topic [`foo`]"),
    ("frps", ["help", "foo"], 0, "Unknown help topic [`foo`]"),
    ("frpc", ["completion", "foo"], 0, "Generate the autocompletion script for frpc"),
    ("frpc", ["completion", "bash", "extra"], 1, '"extra"'),
    ("frpc", ["nathole"], 0, "nathole"),
    ("frpc", ["nathole", "foo", "-c", "empty.toml"], 0, "nathole"),
]


@pytest.mark.parametrize(("which", "argv", "rc", "text"), SIDE_BY_SIDE,
                         ids=[" ".join([w, *a]) for w, a, _, _ in SIDE_BY_SIDE])
def test_side_by_side_with_go(tmp_path: Path, gofrp_bins, which: str, argv: list[str], rc: int, text: str) -> None:
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "unk.toml").write_text("serverPortt = 7000\n")
    go = run([*go_cmd(which), *argv], cwd=tmp_path)
    mine = ours(which, *argv, cwd=tmp_path)
    assert go.returncode == mine.returncode == rc, (go, mine)
    assert text in go.stdout + go.stderr, go
    assert text in mine.stdout + mine.stderr, mine
    clean(mine)
