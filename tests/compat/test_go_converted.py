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


# -- every legacy example of frp converts into TOML that Go's verify and ours accept ----------------

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "frp-conf-examples"
if not EXAMPLES.is_dir():
    EXAMPLES = Path("/work/shared/frp-conf-examples")
DATA = Path(__file__).resolve().parents[1] / "unit" / "data"
LEGACY = sorted(EXAMPLES.glob("*legacy*.ini")) + sorted(DATA.glob("legacy_*.ini"))


def test_legacy_examples_are_there() -> None:
    assert {p.name for p in LEGACY} >= {"frps_legacy_full.ini", "frpc_legacy_full.ini"}, LEGACY


@pytest.mark.parametrize("src", LEGACY, ids=lambda p: p.name)
def test_legacy_example_converts_for_go_and_ours(gofrp_bins, src: Path, tmp_path: Path) -> None:
    """Go's verify accepts our conversion as is. Ours accepts it too, except that a key aiofrp does
    not implement yet is refused, and then only with the "not supported by aiofrp yet" line
    naming the first such key (the converter must stay faithful, so it keeps them)."""
    from aiofrp.config import load_client_config, load_server_config
    from aiofrp.config.unsupported import MESSAGE, find_unsupported

    which = "frps" if "frps" in src.name else "frpc"
    local = tmp_path / src.name
    local.write_text(src.read_text())
    out = _convert(which, local)
    text = out.read_text()
    if "type = tcpmux" in src.read_text():
        assert 'multiplexer = "httpconnect"' in text
    res = run(*go_cmd(which), "verify", "-c", str(out))
    assert res.returncode == 0 and "syntax is ok" in res.stdout, (res.stdout, res.stderr, text)

    load = load_server_config if which == "frps" else load_client_config
    cfg = load(str(out), refuse_unsupported=False, resolve_token_source=False)  # everything else is valid
    hits = find_unsupported(cfg, which, env={})
    res = run(*ours_cmd(which), "verify", "-c", str(out))
    if not hits:
        assert res.returncode == 0 and "syntax is ok" in res.stdout, (res.stdout, res.stderr)
        assert "Not supported by aiofrp yet" not in text
        return
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stderr == str(hits[0].error(str(out))) + "\n"
    assert f": {MESSAGE} (" in res.stderr
    for h in hits:  # the converter says which keys they are
        assert f"#   {h.path} (" in text
