"""client/store.py and client/config_manager.py without a network: store entries decoded and
validated like config file entries, the file written atomically and rolled back on failure, the
API bodies (Go's ProxyDefinition) checked with Go's messages, the settings a reload cannot apply."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from aiofrp.client.config_manager import ApiError, ConfigManager, _changed_settings, definition
from aiofrp.client.store import StoreError, StoreSource, parse_entry
from aiofrp.config import ConfigError, parse_client_config

COMMON = parse_client_config("serverPort = 7000\n")


def test_parse_entry_round_trip_and_errors() -> None:
    p = parse_entry("proxy", {"name": "a", "type": "tcp", "localPort": 22, "remotePort": 6000}, "api", COMMON)
    assert (p.name, p.type, p.local_port) == ("a", "tcp", 22)
    assert definition(p) == {"name": "a", "type": "tcp", "tcp": {"name": "a", "type": "tcp", "localPort": 22,
                                                                  "remotePort": 6000}}
    with pytest.raises(ConfigError) as e:
        parse_entry("proxy", {"name": "a", "type": "tcp", "localPrt": 22}, "api", COMMON)
    assert str(e.value).startswith('api: localPrt: unknown field "localPrt"')
    with pytest.raises(ConfigError) as e:
        parse_entry("proxy", {"name": "a", "type": "tcp", "localPort": 70000}, "api", COMMON)
    assert e.value.path == "localPort"
    v = parse_entry("visitor", {"name": "v", "type": "stcp", "serverName": "s", "bindPort": 9000}, "api", COMMON)
    assert v.name == "v"


def test_store_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d" / "store.json"
    s = StoreSource(str(path))
    s.load(COMMON)  # missing file: empty store
    s.add("proxy", parse_entry("proxy", {"name": "b", "type": "tcp", "localPort": 2}, "x", COMMON))
    s.add("proxy", parse_entry("proxy", {"name": "a", "type": "udp", "localPort": 1}, "x", COMMON))
    with pytest.raises(StoreError, match='already exists: proxy "a"'):
        s.add("proxy", s.proxies["a"])
    data = json.loads(path.read_text())
    assert [p["name"] for p in data["proxies"]] == ["a", "b"] and data["visitors"] == []
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert not (tmp_path / "d" / "store.json.tmp").exists()
    again = StoreSource(str(path))
    again.load(COMMON)
    assert again.proxies == s.proxies
    again.remove("proxy", "a")
    with pytest.raises(StoreError, match="not found"):
        again.remove("proxy", "a")
    with pytest.raises(StoreError, match="not found"):
        again.update("proxy", s.proxies["a"])


def test_store_write_failure_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    s = StoreSource(str(folder / "store.json"))
    entry = parse_entry("proxy", {"name": "a", "type": "tcp", "localPort": 1}, "x", COMMON)
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root ignores the mode: make the target a directory instead
            folder.chmod(0o700)
            (folder / "store.json.tmp").mkdir()
        with pytest.raises(StoreError, match="failed to persist"):
            s.add("proxy", entry)
        assert s.proxies == {}
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(("text", "where"), [
    ("{", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"proxies": {}}', "proxies: must be an array"),
    ('{"proxies": [{"name": "x", "type": "tcp", "localPort": "p"}]}', "proxies[0].localPort"),
    ('{"visitors": [{"name": "v", "type": "nope"}]}', "visitors[0]"),
])
def test_bad_store_files_name_file_key_and_reason(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "store.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        StoreSource(str(path)).load(COMMON)
    assert str(e.value).startswith(f"{path}: ") and where in str(e.value)


class _Client:
    cfg = COMMON
    allow_unsafe: frozenset[str] = frozenset()
    config_path = ""
    store = None


@pytest.mark.parametrize(("body", "status", "msg"), [
    (b"{", 400, "parse JSON error"),
    (b'"x"', 400, "parse JSON error"),
    (b'{"type": "tcp", "tcp": {}}', 400, "proxy name is required"),
    (b'{"name": "a", "type": "ftp", "tcp": {}}', 400, "invalid proxy type: ftp"),
    (b'{"name": "a", "type": "tcp", "tcp": {}, "udp": {}}', 400, "exactly one proxy type block is required"),
    (b'{"name": "a", "type": "tcp", "udp": {}}', 400, 'proxy type block "udp" does not match type "tcp"'),
    (b'{"name": "a", "type": "tcp", "tcp": []}', 400, "must be a JSON object"),
    (b'{"name": "a", "type": "tcp", "tcp": {"localPort": -1}}', 400, "invalid argument: validation error"),
])
def test_definition_bodies(body: bytes, status: int, msg: str) -> None:
    m = ConfigManager(_Client())  # type: ignore[arg-type]
    with pytest.raises(ApiError) as e:
        m.parse_definition("proxy", body)
    assert e.value.status == status and msg in e.value.message


def test_definition_name_must_match_the_path() -> None:
    m = ConfigManager(_Client())  # type: ignore[arg-type]
    body = b'{"name": "a", "type": "tcp", "tcp": {"localPort": 1, "name": "ignored"}}'
    assert m.parse_definition("proxy", body, "a").name == "a"
    with pytest.raises(ApiError, match="proxy name in URL must match name in body"):
        m.parse_definition("proxy", body, "b")


def test_changed_settings_ignores_proxies_and_start() -> None:
    a = parse_client_config('serverPort = 7000\nstart = ["x"]\n[[proxies]]\nname = "x"\ntype = "tcp"\nlocalPort = 1\n')
    b = msgspec.structs.replace(a, proxies=[], start=[])
    assert _changed_settings(a, b) == []
    c = msgspec.structs.replace(a, server_addr="10.0.0.1", user="u")
    assert _changed_settings(a, c) == ["user", "serverAddr"]
