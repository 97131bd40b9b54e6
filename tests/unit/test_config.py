"""aiofrp.config: loading frp's own example files, defaults, formats, round trips."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import msgspec
import pytest
from support.examples import EXAMPLES

from aiofrp.config import (
    PROXY_TYPES,
    ClientConfig,
    HTTP2HTTPSPluginOptions,
    HTTPProxyConfig,
    HTTPProxyPluginOptions,
    HTTPS2HTTPPluginOptions,
    HTTPS2HTTPSPluginOptions,
    HTTPSProxyConfig,
    ServerConfig,
    Socks5PluginOptions,
    StaticFilePluginOptions,
    STCPProxyConfig,
    STCPVisitorConfig,
    TCPMuxProxyConfig,
    TCPProxyConfig,
    TLS2RawPluginOptions,
    UDPProxyConfig,
    UnixDomainSocketPluginOptions,
    VirtualNetPluginOptions,
    VirtualNetVisitorPluginOptions,
    XTCPProxyConfig,
    XTCPVisitorConfig,
    from_data,
    load_client_config,
    load_server_config,
    parse_bandwidth,
    parse_client_config,
    parse_ports_range,
    parse_server_config,
    proxy_wire_name,
    to_frp_dict,
)

# These tests check how configs are read, so the settings aiofrp refuses to run with
# (aiofrp.config.unsupported, tested in test_unsupported.py) are let through here.
load_client_config = functools.partial(load_client_config, refuse_unsupported=False)
load_server_config = functools.partial(load_server_config, refuse_unsupported=False)
parse_client_config = functools.partial(parse_client_config, refuse_unsupported=False)
parse_server_config = functools.partial(parse_server_config, refuse_unsupported=False)

DATA = Path(__file__).parent / "data"

try:
    import yaml
except ImportError:  # PyYAML is optional: YAML configs need it, TOML and JSON do not
    yaml = None  # type: ignore[assignment]
needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML not installed")


def _examples(prefix: str) -> list[Path]:
    return sorted(EXAMPLES.glob(f"{prefix}*.toml"))


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="frp example configs not available")
class TestFrpExamples:
    def test_every_example_is_found(self) -> None:
        names = {p.name for p in EXAMPLES.glob("*.toml")}
        assert {"frps.toml", "frpc.toml", "frps_full_example.toml", "frpc_full_example.toml"} <= names

    @pytest.mark.parametrize("path", _examples("frps"), ids=lambda p: p.name)
    def test_server_examples_load(self, path: Path) -> None:
        assert isinstance(load_server_config(str(path)), ServerConfig)

    @pytest.mark.parametrize("path", _examples("frpc"), ids=lambda p: p.name)
    def test_client_examples_load(self, path: Path) -> None:
        assert isinstance(load_client_config(str(path)), ClientConfig)

    def test_server_full_example_values(self) -> None:
        c = load_server_config(str(EXAMPLES / "frps_full_example.toml"))
        assert (c.bind_addr, c.bind_port, c.kcp_bind_port) == ("0.0.0.0", 7000, 7000)
        assert (c.vhost_http_port, c.vhost_https_port) == (80, 443)
        assert c.proxy_bind_addr == "0.0.0.0"
        assert c.transport.max_pool_count == 5 and c.transport.tls.force is False
        assert (c.web_server.addr, c.web_server.port, c.web_server.password) == ("127.0.0.1", 7500, "admin")
        assert c.enable_prometheus and c.detailed_errors_to_client
        assert (c.log.to, c.log.level, c.log.max_days) == ("./frps.log", "info", 3)
        assert (c.auth.method, c.auth.token) == ("token", "12345678")
        assert c.subdomain_host == "frps.com"
        assert c.allow_ports_str == "2000-3000,3001,3003,4000-50000"
        assert c.port_allowed(2500) and c.port_allowed(3003) and not c.port_allowed(3002)
        assert [(p.name, p.ops) for p in c.http_plugins] == [
            ("user-manager", ["Login"]),
            ("port-manager", ["NewProxy"]),
        ]
        assert c.nathole_analysis_data_reserve_hours == 168

    def test_client_full_example_values(self) -> None:
        c = load_client_config(str(EXAMPLES / "frpc_full_example.toml"))
        assert (c.user, c.server_addr, c.server_port, c.login_fail_exit) == (
            "your_name",
            "0.0.0.0",
            7000,
            True,
        )
        assert c.transport.pool_count == 5 and c.transport.connect_server_local_ip == "0.0.0.0"
        assert c.transport.tls.enable and c.metadatas == {"var1": "abc", "var2": "123"}
        by_name = {p.name: p for p in c.proxies}
        assert len(by_name) == len(c.proxies) == 18
        ssh = by_name["ssh"]
        assert isinstance(ssh, TCPProxyConfig) and ssh.remote_port == 6001
        assert ssh.transport.bandwidth_limit == "1MB" and ssh.transport.bandwidth_limit_bytes == 1 << 20
        assert (ssh.load_balancer.group, ssh.load_balancer.group_key) == ("test_group", "123456")
        assert (ssh.health_check.type, ssh.health_check.max_failed) == ("tcp", 3)
        assert ssh.annotations == {"key1": "value1", "prefix/key2": "value2"}
        web01 = by_name["web01"]
        assert isinstance(web01, HTTPProxyConfig)
        assert web01.request_headers.set == {"x-from-where": "frp"}
        assert web01.response_headers.set == {"foo": "bar"}
        assert web01.health_check.http_headers[0].name == "x-from-where"
        assert isinstance(by_name["web02"], HTTPSProxyConfig)
        assert by_name["web02"].transport.proxy_protocol_version == "v2"
        assert isinstance(by_name["tcpmuxhttpconnect"], TCPMuxProxyConfig)
        assert isinstance(by_name["dns"], UDPProxyConfig)
        assert isinstance(by_name["secret_tcp"], STCPProxyConfig)
        p2p = by_name["p2p_tcp"]
        assert isinstance(p2p, XTCPProxyConfig) and p2p.nat_traversal is not None
        plugins = {n: type(p.plugin) for n, p in by_name.items() if p.plugin is not None}
        assert plugins == {
            "plugin_unix_domain_socket": UnixDomainSocketPluginOptions,
            "plugin_http_proxy": HTTPProxyPluginOptions,
            "plugin_socks5": Socks5PluginOptions,
            "plugin_static_file": StaticFilePluginOptions,
            "plugin_https2http": HTTPS2HTTPPluginOptions,
            "plugin_https2https": HTTPS2HTTPSPluginOptions,
            "plugin_http2https": HTTP2HTTPSPluginOptions,
            "plugin_http2http": type(by_name["plugin_http2http"].plugin),
            "plugin_tls2raw": TLS2RawPluginOptions,
            "vnet-server": VirtualNetPluginOptions,
        }
        assert by_name["plugin_http2http"].plugin.type == "http2http"
        https2http = by_name["plugin_https2http"].plugin
        assert isinstance(https2http, HTTPS2HTTPPluginOptions) and https2http.enable_http2
        v = {x.name: x for x in c.visitors}
        assert isinstance(v["secret_tcp_visitor"], STCPVisitorConfig)
        xv = v["p2p_tcp_visitor"]
        assert isinstance(xv, XTCPVisitorConfig)
        assert (xv.protocol, xv.max_retries_an_hour, xv.min_retry_interval, xv.fallback_timeout_ms) == (
            "quic",
            8,
            90,
            1000,
        )
        assert v["vnet-visitor"].bind_port == -1
        assert isinstance(v["vnet-visitor"].plugin, VirtualNetVisitorPluginOptions)
        assert v["vnet-visitor"].plugin.destination_ip == "100.86.0.1"

    @pytest.mark.parametrize("name", ["frps_legacy_full.ini", "frpc_legacy_full.ini"])
    def test_legacy_ini_is_recognised(self, name: str) -> None:
        load = load_server_config if name.startswith("frps") else load_client_config
        warnings: list[str] = []
        cfg = load(str(EXAMPLES / name), warnings=warnings)
        assert isinstance(cfg, ServerConfig if name.startswith("frps") else ClientConfig)
        assert len(warnings) == 1 and "deprecated" in warnings[0]  # nothing in frp's file is ignored


class TestDefaults:
    def test_server_defaults(self) -> None:
        c = parse_server_config("")
        assert (c.bind_addr, c.bind_port, c.proxy_bind_addr) == ("0.0.0.0", 7000, "0.0.0.0")
        assert (c.kcp_bind_port, c.quic_bind_port, c.vhost_http_port, c.vhost_https_port) == (0, 0, 0, 0)
        assert (c.vhost_http_timeout, c.tcpmux_http_connect_port, c.tcpmux_passthrough) == (60, 0, False)
        assert (c.auth.method, c.auth.token, c.auth.additional_scopes) == ("token", "", [])
        t = c.transport
        assert (t.tcp_mux, t.tcp_mux_keepalive_interval, t.tcp_keepalive) == (True, 30, 7200)
        assert (t.max_pool_count, t.heartbeat_timeout, t.tls.force) == (5, -1, False)
        assert (t.quic.keepalive_period, t.quic.max_idle_timeout, t.quic.max_incoming_streams) == (
            10,
            30,
            100000,
        )
        assert (c.web_server.addr, c.web_server.port, c.web_server.tls) == ("127.0.0.1", 0, None)
        assert (c.log.to, c.log.level, c.log.max_days, c.log.disable_print_color) == (
            "console",
            "info",
            3,
            False,
        )
        assert c.detailed_errors_to_client is True
        assert (c.max_ports_per_client, c.user_conn_timeout, c.udp_packet_size) == (0, 10, 1500)
        assert c.nathole_analysis_data_reserve_hours == 168
        assert c.ssh_tunnel_gateway.auto_gen_private_key_path == "./.autogen_ssh_key"
        assert c.allow_ports == [] and c.port_allowed(1) and c.allow_ports_str == ""
        assert c == ServerConfig()

    def test_client_defaults(self) -> None:
        c = parse_client_config("")
        assert (c.server_addr, c.server_port, c.user, c.client_id) == ("0.0.0.0", 7000, "", "")
        assert (c.login_fail_exit, c.nat_hole_stun_server) == (True, "stun.easyvoip.com:3478")
        assert (c.dns_server, c.start, c.udp_packet_size) == ("", [], 1500)
        t = c.transport
        assert (t.protocol, t.wire_protocol, t.dial_server_timeout, t.dial_server_keepalive) == (
            "tcp",
            "v1",
            10,
            7200,
        )
        assert (t.connect_server_local_ip, t.proxy_url, t.pool_count) == ("", "", 1)
        assert (t.tcp_mux, t.tcp_mux_keepalive_interval) == (True, 30)
        assert (t.heartbeat_interval, t.heartbeat_timeout) == (-1, -1)
        assert (t.tls.enable, t.tls.disable_custom_tls_first_byte, t.tls.server_name) == (True, True, "")
        assert (c.auth.method, c.web_server.addr, c.log.to, c.log.level, c.log.max_days) == (
            "token",
            "127.0.0.1",
            "console",
            "info",
            3,
        )
        assert c.proxies == [] and c.visitors == [] and c == ClientConfig()

    def test_proxy_and_visitor_defaults(self) -> None:
        c = parse_client_config(
            '[[proxies]]\nname = "p"\ntype = "tcp"\n'
            '[[proxies]]\nname = "m"\ntype = "tcpmux"\ncustomDomains = ["x"]\n'
            '[[visitors]]\nname = "v"\ntype = "xtcp"\nserverName = "p"\nbindPort = 1\n'
            '[[visitors]]\nname = "s"\ntype = "stcp"\nserverName = "p"\nbindPort = 2\n'
        )
        p = c.proxies[0]
        assert (p.type, p.local_ip, p.local_port, p.enabled, p.plugin) == ("tcp", "127.0.0.1", 0, True, None)
        assert (p.transport.use_encryption, p.transport.use_compression) == (False, False)
        assert (p.transport.bandwidth_limit, p.transport.bandwidth_limit_mode) == ("", "client")
        assert p.transport.proxy_protocol_version == "" and p.transport.bandwidth_limit_bytes == 0
        hc = p.health_check
        assert (hc.type, hc.timeout_seconds, hc.max_failed, hc.interval_seconds) == ("", 3, 1, 10)
        assert c.proxies[1].multiplexer == "httpconnect"
        xv, sv = c.visitors
        assert isinstance(xv, XTCPVisitorConfig)
        assert (xv.bind_addr, xv.protocol, xv.max_retries_an_hour) == ("127.0.0.1", "quic", 8)
        assert (xv.min_retry_interval, xv.fallback_timeout_ms, xv.keep_tunnel_open) == (90, 1000, False)
        assert sv.bind_addr == "127.0.0.1" and sv.type == "stcp"

    def test_zero_means_default_like_go(self) -> None:
        """Go's util.EmptyOr: an explicit 0 or "" takes the default."""
        c = parse_server_config('bindPort = 0\nbindAddr = ""\nlog.maxDays = 0\nuserConnTimeout = 0')
        assert (c.bind_port, c.bind_addr, c.log.max_days, c.user_conn_timeout) == (7000, "0.0.0.0", 3, 10)
        cc = parse_client_config(
            'transport.poolCount = 0\ntransport.protocol = ""\n[[proxies]]\nname="a"\ntype="tcp"\nlocalIP=""'
        )
        assert (cc.transport.pool_count, cc.transport.protocol, cc.proxies[0].local_ip) == (
            1,
            "tcp",
            "127.0.0.1",
        )

    def test_explicit_false_is_kept(self) -> None:
        c = parse_client_config(
            "loginFailExit = false\ntransport.tls.enable = false\ntransport.tcpMux = false"
        )
        assert (c.login_fail_exit, c.transport.tls.enable, c.transport.tcp_mux) == (False, False, False)
        assert parse_server_config("detailedErrorsToClient = false").detailed_errors_to_client is False


class TestDerivedDefaults:
    def test_proxy_bind_addr_follows_bind_addr(self) -> None:
        assert parse_server_config('bindAddr = "127.0.0.1"').proxy_bind_addr == "127.0.0.1"
        c = parse_server_config('bindAddr = "127.0.0.1"\nproxyBindAddr = "0.0.0.0"')
        assert c.proxy_bind_addr == "0.0.0.0"

    def test_server_heartbeat_follows_tcp_mux(self) -> None:
        assert parse_server_config("").transport.heartbeat_timeout == -1
        assert parse_server_config("transport.tcpMux = false").transport.heartbeat_timeout == 90
        c = parse_server_config("transport.tcpMux = false\ntransport.heartbeatTimeout = 20")
        assert c.transport.heartbeat_timeout == 20

    def test_client_heartbeat_follows_tcp_mux(self) -> None:
        t = parse_client_config("transport.tcpMux = false").transport
        assert (t.heartbeat_interval, t.heartbeat_timeout) == (30, 90)
        t = parse_client_config("transport.heartbeatInterval = 10").transport
        assert (t.heartbeat_interval, t.heartbeat_timeout) == (10, -1)

    def test_tls_force_implied_by_trusted_ca(self) -> None:
        assert parse_server_config('transport.tls.trustedCaFile = "ca.crt"').transport.tls.force is True
        assert parse_server_config('transport.tls.certFile = "a.crt"').transport.tls.force is False

    def test_programmatic_construction_applies_defaults(self) -> None:
        assert ServerConfig(bind_addr="10.0.0.1").proxy_bind_addr == "10.0.0.1"
        assert TCPProxyConfig(name="x").local_ip == "127.0.0.1"


class TestKeysAndFormats:
    def test_keys_are_case_insensitive(self) -> None:
        a = parse_server_config('subdomainHost = "x.com"\nVHOSTHTTPPORT = 80\nTransport.TCPMUX = false')
        assert (a.subdomain_host, a.vhost_http_port, a.transport.tcp_mux) == ("x.com", 80, False)
        b = parse_client_config(
            '[[Proxies]]\nNAME = "a"\nType = "tcp"\nlocalip = "1.2.3.4"\nTransport.UseEncryption = true'
        )
        p = b.proxies[0]
        assert (p.name, p.local_ip, p.transport.use_encryption) == ("a", "1.2.3.4", True)

    def test_map_keys_keep_their_case(self) -> None:
        c = parse_client_config(
            'metadatas.Team = "x"\n[[proxies]]\nname = "a"\ntype = "tcp"\nmetadatas.KeY = "v"'
        )
        assert c.metadatas == {"Team": "x"} and c.proxies[0].metadatas == {"KeY": "v"}

    @needs_yaml
    @pytest.mark.parametrize("kind", ["frpc", "frps"])
    def test_toml_json_yaml_give_equal_structs(self, kind: str) -> None:
        load = load_client_config if kind == "frpc" else load_server_config
        toml_cfg, json_cfg, yaml_cfg = (
            load(str(DATA / f"{kind}_sample.{ext}")) for ext in ("toml", "json", "yaml")
        )
        assert toml_cfg == json_cfg == yaml_cfg
        assert toml_cfg != (ClientConfig() if kind == "frpc" else ServerConfig())

    @pytest.mark.parametrize("ext", ["toml", "json", pytest.param("yaml", marks=needs_yaml)])
    def test_format_detected_without_extension(self, ext: str, tmp_path: Path) -> None:
        target = tmp_path / "frpc"
        shutil.copy(DATA / f"frpc_sample.{ext}", target)
        assert load_client_config(str(target)) == load_client_config(str(DATA / "frpc_sample.toml"))

    @needs_yaml
    def test_sample_values(self) -> None:
        c = load_client_config(str(DATA / "frpc_sample.yaml"))
        assert (c.transport.protocol, c.transport.heartbeat_interval, c.transport.heartbeat_timeout) == (
            "websocket",
            30,
            90,
        )
        assert c.transport.tls.disable_custom_tls_first_byte is False
        assert (
            c.proxies[0].transport.use_encryption
            and c.proxies[0].transport.bandwidth_limit_bytes == 512 * 1024
        )
        s = load_server_config(str(DATA / "frps_sample.yaml"))
        assert (s.proxy_bind_addr, s.transport.heartbeat_timeout, s.transport.tls.force) == (
            "127.0.0.1",
            90,
            True,
        )

    def test_non_strict_ignores_unknown_keys(self) -> None:
        c = parse_client_config('serverPrt = 1\n[[proxies]]\nname = "a"\ntype = "tcp"\nfoo = 1', strict=False)
        assert c.server_port == 7000 and c.proxies[0].name == "a"

    def test_null_leaves_default(self) -> None:
        c = parse_client_config('{"serverPort": null, "transport": {"tcpMux": null}}', "c.json")
        assert c.server_port == 7000 and c.transport.tcp_mux is True

    def test_empty_and_comment_only_files(self) -> None:
        assert parse_server_config("# nothing\n") == ServerConfig()
        assert parse_client_config("{}", "x.json") == ClientConfig()


def _round_trip_cases() -> list[tuple[str, str]]:
    out = [(str(DATA / f"{k}_sample.toml"), k) for k in ("frpc", "frps")]
    if EXAMPLES.is_dir():
        out += [(str(p), "frps") for p in _examples("frps")] + [(str(p), "frpc") for p in _examples("frpc")]
    return out


class TestRoundTrip:
    @pytest.mark.parametrize(("path", "kind"), _round_trip_cases(), ids=lambda x: Path(x).name)
    def test_to_frp_dict_and_back(self, path: str, kind: str) -> None:
        cls = ClientConfig if kind == "frpc" else ServerConfig
        load = load_client_config if kind == "frpc" else load_server_config
        parse = parse_client_config if kind == "frpc" else parse_server_config
        cfg = load(path)
        data = to_frp_dict(cfg)
        assert from_data(cls, data) == cfg
        assert parse(json.dumps(data), "rt.json") == cfg
        if yaml is not None:
            assert parse(yaml.safe_dump(data), "rt.yaml") == cfg

    def test_only_non_default_values(self) -> None:
        assert to_frp_dict(ServerConfig()) == {}
        assert to_frp_dict(ClientConfig()) == {}
        assert to_frp_dict(ServerConfig(bind_addr="1.2.3.4")) == {"bindAddr": "1.2.3.4"}
        c = parse_server_config('bindAddr = "1.2.3.4"\nproxyBindAddr = "0.0.0.0"\ntransport.tcpMux = false')
        assert to_frp_dict(c) == {
            "bindAddr": "1.2.3.4",
            "proxyBindAddr": "0.0.0.0",
            "transport": {"tcpMux": False},
        }

    def test_canonical_spelling(self) -> None:
        c = parse_server_config(
            'vhosthttpport = 80\nvhosthttpsport = 443\ntcpmuxhttpconnectport = 1337\nsubdomainhost = "a.com"\n'
            'custom404page = "/x"\nvhosthttptimeout = 5'
        )
        assert list(to_frp_dict(c)) == [
            "vhostHTTPPort",
            "vhostHTTPTimeout",
            "vhostHTTPSPort",
            "tcpmuxHTTPConnectPort",
            "subDomainHost",
            "custom404Page",
        ]
        cc = parse_client_config(
            'clientid = "x"\ntransport.tls.disablecustomtlsfirstbyte = false\ntransport.proxyurl = "http://p:3128"\n'
            'transport.connectserverlocalip = "1.1.1.1"\n[[proxies]]\nname = "a"\ntype = "http"\n'
            'localip = "1.2.3.4"\nsubdomain = "a"\nroutebyhttpuser = "u"'
        )
        d = to_frp_dict(cc)
        assert d["clientID"] == "x"
        assert d["transport"] == {
            "connectServerLocalIP": "1.1.1.1",
            "proxyURL": "http://p:3128",
            "tls": {"disableCustomTLSFirstByte": False},
        }
        assert d["proxies"] == [
            {"name": "a", "type": "http", "localIP": "1.2.3.4", "subdomain": "a", "routeByHTTPUser": "u"}
        ]

    def test_full_json_uses_frp_spelling(self) -> None:
        doc = json.loads(msgspec.json.encode(TCPProxyConfig(name="x", remote_port=1)))
        assert doc["type"] == "tcp" and doc["localIP"] == "127.0.0.1" and doc["remotePort"] == 1


class TestHelpers:
    def test_proxy_wire_name(self) -> None:
        assert proxy_wire_name(ClientConfig(), "ssh") == "ssh"
        assert proxy_wire_name(ClientConfig(user="alice"), "ssh") == "alice.ssh"

    def test_active_proxies_follow_start_and_enabled(self) -> None:
        c = parse_client_config(
            'start = ["a", "b"]\n'
            '[[proxies]]\nname = "a"\ntype = "tcp"\n'
            '[[proxies]]\nname = "b"\ntype = "tcp"\nenabled = false\n'
            '[[proxies]]\nname = "c"\ntype = "tcp"\n'
        )
        assert [p.name for p in c.active_proxies()] == ["a"]

    def test_proxy_types_registry(self) -> None:
        assert sorted(PROXY_TYPES) == sorted(
            ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"]
        )
        assert all(cls(name="n").type == t for t, cls in PROXY_TYPES.items())

    def test_parse_bandwidth(self) -> None:
        assert parse_bandwidth("") == 0
        assert parse_bandwidth("10KB") == 10240
        assert parse_bandwidth(" 1.5MB ") == 1572864
        for bad in ("10", "10kb", "MB", "10 GB"):
            with pytest.raises(ValueError):
                parse_bandwidth(bad)

    def test_parse_ports_range(self) -> None:
        r = parse_ports_range("2000-3000, 3001")
        assert [(x.start, x.end, x.single) for x in r] == [(2000, 3000, 0), (0, 0, 3001)]
        with pytest.raises(ValueError):
            parse_ports_range("3000-2000")

    def test_from_data_for_a_single_proxy(self) -> None:
        p = from_data(TCPProxyConfig, {"name": "x", "remotePort": 7})
        assert p == TCPProxyConfig(name="x", remote_port=7)
