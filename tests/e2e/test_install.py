"""Install and run as a user would: ``make install`` into a temporary prefix (with the system's
"externally managed" Python when there is one, the PEP 668 case of Debian 12 / Ubuntu 24.04), the
installed commands carry a real tunnel, the systemd units start them as written, and
``make uninstall`` takes everything away again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.procs import LOCALHOST, FrpProcess, free_port
from support.waits import echo_ok

from aiofrp import version_text

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "conf" / "systemd"


def _externally_managed_python() -> str | None:
    """The system's python3 when it is PEP 668 "externally managed" and new enough, else None."""
    for cand in ("/usr/bin/python3",):
        if not os.access(cand, os.X_OK):
            continue
        probe = subprocess.run(
            [cand, "-c", ("import sys, sysconfig, os; print(sys.version_info >= (3, 11) and "
                          "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))")],
            capture_output=True, text=True, check=False, timeout=30)
        if probe.stdout.strip() == "True":
            return cand
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make install PREFIX=<tmp>`` run from a copy of the source tree (the checkout stays clean)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                             ".pytest_cache", ".ruff_cache", ".hypothesis",
                                                             "build", "dist"))
    prefix = base / "prefix"
    python = _externally_managed_python() or sys.executable
    res = subprocess.run(["make", "-C", str(src), "install", f"PREFIX={prefix}", f"PYTHON={python}"],
                         capture_output=True, text=True, timeout=540, check=False, stdin=subprocess.DEVNULL,
                         env={**os.environ, "MAKEFLAGS": ""})
    assert res.returncode == 0, res
    return {"src": src, "prefix": prefix, "bin": prefix / "bin", "lib": prefix / "lib" / "aiofrp",
            "python": Path(python), "out": res.stdout}


def test_make_install_puts_the_commands_in_prefix_bin(installed: dict[str, Any]) -> None:
    bindir, lib = installed["bin"], installed["lib"]
    for cmd in ("frps", "frpc", "frp"):
        link = bindir / cmd
        assert link.is_symlink() and Path(os.readlink(link)) == lib / "venv" / "bin" / cmd
        res = subprocess.run([str(link), "--version"], capture_output=True, text=True, timeout=30, check=True)
        assert res.stdout.strip() == version_text()
    # a virtualenv of its own: the interpreter's site-packages are untouched
    venv_py = lib / "venv" / "bin" / "python"
    where = subprocess.run([str(venv_py), "-c", "import aiofrp, sys; print(aiofrp.__file__); print(sys.prefix)"],
                           capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert Path(where[0]).is_relative_to(lib / "venv") and Path(where[1]) == lib / "venv"
    probe = subprocess.run([str(installed["python"]), "-c", "import aiofrp"], capture_output=True, text=True,
                           timeout=30, check=False, cwd="/")
    if installed["python"] != Path(sys.executable):
        assert probe.returncode != 0, "make install must not install into the system's Python"
    assert f"installed frps frpc frp into {installed['bin']}" in installed["out"]


def test_installed_commands_carry_a_tunnel(installed: dict[str, Any], tmp_path: Path, echo_server) -> None:
    bind, remote = free_port(), free_port()
    (tmp_path / "frps.toml").write_text(f'bindAddr = "{LOCALHOST}"\nbindPort = {bind}\nauth.token = "t"\n')
    (tmp_path / "frpc.toml").write_text(
        f'serverAddr = "{LOCALHOST}"\nserverPort = {bind}\nauth.token = "t"\n\n[[proxies]]\nname = "echo"\n'
        f'type = "tcp"\nlocalPort = {echo_server.port}\nremotePort = {remote}\n')
    env = {**os.environ, "PATH": f"{installed['bin']}{os.pathsep}/usr/bin:/bin"}
    frps = FrpProcess([shutil.which("frps", path=env["PATH"]) or "frps"], None, name="frps", workdir=tmp_path,
                      env=env, args=["-c", "frps.toml"]).start()
    frpc: FrpProcess | None = None
    try:
        frps.wait_for_log("frps started successfully")
        frpc = FrpProcess([shutil.which("frpc", path=env["PATH"]) or "frpc"], None, name="frpc", workdir=tmp_path,
                          env=env, args=["-c", "frpc.toml"]).start()
        frpc.wait_for_proxies("echo")
        assert echo_ok(remote)
    finally:
        if frpc is not None:
            frpc.stop()
        frps.stop()


def _unit_command(unit: Path, bindir: Path, etc: Path, instance: str) -> list[str]:
    text = unit.read_text()
    (line,) = re.findall(r"^ExecStart=(.*)$", text, re.MULTILINE)
    assert line.startswith("/usr/local/bin/") and " -c /etc/frp/" in line, line
    line = line.replace("/usr/local/bin/", f"{bindir}/").replace("/etc/frp/", f"{etc}/").replace("%i", instance)
    return line.split()


@pytest.mark.parametrize("unit", ["frps.service", "frps@.service", "frpc.service", "frpc@.service"])
def test_systemd_units_start_the_installed_commands(installed: dict[str, Any], tmp_path: Path, unit: str,
                                                    echo_server) -> None:
    text = (UNITS / unit).read_text()
    for key in ("Restart=on-failure", "DynamicUser=yes", "LimitNOFILE=1048576", "WantedBy=multi-user.target"):
        assert key in text, (unit, key)
    assert "reload" not in text.split("[Service]")[1].lower()  # no `frpc reload` yet: nothing may call it
    instance = "office"
    etc = tmp_path / "etc"
    etc.mkdir()
    bind, remote = free_port(), free_port()
    server_conf = f'bindAddr = "{LOCALHOST}"\nbindPort = {bind}\nauth.token = "t"\n'
    client_conf = (f'serverAddr = "{LOCALHOST}"\nserverPort = {bind}\nauth.token = "t"\n\n[[proxies]]\n'
                   f'name = "echo"\ntype = "tcp"\nlocalPort = {echo_server.port}\nremotePort = {remote}\n')
    is_server = unit.startswith("frps")
    name = f"{instance}.toml" if "@" in unit else ("frps.toml" if is_server else "frpc.toml")
    (etc / name).write_text(server_conf if is_server else client_conf)
    cmd = _unit_command(UNITS / unit, installed["bin"], etc, instance)
    # the unit's own command line, with its peer (frps first, as frpc gives up when frps is not up)
    procs: list[FrpProcess] = []
    try:
        if is_server:
            procs.append(FrpProcess(cmd[:1], None, name=unit, workdir=tmp_path, args=cmd[1:]).start())
            procs[-1].wait_for_log("frps started successfully")
            (tmp_path / "c.toml").write_text(client_conf)
            procs.append(FrpProcess([str(installed["bin"] / "frpc")], None, name="peer", workdir=tmp_path,
                                    args=["-c", "c.toml"]).start())
        else:
            (tmp_path / "s.toml").write_text(server_conf)
            procs.append(FrpProcess([str(installed["bin"] / "frps")], None, name="peer", workdir=tmp_path,
                                    args=["-c", "s.toml"]).start())
            procs[-1].wait_for_log("frps started successfully")
            procs.append(FrpProcess(cmd[:1], None, name=unit, workdir=tmp_path, args=cmd[1:]).start())
        procs[-1].wait_for_proxies("echo")
        assert echo_ok(remote)
    finally:
        for p in reversed(procs):
            p.stop()
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the unit file itself, with its command pointing at the installed one
        copy = tmp_path / (unit.replace("@", f"@{instance}") if "@" in unit else unit)
        copy.write_text(text.replace("/usr/local/bin/", f"{installed['bin']}/"))
        res = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True,
                             timeout=60, check=False)
        assert res.returncode == 0, res


def test_make_uninstall_removes_it(installed: dict[str, Any]) -> None:
    res = subprocess.run(["make", "-C", str(installed["src"]), "uninstall", f"PREFIX={installed['prefix']}"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res
    assert not installed["lib"].exists()
    assert not any((installed["bin"] / c).exists() or (installed["bin"] / c).is_symlink()
                   for c in ("frps", "frpc", "frp"))


def test_make_demo_does_not_install_the_test_tools(tmp_path: Path) -> None:
    """``make demo`` needs only the runtime: its stamp does not depend on the test extras."""
    res = subprocess.run(["make", "-C", str(ROOT), "-n", "demo", "VENV=" + str(tmp_path / "v")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res
    assert "pip install -q -e ." in res.stdout
    assert "[test]" not in res.stdout, res.stdout
    res = subprocess.run(["make", "-C", str(ROOT), "-n", "test", "VENV=" + str(tmp_path / "v")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert "[test]" in res.stdout, res.stdout
