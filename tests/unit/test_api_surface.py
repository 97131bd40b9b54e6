"""The Python API's public surface: exactly the exported names, lazily loaded, documented, typed;
keyword options mapped onto the config structs with errors naming the option as spelt."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import aiofrp
from aiofrp.api import options

PUBLIC = {
    "FRP_VERSION", "BlockingTunnel", "Client", "ConfigError", "Error", "Event", "LoginError", "ProxyError",
    "ProxyInfo", "Server", "Tunnel", "Visitor", "__version__", "expose", "shutdown", "version_text",
}


def test_exports_exactly_the_public_names() -> None:
    assert set(aiofrp.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(aiofrp, name) is not None
    with pytest.raises(AttributeError):
        _ = aiofrp.NotAName  # type: ignore[attr-defined]
    assert (Path(aiofrp.__file__).parent / "py.typed").is_file()


def test_import_aiofrp_does_not_load_the_api() -> None:
    """The frps/frpc commands import aiofrp: the API (and the services) load on first use only."""
    code = "import sys, aiofrp; print('aiofrp.api' in sys.modules, 'aiofrp.client.service' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_exceptions() -> None:
    for exc in (aiofrp.ConfigError, aiofrp.LoginError, aiofrp.ProxyError):
        assert issubclass(exc, aiofrp.Error)
    from aiofrp.config import ConfigError as FileConfigError

    assert issubclass(aiofrp.ConfigError, FileConfigError)  # source, path, reason, value as verify's
    err = aiofrp.ProxyError("web", "port not allowed")
    assert (err.name, err.reason, str(err)) == ("web", "port not allowed", "proxy [web]: port not allowed")


def _public_callables() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name in sorted(PUBLIC - {"FRP_VERSION", "__version__"}):
        obj = getattr(aiofrp, name)
        out.append((name, obj))
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property | classmethod)):
                    out.append((f"{name}.{attr}", member))
    return out


@pytest.mark.parametrize(("name", "obj"), _public_callables(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented(name: str, obj: object) -> None:
    doc = inspect.getdoc(obj.__func__ if isinstance(obj, classmethod) else obj)
    assert doc, f"{name} has no docstring"


@pytest.mark.parametrize("fn", [aiofrp.expose, aiofrp.Client.expose, aiofrp.Client.visit])
def test_parameters_documented(fn: object) -> None:
    doc = inspect.getdoc(fn) or ""
    for p in inspect.signature(fn).parameters.values():  # type: ignore[arg-type]
        if p.name != "self":
            assert f":param {p.name}:" in doc, f"{fn}: {p.name} is not documented"


def test_snake_case_options_and_errors() -> None:
    cfg = options.client_config({"server_addr": "frps.example.com", "token": "t", "login_fail_exit": False,
                                 "transport": {"pool_count": 2, "tls": {"enable": False}}}, "aiofrp.Client(...)")
    assert (cfg.server_addr, cfg.auth.token, cfg.login_fail_exit) == ("frps.example.com", "t", False)
    assert (cfg.transport.pool_count, cfg.transport.tls.enable) == (2, False)
    # frp's own spelling works too
    assert options.client_config({"serverPort": 7001}, "x").server_port == 7001
    with pytest.raises(aiofrp.ConfigError) as info:
        options.client_config({"transport": {"tls": {"enable": "yes"}}}, "aiofrp.Client(...)")
    assert info.value.path == "transport.tls.enable"
    assert str(info.value).startswith("aiofrp.Client(...): transport.tls.enable: ")
    p = options.proxy_config({"name": "files", "type": "tcp", "plugin": "static_file", "local_path": "/srv",
                              "transport": {"use_compression": True}}, "expose()")
    assert p.plugin is not None and p.plugin.type == "static_file" and p.transport.use_compression
    with pytest.raises(aiofrp.ConfigError, match=r"^expose\(\): plugin\.localPath: is required by plugin static_file"):
        options.proxy_config({"name": "f", "type": "tcp", "plugin": "static_file"}, "expose()")
    with pytest.raises(aiofrp.ConfigError, match=r"^aiofrp\.Server\(\.\.\.\): allow_ports\[0\]"):
        options.server_config({"allow_ports": [{"start": 7, "end": 3}]}, "aiofrp.Server(...)")
