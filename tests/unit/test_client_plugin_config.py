"""Config of the network client plugins (unix_domain_socket, http_proxy, socks5, tls2raw): TOML and
legacy INI spellings reach the plugin classes; Go's required keys."""

from __future__ import annotations

import pytest

from aiofrp.client.plugins import PLUGIN_TYPES, PluginError, new_plugin
from aiofrp.config import ConfigError, parse_client_config
from aiofrp.config.plugin import (
    HTTPProxyPluginOptions,
    Socks5PluginOptions,
    TLS2RawPluginOptions,
    UnixDomainSocketPluginOptions,
)

INI = """\
[common]
server_port = 7000

[docker]
type = tcp
remote_port = 6000
plugin = unix_domain_socket
plugin_unix_path = /var/run/docker.sock

[web]
type = tcp
remote_port = 6001
plugin = http_proxy
plugin_http_user = alice
plugin_http_passwd = s3cret

[socks]
type = tcp
remote_port = 6002
plugin = socks5
plugin_user = bob
plugin_passwd = pw

[tls]
type = https
custom_domains = app.example.com
plugin = tls2raw
plugin_local_addr = 127.0.0.1:8080
plugin_crt_path = /c.crt
plugin_key_path = /c.key
"""


def test_legacy_ini_plugin_keys() -> None:
    cfg = parse_client_config(INI, "frpc.ini")
    plugins = {p.name: p.plugin for p in cfg.proxies}
    assert plugins["docker"] == UnixDomainSocketPluginOptions(unix_path="/var/run/docker.sock")
    assert plugins["web"] == HTTPProxyPluginOptions(http_user="alice", http_password="s3cret")
    assert plugins["socks"] == Socks5PluginOptions(username="bob", password="pw")
    assert plugins["tls"] == TLS2RawPluginOptions(local_addr="127.0.0.1:8080", crt_path="/c.crt", key_path="/c.key")


@pytest.mark.parametrize(("ptype", "key"), [("unix_domain_socket", "unixPath"), ("tls2raw", "localAddr")])
def test_required_keys(ptype: str, key: str) -> None:
    text = f'[[proxies]]\nname = "p"\ntype = "tcp"\nremotePort = 6000\n[proxies.plugin]\ntype = "{ptype}"\n'
    with pytest.raises(ConfigError, match=rf"proxies\[0\]\.plugin\.{key}: is required by plugin {ptype}"):
        parse_client_config(text, "frpc.toml")


def test_registered_and_made() -> None:
    assert {"unix_domain_socket", "http_proxy", "socks5", "tls2raw"} <= set(PLUGIN_TYPES)
    assert new_plugin("p", Socks5PluginOptions()).name == "socks5"
    with pytest.raises(PluginError, match=r"cannot load certificate '/nonexistent\.crt'"):
        new_plugin("p", TLS2RawPluginOptions(local_addr="127.0.0.1:1", crt_path="/nonexistent.crt",
                                             key_path="/nonexistent.key"))
