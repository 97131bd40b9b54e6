"""Go frp 0.65.0 accepts and runs what our converter and template renderer produce."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.configs import LEGACY_FRPC, LEGACY_FRPS, TEMPLATE_FRPC
from support.procs import free_port, frps_config, go_cmd, ours_cmd, wait_port
from support.waits import echo_ok

from aiofrp.config import render_template

pytestmark = pytest.mark.timeout(90)





def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)


def _convert(which: str, src: Path) -> Path:
    out = src.with_suffix(".toml")
    res = run(*ours_cmd(which), "convert", "-c", str(src), "-o", str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_go_verifies_and_runs_converted_files(frp, gofrp_bins, echo_server, tmp_path: Path) -> None:
    bind, r1, r2 = free_port(), free_port(), free_port()
    (tmp_path / "frps.ini").write_text(LEGACY_FRPS.format(bind=bind))
    (tmp_path / "frpc.ini").write_text(LEGACY_FRPC.format(bind=bind, echo=echo_server.port, r1=r1, r2=r2))
    frps_toml = _convert("frps", tmp_path / "frps.ini")
    frpc_toml = _convert("frpc", tmp_path / "frpc.ini")
    for which, path in (("frps", frps_toml), ("frpc", frpc_toml)):
        res = run(*go_cmd(which), "verify", "-c", str(path))
        assert res.returncode == 0 and "syntax is ok" in res.stdout, (which, res.stdout, res.stderr)

    # Go frps + Go frpc from the converted files
    frp.run(go_cmd("frps"), None, name="go-frps", args=["-c", str(frps_toml)])
    wait_port(bind)
    client = frp.run(go_cmd("frpc"), None, name="go-frpc", args=["-c", str(frpc_toml)])
    client.wait_for_proxies("plain", "secure", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)
    frp.kill_all()

    # the same files, mixed: Go frpc -> our frps, and our frpc -> Go frps
    frp.run(ours_cmd("frps"), None, name="our-frps", args=["-c", str(frps_toml)])
    wait_port(bind)
    client = frp.run(go_cmd("frpc"), None, name="go-frpc2", args=["-c", str(frpc_toml)])
    client.wait_for_proxies("plain", "secure", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)
    frp.kill_all()

    frp.run(go_cmd("frps"), None, name="go-frps2", args=["-c", str(frps_toml)])
    wait_port(bind)
    client = frp.run(ours_cmd("frpc"), None, name="our-frpc", args=["-c", str(frpc_toml)])
    client.wait_for_proxies("plain", "secure", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)


def test_go_and_ours_agree_on_templates(frp, gofrp_bins, echo_server, tmp_path: Path) -> None:
    bind, r1, r2 = free_port(), free_port(), free_port()
    env = {**os.environ, "FRP_TEST_TOKEN": "tpl-token", "PYTHONUNBUFFERED": "1"}
    template = TEMPLATE_FRPC.format(bind=bind, echo=echo_server.port, r1=r1, r2=r2)
    raw = tmp_path / "frpc-template"
    raw.write_text(template)
    rendered = tmp_path / "frpc-rendered"
    rendered.write_text(render_template(template, str(raw), env={"FRP_TEST_TOKEN": "tpl-token"}))
    assert "{{" not in rendered.read_text()

    # Go frpc runs our rendered file against our frps
    frp.ours_frps(frps_config(bind, token="tpl-token"))
    wait_port(bind)
    go = frp.run(go_cmd("frpc"), None, name="go-frpc", args=["-c", str(rendered)])
    go.wait_for_proxies(f"tcp-{r1}", f"tcp-{r2}", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)
    frp.kill_all()

    # Go frpc renders the template itself; ours does too, against Go frps: same proxies
    frp.go_frps(frps_config(bind, token="tpl-token"))
    wait_port(bind)
    go = frp.run(go_cmd("frpc"), None, name="go-frpc-tpl", args=["-c", str(raw)], env=env)
    go.wait_for_proxies(f"tcp-{r1}", f"tcp-{r2}", timeout=10)
    assert echo_ok(r1) and echo_ok(r2)
    go.kill()
    ours = frp.run(ours_cmd("frpc"), None, name="our-frpc-tpl", args=["-c", str(raw)], env=env)
    ours.wait_for_proxies(f"tcp-{r1}", f"tcp-{r2}", timeout=15)
    assert echo_ok(r1) and echo_ok(r2)
