"""Issue 8's security cases: a setting aiofrp does not implement is refused by ``verify`` and at
start-up (real frps/frpc/frp processes), never accepted and then ignored."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from support.procs import free_port, ours_cmd

pytestmark = pytest.mark.timeout(120)

MESSAGE = "not supported by aiofrp yet"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL, env={**base, "PYTHONUNBUFFERED": "1", **(env or {})})


def frps_conf(bind: int, extra: str) -> str:
    return f'bindAddr = "127.0.0.1"\nbindPort = {bind}\nauth.token = "t"\n{extra}\n'


def frpc_conf(server: int, extra: str, proxies: str = "") -> str:
    return (f'serverAddr = "127.0.0.1"\nserverPort = {server}\nauth.token = "t"\n{extra}\n'
            + (proxies or '[[proxies]]\nname = "p"\ntype = "tcp"\nlocalPort = 22\nremotePort = 0\n'))


class Listener:
    """A TCP port standing in for frps (or a forward proxy): counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = False
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            c.close()

    def close(self) -> None:
        self._stop = True
        self._t.join()
        self.sock.close()


FRPS_CASES = [
    pytest.param('webServer.addr = "127.0.0.1"\nwebServer.port = 7500\nwebServer.pprofEnable = true',
                 "webServer.pprofEnable", id="dashboard-pprof"),
]


@pytest.mark.parametrize(("extra", "key"), FRPS_CASES)
def test_frps_refuses_at_verify_and_start(tmp_path: Path, extra: str, key: str) -> None:
    bind = free_port()
    conf = tmp_path / "frps.toml"
    conf.write_text(frps_conf(bind, extra))
    for args in (["verify", "-c", str(conf)], ["-c", str(conf)]):
        res = run(*ours_cmd("frps"), *args)
        assert res.returncode == 1, res
        assert res.stderr.startswith(f"{conf}: {key}: {MESSAGE} ("), res
        assert "Traceback" not in res.stderr and "syntax is ok" not in res.stdout
    with socket.socket() as s:  # nothing was started
        assert s.connect_ex(("127.0.0.1", bind)) != 0


FRPC_CASES = [
    pytest.param("webServer.port = 7400\nwebServer.pprofEnable = true", "", "webServer.pprofEnable", id="admin-pprof"),
]


@pytest.mark.parametrize(("extra", "proxies", "key"), FRPC_CASES)
def test_frpc_refuses_at_verify_and_start(tmp_path: Path, extra: str, proxies: str, key: str) -> None:
    server = Listener()
    try:
        conf = tmp_path / "frpc.toml"
        conf.write_text(frpc_conf(server.port, extra, proxies))
        for args in (["verify", "-c", str(conf)], ["-c", str(conf)]):
            res = run(*ours_cmd("frpc"), *args)
            assert res.returncode == 1, res
            assert res.stderr.startswith(f"{conf}: {key}: {MESSAGE} ("), res
            assert "Traceback" not in res.stderr
    finally:
        server.close()
    assert server.accepted == 0  # it never went to the server (directly or otherwise)


def test_frps_flag_beside_config_file_refused(tmp_path: Path) -> None:
    conf = tmp_path / "frps.toml"
    conf.write_text(frps_conf(free_port(), ""))
    res = run(*ours_cmd("frps"), "-c", str(conf), "--tls-only")
    assert res.returncode == 1
    assert res.stderr == ("frps: --tls-only: has no effect with a config file (-c), as in frp; "
                          "set transport.tls.force in the file instead\n")


def test_defaults_spelt_out_are_accepted(tmp_path: Path) -> None:
    conf = tmp_path / "frps.toml"
    conf.write_text(frps_conf(free_port(), 'auth.method = "token"\nkcpBindPort = 0\nenablePrometheus = false\n'
                                           'webServer.user = "admin"'))
    res = run(*ours_cmd("frps"), "verify", "-c", str(conf))
    assert res.returncode == 0 and "syntax is ok" in res.stdout, res
