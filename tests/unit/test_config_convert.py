"""aiofrp.config.convert: legacy INI -> TOML v1 that parses back to an equal struct."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import pytest
from support.examples import EXAMPLES

from aiofrp.config import (
    ConfigError,
    dumps_toml,
    ini_to_toml,
    parse_client_config,
    parse_server_config,
)

# These tests check how configs are read, so the settings aiofrp refuses to run with
# (aiofrp.config.unsupported, tested in test_unsupported.py) are let through here.
parse_client_config = functools.partial(parse_client_config, refuse_unsupported=False)
parse_server_config = functools.partial(parse_server_config, refuse_unsupported=False)

DATA = Path(__file__).parent / "data"

CASES = [
    pytest.param(EXAMPLES / "frps_legacy_full.ini", "server", id="frps_legacy_full"),
    pytest.param(EXAMPLES / "frpc_legacy_full.ini", "client", id="frpc_legacy_full"),
    pytest.param(DATA / "legacy_frps.ini", "server", id="legacy_frps"),
    pytest.param(DATA / "legacy_frpc.ini", "client", id="legacy_frpc"),
]


def parse(text: str, source: str, role: str, **kw: object) -> object:
    fn = parse_server_config if role == "server" else parse_client_config
    return fn(text, source, warnings=[], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "role"), CASES)
def test_round_trip(path: Path, role: str) -> None:
    if not path.is_file():
        pytest.skip("example not available")
    text = path.read_text(encoding="utf-8")
    toml_text = ini_to_toml(text, path.name, role)
    assert parse(toml_text, "converted.toml", role) == parse(text, path.name, role)


def test_output_is_clean_toml() -> None:
    text = (EXAMPLES / "frps_legacy_full.ini").read_text(encoding="utf-8")
    out = ini_to_toml(text, "frps.ini", "server")
    assert out.startswith("# frps configuration converted from the legacy INI file frps.ini by aiofrp ")
    data = tomllib.loads(out)
    assert "bindPort" not in data and "bindAddr" not in data  # frp's defaults are left out
    assert data["auth"] == {"token": "12345678"}
    assert data["allowPorts"][:2] == [{"start": 2000, "end": 3000}, {"single": 3001}]
    assert [p["name"] for p in data["httpPlugins"]] == ["user-manager", "port-manager"]
    assert 'auth.token = "12345678"' in out and "[[httpPlugins]]" in out


def test_client_layout() -> None:
    text = (
        "[common]\nserver_addr = x\nmeta_a-b = 1\nmeta_a.b = 2\n[p]\nlocal_port = 1\nuse_encryption = true\n"
    )
    out = ini_to_toml(text, "frpc.ini", "frpc")
    body = out.split("\n\n", 1)[1]
    assert body == (
        'serverAddr = "x"\n\nmetadatas.a-b = "1"\nmetadatas."a.b" = "2"\n\n'
        '[[proxies]]\nname = "p"\ntype = "tcp"\nlocalPort = 1\ntransport.useEncryption = true\n'
    )


def test_range_sections_become_a_template_loop() -> None:
    text = "[common]\n[range:r]\ntype = udp\nlocal_port = 6000-6001,6005\nremote_port = 7000-7002\n"
    out = ini_to_toml(text, "frpc.ini", "client")
    assert '{{- range $i, $v := parseNumberRangePair "6000-6001,6005" "7000-7002" }}' in out
    assert 'name = "r_{{ $i }}"' in out
    cfg = parse_client_config(out)
    assert [(p.name, p.local_port, p.remote_port) for p in cfg.proxies] == [
        ("r_0", 6000, 7000),
        ("r_1", 6001, 7001),
        ("r_2", 6005, 7002),
    ]


def test_env_templates_are_kept() -> None:
    text = (
        "[common]\ntoken = {{ .Envs.FRP_TOKEN }}\nserver_port = {{ .Envs.PORT }}\nuser = u-{{ .Envs.WHO }}\n"
    )
    env = {"FRP_TOKEN": "t0k", "PORT": "7001", "WHO": "me"}
    out = ini_to_toml(text, "frpc.ini", "client", env=env)
    assert 'auth.token = "{{ .Envs.FRP_TOKEN }}"' in out
    assert 'user = "u-{{ .Envs.WHO }}"' in out
    assert "serverPort = 7001" in out  # not a string: the value at conversion time
    assert parse_client_config(out, env=env) == parse_client_config(text, "frpc.ini", env=env, warnings=[])


def test_ignored_keys_and_includes_are_noted() -> None:
    out = ini_to_toml("[common]\nbogus = 1\nincludes = confd/*.ini\n", "frpc.ini", "client")
    assert "#   [common] bogus: unknown key, ignored" in out
    assert "# NOTE: the included files are not converted" in out
    assert 'includes = ["confd/*.ini"]' in out


def test_errors() -> None:
    with pytest.raises(ConfigError, match="no \\[common\\] section"):
        ini_to_toml("serverPort = 7000\n", "frpc.toml", "client")
    with pytest.raises(ConfigError, match=r"frpc.ini: \[a\] local_port: port number 99999"):
        ini_to_toml("[common]\n[a]\nlocal_port = 99999\n", "frpc.ini", "client")
    with pytest.raises(ValueError, match="role"):
        ini_to_toml("[common]\n", "x.ini", "visitor")


def test_dumps_toml_quotes_what_needs_quoting() -> None:
    data = {
        "s": 'a "q" \\ \n\t\x01\x7f é',
        "n": -3,
        "b": False,
        "l": [1, 2],
        "e": [],
        "t": {"x y": {"k": "v"}, "empty": {}},
        "proxies": [{"name": "p", "m": {"a": 1}}],
    }
    out = dumps_toml(data)
    assert tomllib.loads(out) == data


def test_tcpmux_multiplexer_is_written() -> None:
    """Go frp has no default for it and refuses a tcpmux proxy without it."""
    ini = "[common]\n[m]\ntype = tcpmux\nmultiplexer = httpconnect\ncustom_domains = a.example.com\nlocal_port = 80\n"
    out = ini_to_toml(ini, "frpc.ini", "client")
    assert 'multiplexer = "httpconnect"' in out
    assert tomllib.loads(out)["proxies"][0]["multiplexer"] == "httpconnect"


def test_unsupported_keys_are_kept_and_named() -> None:
    ini = "[common]\ndashboard_addr = 127.0.0.1\ndashboard_port = 7500\npprof_enable = true\n"
    out = ini_to_toml(ini, "frps.ini", "server")
    assert "webServer.port = 7500" in out and "webServer.pprofEnable = true" in out
    assert "#   webServer.pprofEnable (Go's runtime profiler (pprof): Go-only" in out
