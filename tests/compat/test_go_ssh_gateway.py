"""The SSH tunnel gateway, ours against Go frps 0.65: the same ssh commands, the same text back.

Go frps and our frps run with the same gateway config; the real OpenSSH client runs each command
against both, and what ssh prints on stdout (the success block, the error texts of pflag and of
frps, cobra's usage text) and its exit status must be equal, once the random parts (the
generated proxy name's suffix, the ports each server got) are replaced by placeholders.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from support.ports import LOCALHOST, free_port
from support.processes import FrpLauncher, FrpProcess
from support.services import EchoServer
from support.ssh import SSHTunnel, keygen, ssh_run

pytestmark = pytest.mark.timeout(300)

TOKEN = "compat-ssh"
# (command, stays up); {remote}: a free port
CASES = [
    ("tcp --remote_port {remote} --proxy_name c1 -t " + TOKEN, True),
    ("tcp -t " + TOKEN, True),
    ("http --custom_domain c.example.com -u bob -n web --token " + TOKEN, True),
    ("tcpmux --mux httpconnect -d m.example.com -t " + TOKEN, True),
    ('stcp -n s1 --sk abc --allow-users="*" -t ' + TOKEN, True),
    ("tcp --metadatas a=b,c -t=" + TOKEN, True),
    ("https -d s.example.com -t " + TOKEN, False),
    ("tcp --token wrong", False),
    ("udp", False),
    ("tcp --bogus 1", False),
    ("tcp -x", False),
    ("tcp --remote_port abc", False),
    ("tcp --remote_port", False),
    ("tcp -r", False),
    ("tcp --metadatas x", False),
    ("tcp ---x", False),
    ("tcp --help", False),
    ("http --help", False),
    ("https -h", False),
    ("tcpmux --help", False),
    ("stcp --help", False),
]


class Gateway:
    def __init__(self, frp: FrpLauncher, tmp_path: Path, go: bool, extra: str = "") -> None:
        self.bind, self.ssh, self.vhost, self.tcpmux = free_port(), free_port(), free_port(), free_port()
        host_key = tmp_path / "host_key"
        if not host_key.exists():
            keygen(tmp_path, "host_key")
        conf = (
            f'bindAddr = "{LOCALHOST}"\nbindPort = {self.bind}\nauth.token = "{TOKEN}"\n'
            f"vhostHTTPPort = {self.vhost}\ntcpmuxHTTPConnectPort = {self.tcpmux}\n"
            f"sshTunnelGateway.bindPort = {self.ssh}\n"
            f'sshTunnelGateway.privateKeyFile = "{host_key}"\n' + extra
        )
        self.proc: FrpProcess = frp.go_frps(conf) if go else frp.ours_frps(conf)
        self.proc.wait_for_log(r"frps started successfully", 20)
        self.ports: dict[int, str] = {self.bind: "{bind}", self.vhost: "{vhost}", self.tcpmux: "{tcpmux}"}

    def transcript(self, tmp_path: Path, key: Path, local: int, command: str, stays_up: bool) -> tuple[str, int | None]:
        remote = free_port()
        self.ports[remote] = "{remote}"
        cmd = command.format(remote=remote, bind=self.bind)
        if not stays_up:
            r = ssh_run(self.ssh, key, cmd, local_port=local)
            return self.normalize(r.stdout), r.returncode
        with SSHTunnel(tmp_path, self.ssh, key, cmd, local) as ssh:
            deadline = time.monotonic() + 20
            while not (("RemoteAddress: " in ssh.output and ssh.output.endswith("\n\n")) or ssh.proc.poll() is not None):
                assert time.monotonic() < deadline, f"no answer to {cmd!r}: {ssh.output!r} {ssh.errors!r}"
                time.sleep(0.05)
            rc = ssh.proc.poll()
            return self.normalize(ssh.output), rc

    def normalize(self, text: str) -> str:
        text = re.sub(r"sshtunnel-(\w+)-[0-9a-f]{8}", r"sshtunnel-\1-RANDOM", text)

        def port(m: re.Match[str]) -> str:
            return ":" + self.ports.get(int(m[1]), "{random}")

        return re.sub(r":(\d{2,5})\b", port, text)


def test_ssh_users_see_what_go_frps_prints(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    key = keygen(tmp_path, "user", "user")
    go = Gateway(frp, tmp_path, go=True)
    ours = Gateway(frp, tmp_path, go=False)
    with EchoServer() as echo:
        for command, stays_up in CASES:
            want = go.transcript(tmp_path, key, echo.port, command, stays_up)
            got = ours.transcript(tmp_path, key, echo.port, command, stays_up)
            assert got == want, f"ssh ... {command}"
    assert "Traceback" not in ours.proc.log_text()


def test_authorized_keys_as_go(frp: FrpLauncher, tmp_path: Path, gofrp_bins: object) -> None:
    """authorizedKeysFile: the listed key's comment is the user (over --user), no token asked;
    another key is refused by ssh itself (Permission denied (publickey)) with nothing printed."""
    key = keygen(tmp_path, "listed", "alice")
    other = keygen(tmp_path, "other", "mallory")
    keys = tmp_path / "authorized_keys"
    keys.write_text(Path(f"{key}.pub").read_text())
    extra = f'sshTunnelGateway.authorizedKeysFile = "{keys}"\n'
    gateways = [Gateway(frp, tmp_path, go=True, extra=extra), Gateway(frp, tmp_path, go=False, extra=extra)]
    with EchoServer() as echo:
        listed = [g.transcript(tmp_path, key, echo.port, "tcp -n k -u carol", True) for g in gateways]
        assert listed[0] == listed[1]
        assert "User: alice\nProxyName: alice.k\n" in listed[1][0]
        refused = [ssh_run(g.ssh, other, "tcp -n k", local_port=echo.port) for g in gateways]
        for r in refused:
            assert (r.stdout, r.returncode) == ("", 255)
            assert "Permission denied (publickey)" in r.stderr
