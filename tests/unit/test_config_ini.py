"""aiofrp.config.ini: legacy INI configs give the same structs as their TOML twins."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
from support.examples import EXAMPLES

from aiofrp.config import (
    ClientConfig,
    ConfigError,
    HTTPProxyConfig,
    HTTPS2HTTPPluginOptions,
    Socks5PluginOptions,
    STCPProxyConfig,
    STCPVisitorConfig,
    TCPProxyConfig,
    UnixDomainSocketPluginOptions,
    XTCPVisitorConfig,
    client_from_ini,
    is_legacy_ini,
    load_client_config,
    load_server_config,
    looks_like_legacy_ini,
    parse_client_config,
    parse_server_config,
)
from aiofrp.config.ini import parse_ini

# These tests check how configs are read, so the settings aiofrp refuses to run with
# (aiofrp.config.unsupported, tested in test_unsupported.py) are let through here.
load_client_config = functools.partial(load_client_config, refuse_unsupported=False)
load_server_config = functools.partial(load_server_config, refuse_unsupported=False)
parse_client_config = functools.partial(parse_client_config, refuse_unsupported=False)
parse_server_config = functools.partial(parse_server_config, refuse_unsupported=False)

DATA = Path(__file__).parent / "data"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="frp example configs not available")


def client(text: str, source: str = "frpc.ini") -> tuple[ClientConfig, list[str]]:
    warnings: list[str] = []
    cfg = parse_client_config(text, source, warnings=warnings)
    return cfg, warnings[1:]  # [0] is the deprecation notice


def client_error(text: str, source: str = "frpc.ini") -> str:
    with pytest.raises(ConfigError) as info:
        parse_client_config(text, source, warnings=[])
    return str(info.value)


@needs_examples
class TestFrpLegacyExamples:
    def test_server_full(self) -> None:
        warnings: list[str] = []
        c = load_server_config(str(EXAMPLES / "frps_legacy_full.ini"), warnings=warnings)
        assert len(warnings) == 1 and "deprecated" in warnings[0]
        assert (c.bind_addr, c.bind_port, c.kcp_bind_port) == ("0.0.0.0", 7000, 7000)
        assert (c.vhost_http_port, c.vhost_https_port, c.subdomain_host) == (80, 443, "frps.com")
        ws = c.web_server
        assert (ws.addr, ws.port, ws.user, ws.password, ws.tls) == ("0.0.0.0", 7500, "admin", "admin", None)
        assert c.enable_prometheus and c.detailed_errors_to_client
        assert (c.log.to, c.log.level, c.log.max_days) == ("./frps.log", "info", 3)
        assert (c.auth.method, c.auth.token, c.auth.additional_scopes) == ("token", "12345678", [])
        assert c.allow_ports_str == "2000-3000,3001,3003,4000-50000"
        assert c.port_allowed(3001) and not c.port_allowed(3002)
        assert (c.transport.max_pool_count, c.transport.tls.force, c.max_ports_per_client) == (5, False, 0)
        assert [(p.name, p.addr, p.path, p.ops) for p in c.http_plugins] == [
            ("user-manager", "127.0.0.1:9000", "/handler", ["Login"]),
            ("port-manager", "127.0.0.1:9001", "/handler", ["NewProxy"]),
        ]

    def test_client_full(self) -> None:
        warnings: list[str] = []
        c = load_client_config(str(EXAMPLES / "frpc_legacy_full.ini"), warnings=warnings)
        assert len(warnings) == 1
        assert (c.server_addr, c.server_port, c.user, c.auth.token) == (
            "0.0.0.0",
            7000,
            "your_name",
            "12345678",
        )
        assert c.auth.method == "token"  # `authentication_method =` (empty) keeps the default
        assert (c.web_server.addr, c.web_server.port, c.transport.pool_count) == ("127.0.0.1", 7400, 5)
        assert c.metadatas == {"var1": "123", "var2": "234"}
        assert c.transport.tls.enable and c.transport.tls.disable_custom_tls_first_byte
        names = [p.name for p in c.proxies]
        assert len(names) == 2 + 17 + 1 + 11 + 2 + 7 + 2 + 1
        assert names[2:4] == ["tcp_port_0", "tcp_port_1"] and "udp_port_10" in names
        by_name = {p.name: p for p in c.proxies}
        tcp16 = by_name["tcp_port_16"]
        assert isinstance(tcp16, TCPProxyConfig) and (tcp16.local_port, tcp16.remote_port) == (6028, 6028)
        ssh = by_name["ssh"]
        assert (ssh.transport.bandwidth_limit, ssh.load_balancer.group, ssh.health_check.max_failed) == (
            "1MB",
            "test_group",
            3,
        )
        web = by_name["web01"]
        assert isinstance(web, HTTPProxyConfig)
        assert (web.locations, web.http_password, web.health_check.path) == (
            ["/", "/pic"],
            "admin",
            "/status",
        )
        assert web.request_headers.set == {"X-From-Where": "frp"}
        assert isinstance(by_name["plugin_unix_domain_socket"].plugin, UnixDomainSocketPluginOptions)
        socks = by_name["plugin_socks5"].plugin
        assert isinstance(socks, Socks5PluginOptions) and (socks.username, socks.password) == ("abc", "abc")
        h2h = by_name["plugin_https2http"].plugin
        assert isinstance(h2h, HTTPS2HTTPPluginOptions) and h2h.request_headers.set == {"X-From-Where": "frp"}
        secret = by_name["secret_tcp"]
        assert isinstance(secret, STCPProxyConfig) and secret.allow_users == ["*"]
        assert by_name["p2p_tcp"].allow_users == ["user1", "user2"]
        v = {x.name: x for x in c.visitors}
        assert (
            isinstance(v["secret_tcp_visitor"], STCPVisitorConfig)
            and v["secret_tcp_visitor"].bind_port == 9000
        )
        xv = v["p2p_tcp_visitor"]
        assert isinstance(xv, XTCPVisitorConfig) and (xv.server_user, xv.protocol) == ("user1", "quic")


class TestTomlTwins:
    @pytest.mark.parametrize("side", ["frps", "frpc"])
    def test_legacy_file_equals_its_toml_twin(self, side: str) -> None:
        load = load_server_config if side == "frps" else load_client_config
        warnings: list[str] = []
        legacy = load(str(DATA / f"legacy_{side}.ini"), warnings=warnings)
        assert legacy == load(str(DATA / f"legacy_{side}.toml"))
        assert len(warnings) == 1, warnings  # every key of the hand-written file is understood

    def test_twin_values_sanity(self) -> None:
        c = load_client_config(str(DATA / "legacy_frpc.ini"), warnings=[])
        assert [p.name for p in c.active_proxies()] == ["ssh", "web", "game_0"]
        assert c.auth.oidc.additional_endpoint_params == {"audience": "https://api.example.com"}
        s = load_server_config(str(DATA / "legacy_frps.ini"), warnings=[])
        assert s.auth.additional_scopes == ["HeartBeats", "NewWorkConns"]
        assert s.web_server.tls is not None and s.web_server.tls.cert_file == "/d.crt"


class TestIniSyntax:
    def test_indentation_comments_quotes_and_colons(self) -> None:
        secs = parse_ini(
            "top = 1\n  [ common ]  \n   a = 1\n\t; c\n  # c\nb: two words \nc = \"q\"\nd = 'x'\ne = `r`\n"
            'f = "a"b"\ng = x # kept\nflag\n[common]\na = 3\n'
        )
        assert [s.name for s in secs] == ["DEFAULT", "common"]
        assert secs[0].items == {"top": "1"}
        assert secs[1].items == {
            "b": "two words",
            "c": "q",
            "d": "x",
            "e": "r",
            "f": '"a"b"',
            "g": "x # kept",
            "flag": "true",
            "a": "3",  # repeated section merged, last value wins
        }

    def test_continuation_lines(self) -> None:
        assert parse_ini("[s]\na = one \\\n  two\n")[1].items == {"a": "one two"}

    @pytest.mark.parametrize(
        ("text", "source", "legacy"),
        [
            ("[common]\nserver_port = 7000\n", "frpc", True),
            ("[common]\nserver_port = 7000\n", "frpc.ini", True),
            ("  [common]\n  server_port = 7000\n", "frpc", True),
            ("[common]\nserver_port = 7000\n", "frpc.toml", False),
            ('serverPort = 7000\n[[proxies]]\nname = "a"\n', "frpc", False),
            ("[common]\nflag\n", "frpc", False),  # not INI without boolean keys (go-ini's default)
            ("[commons]\na = 1\n", "frpc", False),
            ("", "frpc", False),
        ],
    )
    def test_detection(self, text: str, source: str, legacy: bool) -> None:
        assert is_legacy_ini(text, source) is legacy

    def test_toml_with_multiline_array_is_not_ini(self) -> None:
        assert not looks_like_legacy_ini('[common]\nstart = [\n  "a",\n]\n')


class TestMapping:
    def test_minimal_client_uses_v1_defaults(self) -> None:
        cfg, warnings = client("[common]\n")
        assert cfg == parse_client_config("")
        assert warnings == []

    def test_minimal_server_keeps_the_legacy_dashboard_addr(self) -> None:
        cfg = parse_server_config("[common]\n", "frps.ini", warnings=[])
        assert cfg.web_server.addr == "0.0.0.0"
        assert cfg == parse_server_config('webServer.addr = "0.0.0.0"')

    def test_range_sections(self) -> None:
        cfg, _ = client(
            "[common]\n[range:r]\ntype = udp\nlocal_port = 6010-6012,6020\nremote_port = 7010-7013\nmeta_a = b\n"
        )
        got = [(p.name, p.type, p.local_port, p.remote_port, p.metadatas) for p in cfg.proxies]
        assert got == [
            ("r_0", "udp", 6010, 7010, {"a": "b"}),
            ("r_1", "udp", 6011, 7011, {"a": "b"}),
            ("r_2", "udp", 6012, 7012, {"a": "b"}),
            ("r_3", "udp", 6020, 7013, {"a": "b"}),
        ]

    @pytest.mark.parametrize(
        ("section", "message"),
        [
            (
                "[range:r]\nlocal_port = 1-3\nremote_port = 1-2\n",
                "[range:r]: local ports number should be same",
            ),
            ("[range:r]\nlocal_port = 1-3\n", "[range:r]: local_port or remote_port is empty"),
            (
                "[range:r]\nlocal_port = 3-1\nremote_port = 1\n",
                "[range:r] local_port: range number is invalid",
            ),
        ],
    )
    def test_range_errors(self, section: str, message: str) -> None:
        assert message in client_error("[common]\n" + section)

    def test_unknown_keys_are_ignored_with_warnings(self) -> None:
        cfg, warnings = client(
            "[common]\nserver_prot = 7001\nbogus = 1\n[a]\ntype = http\ncustom_domains = x\nremote_port = 1\n"
            "sk = s\nlocal_prot = 2\nplugin_unix_path = /x\n[b]\nplugin = socks5\nplugin_local_addr = y\n"
        )
        assert cfg.server_port == 7000 and [p.name for p in cfg.proxies] == ["a", "b"]
        assert warnings == [
            'frpc.ini: [common] server_prot: unknown key (did you mean "server_port"?), ignored',
            "frpc.ini: [common] bogus: unknown key, ignored",
            "frpc.ini: [a] remote_port: not used by http proxies, ignored",
            "frpc.ini: [a] sk: not used by http proxies, ignored",
            'frpc.ini: [a] local_prot: unknown key (did you mean "local_port"?), ignored',
            "frpc.ini: [a] plugin_unix_path: no plugin is set, ignored",
            "frpc.ini: [b] plugin_local_addr: not used by plugin socks5, ignored",
        ]

    def test_unparsable_numbers_and_booleans_are_ignored_like_go(self) -> None:
        cfg, warnings = client("[common]\nserver_port = abc\nlogin_fail_exit = maybe\ntls_enable = off\n")
        assert (cfg.server_port, cfg.login_fail_exit, cfg.transport.tls.enable) == (7000, True, False)
        assert warnings == [
            "frpc.ini: [common] server_port: 'abc' is not an integer, ignored",
            "frpc.ini: [common] login_fail_exit: 'maybe' is not a boolean, ignored",
        ]

    def test_warnings_are_logged_without_a_list(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="aiofrp.config"):
            parse_client_config("[common]\nbogus = 1\n", "frpc.ini")
        assert [r.getMessage() for r in caplog.records][1] == "frpc.ini: [common] bogus: unknown key, ignored"

    def test_server_ignores_proxy_sections(self) -> None:
        warnings: list[str] = []
        parse_server_config("[common]\n[ssh]\ntype = tcp\n", "frps.ini", warnings=warnings)
        assert warnings[1:] == ["frps.ini: [ssh]: section not used by frps, ignored"]

    def test_visitor_defaults(self) -> None:
        cfg, _ = client(
            "[common]\n[v]\nrole = visitor\ntype = xtcp\nserver_name = p\nbind_port = 9\nmax_retries_an_hour = -3\n"
        )
        v = cfg.visitors[0]
        assert isinstance(v, XTCPVisitorConfig)
        assert (v.bind_addr, v.protocol, v.max_retries_an_hour, v.min_retry_interval) == (
            "127.0.0.1",
            "quic",
            8,
            90,
        )

    def test_to_data(self) -> None:
        conv = client_from_ini("[common]\ntoken = t\n[a]\nlocal_port = 1\n", "x.ini")
        assert conv.data == {
            "auth": {"token": "t"},
            "proxies": [{"name": "a", "type": "tcp", "localPort": 1}],
        }
        assert conv.origins["proxies[0].localPort"] == "[a] local_port"


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[common]\n[a]\nlocal_port = 70000\n", "frpc.ini: [a] local_port: port number 70000 must be in"),
            (
                "[common]\n[a]\nbandwidth_limit = 1GB\n",
                "frpc.ini: [a] bandwidth_limit: invalid bandwidth '1GB'",
            ),
            (
                "[common]\n[a]\ntype = htp\n",
                'frpc.ini: [a] type: unknown proxy type: htp, did you mean "http"?',
            ),
            ("[common]\n[a]\nrole = client\n", "frpc.ini: [a] role: role should be 'server' or 'visitor'"),
            ("[common]\n[v]\nrole = visitor\n", "frpc.ini: [v] type: visitor type is required"),
            (
                "[common]\n[v]\nrole = visitor\ntype = stcp\nbind_port = 1\n",
                "[v] serverName: missing the name",
            ),
            ("[common]\n[a]\ntype = http\n", "frpc.ini: [a]: http proxy needs customDomains or subdomain"),
            ("[common]\n[a]\nplugin = nope\n", "frpc.ini: [a] plugin type: unknown plugin type: nope"),
            ("[common]\n[a]\nhealth_check_type = icmp\n", '[a] health_check_type: invalid value "icmp"'),
            ("[common]\nprotocol = auto\n", 'frpc.ini: [common] protocol: invalid value "auto"'),
            ("[common]\nlog_level = loud\n", 'frpc.ini: [common] log_level: invalid value "loud"'),
        ],
    )
    def test_client_errors_use_ini_names(self, text: str, message: str) -> None:
        assert message in client_error(text)

    def test_server_errors_use_ini_names(self) -> None:
        with pytest.raises(ConfigError) as info:
            parse_server_config("[common]\nallow_ports = 10-x\n", "frps.ini", warnings=[])
        assert str(info.value).startswith("frps.ini: [common] allow_ports: range number is invalid")
        with pytest.raises(ConfigError) as info:
            parse_server_config("[common]\n[plugin.p]\npath = /h\n", "frps.ini", warnings=[])
        assert str(info.value) == "frps.ini: [plugin.p] addr: the plugin address must not be empty"

    def test_legacy_ini_ignores_strict_mode_like_go(self) -> None:
        cfg = parse_client_config("[common]\nnot_a_key = 1\n", "frpc.ini", strict=True, warnings=[])
        assert cfg.server_port == 7000
