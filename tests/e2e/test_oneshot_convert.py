"""One-shot CLI proxies (``frpc tcp ...``), ``convert`` of legacy INI files, templates: end to end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.configs import LEGACY_FRPC, LEGACY_FRPC_RANGE, LEGACY_FRPS, TEMPLATE_FRPC
from support.procs import TEST_STRING, free_port, frps_config, ours_cmd, tcp_roundtrip, wait_port

pytestmark = pytest.mark.timeout(90)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)


def echo_ok(port: int) -> bool:
    payload = TEST_STRING * 3
    return tcp_roundtrip(port, payload, timeout=5) == payload


def test_one_shot_tcp_proxy(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frp.ours_frps(frps_config(bind, token="tok"))
    wait_port(bind)
    client = frp.run(ours_cmd("frpc"), None, name="oneshot", args=[
        "tcp", "-s", "127.0.0.1", "-P", str(bind), "-t", "tok", "-u", "alice", "-n", "echo",
        "-i", "127.0.0.1", "-l", str(echo_server.port), "-r", str(remote), "--ue", "--uc",
    ])
    client.wait_for_log(r"\[alice\.echo\] start proxy success", timeout=10)
    assert echo_ok(remote)


def test_one_shot_flags_accept_underscores_and_report_errors(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frp.ours_frps(frps_config(bind, token="tok"))
    wait_port(bind)
    client = frp.run(ours_cmd("frpc"), None, name="oneshot", args=[
        "tcp", "--server_addr", "127.0.0.1", "--server_port", str(bind), "--token", "tok",
        "--proxy_name", "e", "--local_port", str(echo_server.port), "--remote_port", str(remote),
    ])
    client.wait_for_log(r"\[e\] start proxy success", timeout=10)
    assert echo_ok(remote)
    bad = run(*ours_cmd("frpc"), "tcp", "-n", "t", "-s", "127.0.0.1", "-P", "70000", "-l", "22")
    assert bad.returncode == 1
    assert "--server-port" in bad.stderr and "70000" in bad.stderr  # the flag, not the config key





def _legacy_files(tmp_path: Path, echo_port: int) -> tuple[Path, Path, list[int], int]:
    bind = free_port()
    remotes = [free_port() for _ in range(4)]
    frps_ini = tmp_path / "frps.ini"
    frpc_ini = tmp_path / "frpc.ini"
    frps_ini.write_text(LEGACY_FRPS.format(bind=bind))
    frpc_ini.write_text(LEGACY_FRPC.format(bind=bind, echo=echo_port, r1=remotes[0], r2=remotes[1])
                        + LEGACY_FRPC_RANGE.format(echo=echo_port, r3=remotes[2], r4=remotes[3]))
    return frps_ini, frpc_ini, remotes, bind


def _convert(which: str, src: Path) -> Path:
    out = src.with_suffix(".toml")
    res = run(*ours_cmd(which), "convert", "-c", str(src), "-o", str(out))
    assert res.returncode == 0, res.stderr
    res = run(*ours_cmd(which), "verify", "-c", str(out))
    assert res.returncode == 0 and "syntax is ok" in res.stdout, res
    return out


def test_convert_output_verifies_and_runs_the_same_proxies(frp, echo_server, tmp_path: Path) -> None:
    frps_ini, frpc_ini, remotes, bind = _legacy_files(tmp_path, echo_server.port)
    frps_toml = _convert("frps", frps_ini)
    frpc_toml = _convert("frpc", frpc_ini)
    assert "[common]" not in frpc_toml.read_text()

    # the converted files run the same proxies ...
    frp.run(ours_cmd("frps"), None, name="frps-toml", args=["-c", str(frps_toml)])
    wait_port(bind)
    client = frp.run(ours_cmd("frpc"), None, name="frpc-toml", args=["-c", str(frpc_toml)])
    client.wait_for_proxies("plain", "secure", "many_0", "many_1", timeout=10)
    for port in remotes:
        assert echo_ok(port), port
    frp.kill_all()

    # ... as the legacy files themselves
    frp.run(ours_cmd("frps"), None, name="frps-ini", args=["-c", str(frps_ini)])
    wait_port(bind)
    client = frp.run(ours_cmd("frpc"), None, name="frpc-ini", args=["-c", str(frpc_ini)])
    client.wait_for_proxies("plain", "secure", "many_0", "many_1", timeout=10)
    for port in remotes:
        assert echo_ok(port), port




def test_template_config_runs(frp, echo_server, tmp_path: Path) -> None:
    bind, r1, r2 = free_port(), free_port(), free_port()
    frp.ours_frps(frps_config(bind, token="from-env"))
    wait_port(bind)
    cfg = tmp_path / "frpc-template"
    cfg.write_text(TEMPLATE_FRPC.format(bind=bind, echo=echo_server.port, r1=r1, r2=r2))
    client = frp.run(ours_cmd("frpc"), None, name="frpc-tpl", args=["-c", str(cfg)],
                     env={**os.environ, "FRP_TEST_TOKEN": "from-env", "PYTHONUNBUFFERED": "1"})
    client.wait_for_proxies(f"tcp-{r1}", f"tcp-{r2}", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)
