"""The README's "frpc admin API, UI and hot reload" examples, run as a user would (see
test_readme_examples.py for how blocks are extracted, remapped and run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e.test_readme_examples import Example, ports
from support.procs import EchoServer, free_port
from support.stun import StunServer
from support.waits import echo_ok, poll, refused

pytestmark = pytest.mark.timeout(120)


def test_admin_reload_and_store_examples(frp, tmp_path: Path) -> None:
    with EchoServer() as ssh, EchoServer() as web:
        ex = Example(tmp_path, ports(7000, 6000, 7400, 6080, 6001, p22=ssh.port, p8080=web.port))
        ex.write("tcp/frps.toml")
        frpc_toml = ex.text("tcp/frpc.toml")
        i = frpc_toml.index("[[proxies]]")
        conf = tmp_path / "frpc.toml"
        conf.write_text(frpc_toml[:i] + ex.text("admin/admin.toml") + "\n" + frpc_toml[i:])
        ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
        frpc = ex.start(frp, "frpc -c frpc.toml")
        frpc.wait_for_proxies("ssh")
        assert echo_ok(ex.ports[6000])

        # edit the file (a proxy added), then the README's commands
        conf.write_text(conf.read_text() + f'\n[[proxies]]\nname = "ssh2"\ntype = "tcp"\nlocalIP = "127.0.0.1"\n'
                                           f'localPort = {ssh.port}\nremotePort = {ex.ports[6001]}\n')
        reload_line, status_line = ex.commands("admin/reload.sh")
        assert ex.run(reload_line).stdout.strip() == "reload success"
        frpc.wait_for_proxies("ssh2")
        res = ex.run(status_line)
        assert re.search(r"^ssh2\s+running", res.stdout, re.MULTILINE), res
        assert echo_ok(ex.ports[6001]) and echo_ok(ex.ports[6000])

        listing, delete = ex.commands("admin/store.sh")[2:]
        # the create command spans two lines in the README (a trailing backslash)
        create = ex.text("admin/store.sh").split("\ncurl -s -u admin:admin http")[0]
        made = json.loads(ex.run(create).stdout)
        assert made["name"] == "web" and made["tcp"]["remotePort"] == ex.ports[6080]
        frpc.wait_for_proxies("web")
        poll(lambda: echo_ok(ex.ports[6080]), 10, "the store proxy")
        assert [p["name"] for p in json.loads(ex.run(listing).stdout)["proxies"]] == ["web"]
        assert (tmp_path / "frpc-store.json").exists()
        ex.run(delete)
        poll(lambda: refused(ex.ports[6080]), 10, "the store proxy removed")


def test_more_commands_example(frp, tmp_path: Path) -> None:
    lines = Example(tmp_path, {}).text("admin/more.sh").splitlines()
    config_dir, discover = (ln.split("#")[0].strip() for ln in lines[:2])
    expected = [ln[2:] for ln in lines[2:]]
    assert config_dir == "frpc --config_dir /etc/frp/conf.d"
    with StunServer() as stun:
        ex = Example(tmp_path, {}, {"stun.easyvoip.com:3478": stun.address})
        out = ex.run(ex.text("admin/more.sh").splitlines()[1].split("#")[0]).stdout.splitlines()
    assert discover.startswith("frpc nathole discover")
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=True):  # same lines; addresses differ
        assert got.split(":")[0] == want.split(":")[0], (got, want)
    # --config_dir with the README's form, on a directory of this test
    bind = free_port()
    d = tmp_path / "conf.d"
    d.mkdir()
    (tmp_path / "frps.toml").write_text(f"bindPort = {bind}\n")
    ex = Example(tmp_path, {})
    ex.start(frp, "frps -c frps.toml").wait_for_log("frps started successfully")
    with EchoServer() as echo:
        p = free_port()
        (d / "one.toml").write_text(f'serverPort = {bind}\n[[proxies]]\nname = "one"\ntype = "tcp"\n'
                                    f'localIP = "127.0.0.1"\nlocalPort = {echo.port}\nremotePort = {p}\n')
        ex.start(frp, config_dir.replace("/etc/frp/conf.d", str(d))).wait_for_proxies("one")
        assert echo_ok(p)
