"""aiofrp.config: every rejected config says which file, which key, what value and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiofrp.config import (
    ConfigError,
    load_client_config,
    load_server_config,
    parse_client_config,
    parse_server_config,
)

try:
    import yaml
except ImportError:  # PyYAML is optional: YAML configs need it
    yaml = None  # type: ignore[assignment]
needs_yaml = pytest.mark.skipif(yaml is None, reason="PyYAML not installed")

TCP = '[[proxies]]\nname = "a"\ntype = "tcp"\n'


def client_error(text: str, source: str = "frpc.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_client_config(text, source)
    return info.value


def server_error(text: str, source: str = "frps.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_server_config(text, source)
    return info.value


CLIENT_CASES = [
    pytest.param(
        TCP + '[[proxies]]\nname = "b"\ntype = "tcp"\ntransport.useEncryptoin = true\n',
        "proxies[1].transport.useEncryptoin",
        'unknown field "useEncryptoin", did you mean "useEncryption"?',
        id="misspelt-nested-key",
    ),
    pytest.param(
        "serverPrt = 7000",
        "serverPrt",
        'unknown field "serverPrt", did you mean "serverPort"?',
        id="misspelt-key",
    ),
    pytest.param("nonsense = 1", "nonsense", 'unknown field "nonsense"', id="unknown-key"),
    pytest.param(
        TCP + "useEncryption = true",
        "proxies[0].useEncryption",
        'unknown field "useEncryption", did you mean "transport.useEncryption"?',
        id="key-at-wrong-level",
    ),
    pytest.param('token = "x"', "token", 'unknown field "token", did you mean "auth.token"?', id="ini-habit"),
    pytest.param(
        TCP + 'local_ip = "1.2.3.4"',
        "proxies[0].local_ip",
        'unknown field "local_ip", did you mean "localIP"?',
        id="snake-case-key",
    ),
    pytest.param(
        '[[proxies]]\nname = "a"\ntype = "tcpx"',
        "proxies[0].type",
        'unknown proxy type: tcpx, did you mean "tcp"?',
        id="unknown-proxy-type",
    ),
    pytest.param(
        '[[proxies]]\nname = "a"\ntype = "ftp"',
        "proxies[0].type",
        "unknown proxy type: ftp (one of tcp, udp, http, https, tcpmux, stcp, sudp, xtcp)",
        id="unknown-proxy-type-no-hint",
    ),
    pytest.param(
        '[[proxies]]\nname = "a"',
        "proxies[0].type",
        "proxy type is required (one of tcp, udp, http, https, tcpmux, stcp, sudp, xtcp)",
        id="missing-proxy-type",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "http"',
        "visitors[0].type",
        "unknown visitor type: http (one of stcp, sudp, xtcp)",
        id="unknown-visitor-type",
    ),
    pytest.param(
        TCP + '[proxies.plugin]\ntype = "socks6"',
        "proxies[0].plugin.type",
        'unknown plugin type: socks6, did you mean "socks5"?',
        id="unknown-plugin-type",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "a"\nbindPort = 1\n[visitors.plugin]\ntype = "vnet"',
        "visitors[0].plugin.type",
        "unknown visitor plugin type: vnet (one of virtual_net)",
        id="unknown-visitor-plugin-type",
    ),
    pytest.param(
        '[[proxies]]\ntype = "tcp"', "proxies[0].name", "missing proxy name", id="missing-proxy-name"
    ),
    pytest.param(
        TCP + '[[proxies]]\nname = "b"\ntype = "tcp"\n[[proxies]]\nname = "a"\ntype = "udp"',
        "proxies[2].name",
        'duplicate proxy name "a" (already used by proxies[0])',
        id="duplicate-proxy-name",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "x"\nbindPort = 1\n'
        '[[visitors]]\nname = "v"\ntype = "xtcp"\nserverName = "y"\nbindPort = 2',
        "visitors[1].name",
        'duplicate visitor name "v" (already used by visitors[0])',
        id="duplicate-visitor-name",
    ),
    pytest.param(
        '[[visitors]]\ntype = "stcp"', "visitors[0].name", "missing visitor name", id="missing-visitor-name"
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "stcp"\nbindPort = 1',
        "visitors[0].serverName",
        "missing the name of the proxy to visit",
        id="visitor-server-name",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "x"',
        "visitors[0].bindPort",
        "bind port is required (a negative value means no local listener)",
        id="visitor-bind-port",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "x"\nbindPort = 65536',
        "visitors[0].bindPort",
        "port number 65536 must not be greater than 65535",
        id="visitor-bind-port-range",
    ),
    pytest.param(
        'serverPort = "7000"', "serverPort", 'expected an integer, got string "7000"', id="string-for-int"
    ),
    pytest.param("serverAddr = 127", "serverAddr", "expected a string, got integer 127", id="int-for-string"),
    pytest.param(
        'loginFailExit = "no"',
        "loginFailExit",
        'expected true or false, got string "no"',
        id="string-for-bool",
    ),
    pytest.param(
        "serverPort = 7000.5", "serverPort", "expected an integer, got number 7000.5", id="float-for-int"
    ),
    pytest.param('start = "ssh"', "start", 'expected an array, got string "ssh"', id="string-for-list"),
    pytest.param('metadatas = "x"', "metadatas", 'expected a table, got string "x"', id="string-for-map"),
    pytest.param("metadatas.a = 1", "metadatas.a", "expected a string, got integer 1", id="map-value-type"),
    pytest.param('proxies = ["a"]', "proxies[0]", 'expected a table, got string "a"', id="proxy-not-a-table"),
    pytest.param(
        TCP + 'plugin = "http_proxy"',
        "proxies[0].plugin",
        'expected a table, got string "http_proxy"',
        id="ini-style-plugin",
    ),
    pytest.param(
        'transport.tcpMux = "true"',
        "transport.tcpMux",
        'expected true or false, got string "true"',
        id="tcp-mux-type",
    ),
    pytest.param(
        'transport.protocol = "udp"',
        "transport.protocol",
        'invalid value "udp", must be one of tcp, kcp, quic, websocket, wss',
        id="protocol-enum",
    ),
    pytest.param(
        'transport.protocol = "websockets"',
        "transport.protocol",
        'invalid value "websockets", must be one of tcp, kcp, quic, websocket, wss (did you mean "websocket"?)',
        id="protocol-enum-hint",
    ),
    pytest.param(
        'transport.wireProtocol = "v3"',
        "transport.wireProtocol",
        'invalid value "v3", must be one of v1, v2',
        id="wire",
    ),
    pytest.param(
        'auth.method = "password"',
        "auth.method",
        'invalid value "password", must be one of token, oidc',
        id="auth-method",
    ),
    pytest.param(
        'auth.additionalScopes = ["Heartbeats"]',
        "auth.additionalScopes[0]",
        'invalid value "Heartbeats", must be one of HeartBeats, NewWorkConns (did you mean "HeartBeats"?)',
        id="auth-scope",
    ),
    pytest.param(
        TCP + 'transport.proxyProtocolVersion = "v3"',
        "proxies[0].transport.proxyProtocolVersion",
        'invalid value "v3", must be one of "", v1, v2',
        id="proxy-protocol-version",
    ),
    pytest.param(
        TCP + 'transport.bandwidthLimitMode = "both"',
        "proxies[0].transport.bandwidthLimitMode",
        'invalid value "both", must be one of client, server',
        id="bandwidth-limit-mode",
    ),
    pytest.param(
        TCP + 'transport.bandwidthLimit = "10GB"',
        "proxies[0].transport.bandwidthLimit",
        'invalid bandwidth \'10GB\': must be a number followed by KB or MB, e.g. "512KB" or "1MB"',
        id="bandwidth-limit-unit",
    ),
    pytest.param(
        TCP + 'transport.bandwidthLimit = "fastMB"',
        "proxies[0].transport.bandwidthLimit",
        'invalid bandwidth \'fastMB\': must be a number followed by KB or MB, e.g. "512KB" or "1MB"',
        id="bandwidth-limit-number",
    ),
    pytest.param(
        TCP + "localPort = 70000",
        "proxies[0].localPort",
        "port number 70000 must be in the range 0..65535",
        id="local-port-range",
    ),
    pytest.param(
        TCP + "remotePort = -1",
        "proxies[0].remotePort",
        "port number -1 must be in the range 0..65535",
        id="remote-port",
    ),
    pytest.param(
        "serverPort = 65536",
        "serverPort",
        "port number 65536 must be in the range 0..65535",
        id="server-port",
    ),
    pytest.param(
        "webServer.port = 99999",
        "webServer.port",
        "port number 99999 must be in the range 0..65535",
        id="admin",
    ),
    pytest.param(
        TCP + 'healthCheck.type = "udp"',
        "proxies[0].healthCheck.type",
        'invalid value "udp", must be one of "", tcp, http',
        id="health-check-type",
    ),
    pytest.param(
        TCP + 'healthCheck.type = "http"',
        "proxies[0].healthCheck.path",
        'must be set when healthCheck.type is "http"',
        id="health-check-path",
    ),
    pytest.param(
        '[[proxies]]\nname = "w"\ntype = "http"\nlocalPort = 80',
        "proxies[0]",
        "http proxy needs customDomains or subdomain (both are empty)",
        id="http-domains",
    ),
    pytest.param(
        '[[proxies]]\nname = "m"\ntype = "tcpmux"\nsubdomain = "x"\nmultiplexer = "socks"',
        "proxies[0].multiplexer",
        'invalid value "socks", must be one of httpconnect',
        id="multiplexer",
    ),
    pytest.param(
        TCP + '[proxies.plugin]\ntype = "https2http"',
        "proxies[0].plugin.localAddr",
        "is required by plugin https2http",
        id="plugin-required-key",
    ),
    pytest.param(
        TCP + '[proxies.plugin]\ntype = "socks5"\nuser = "x"',
        "proxies[0].plugin.user",
        'unknown field "user", did you mean "username"?',
        id="plugin-unknown-key",
    ),
    pytest.param(
        TCP + 'annotations = { "bad key!" = "v" }',
        "proxies[0].annotations.bad key!",
        "annotation key 'bad key!' is invalid",
        id="annotation-key",
    ),
    pytest.param(
        '[[visitors]]\nname = "v"\ntype = "xtcp"\nserverName = "x"\nbindPort = 1\nprotocol = "tcp"',
        "visitors[0].protocol",
        'invalid value "tcp", must be one of quic, kcp',
        id="xtcp-visitor-protocol",
    ),
    pytest.param(
        "transport.heartbeatInterval = 60\ntransport.heartbeatTimeout = 30",
        "transport.heartbeatTimeout",
        "heartbeat timeout 30 must not be less than transport.heartbeatInterval 60",
        id="heartbeat-order",
    ),
    pytest.param(
        'auth.token = "a"\nauth.tokenSource.type = "file"\nauth.tokenSource.file.path = "/t"',
        "auth.tokenSource",
        "cannot specify both auth.token and auth.tokenSource",
        id="token-and-source",
    ),
    pytest.param(
        'auth.tokenSource.type = "env"',
        "auth.tokenSource.type",
        "unsupported value source type 'env', must be one of file, exec",
        id="token-source-type",
    ),
    pytest.param(
        'virtualNet.address = "100.86.1.1/24"',
        "virtualNet.address",
        "the VirtualNet feature is not enabled; set featureGates = { VirtualNet = true }",
        id="virtual-net-gate",
    ),
    pytest.param(
        'serverAddr = "a"\nserveraddr = "b"',
        "serveraddr",
        'duplicate key "serveraddr" (also given as "serverAddr")',
        id="same-key-twice",
    ),
    pytest.param(
        'webServer.port = 7400\nwebServer.tls.certFile = "a.crt"',
        "webServer.tls.keyFile",
        "must be set when webServer.tls is used",
        id="web-tls",
    ),
]


@pytest.mark.parametrize(("text", "path", "reason"), CLIENT_CASES)
def test_client_errors(text: str, path: str, reason: str) -> None:
    err = client_error(text)
    assert (err.source, err.path) == ("frpc.toml", path)
    assert err.reason.startswith(reason), err.reason
    assert str(err).startswith(f"frpc.toml: {path}: {reason}")


SERVER_CASES = [
    pytest.param(
        "bindPort = 70000",
        "bindPort",
        "port number 70000 must be in the range 0..65535",
        70000,
        id="bind-port",
    ),
    pytest.param(
        "kcpBindPort = -1", "kcpBindPort", "port number -1 must be in the range 0..65535", -1, id="kcp"
    ),
    pytest.param(
        "vhostHTTPSPort = 65536",
        "vhostHTTPSPort",
        "port number 65536 must be in the range 0..65535",
        65536,
        id="vhost",
    ),
    pytest.param(
        "tcpmuxHTTPConnectPort = 100000",
        "tcpmuxHTTPConnectPort",
        "port number 100000 must be in the range 0..65535",
        100000,
        id="tcpmux-port",
    ),
    pytest.param(
        "sshTunnelGateway.bindPort = 70000",
        "sshTunnelGateway.bindPort",
        "port number 70000 must be in the range 0..65535",
        70000,
        id="ssh-port",
    ),
    pytest.param(
        "allowPorts = [{ start = 3000, end = 2000 }]",
        "allowPorts[0]",
        "start 3000 is greater than end 2000",
        [3000, 2000],
        id="allow-ports-order",
    ),
    pytest.param(
        "allowPorts = [{}]", "allowPorts[0]", "empty entry: give single, or start and end", None, id="empty"
    ),
    pytest.param(
        "allowPorts = [{ single = 1, start = 2, end = 3 }]",
        "allowPorts[0]",
        "give either single, or start and end, not both",
        None,
        id="allow-ports-both",
    ),
    pytest.param(
        "allowPorts = [{ single = 3001 }, { single = 70000 }]",
        "allowPorts[1].single",
        "port number 70000 must be in the range 0..65535",
        70000,
        id="allow-ports-range",
    ),
    pytest.param(
        "allowPorts = [{ first = 1 }]",
        "allowPorts[0].first",
        'unknown field "first"',
        None,
        id="allow-ports-key",
    ),
    pytest.param(
        'allowPorts = "2000-3000"',
        "allowPorts",
        'expected an array, got string "2000-3000"',
        "2000-3000",
        id="ini-ports",
    ),
    pytest.param(
        'log.level = "verbose"',
        "log.level",
        'invalid value "verbose", must be one of trace, debug, info, warn, error',
        "verbose",
        id="log-level",
    ),
    pytest.param(
        '[[httpPlugins]]\nname = "p"\naddr = "127.0.0.1:9000"\nops = ["Logon"]',
        "httpPlugins[0].ops[0]",
        'invalid value "Logon", must be one of Login, NewProxy, CloseProxy, Ping, NewWorkConn, NewUserConn',
        "Logon",
        id="plugin-op",
    ),
    pytest.param(
        '[[httpPlugins]]\nname = "p"\nops = ["Login"]',
        "httpPlugins[0].addr",
        "the plugin address must not be empty",
        None,
        id="plugin-addr",
    ),
    pytest.param(
        "transport.tcpMux = 1",
        "transport.tcpMux",
        "expected true or false, got integer 1",
        1,
        id="tcp-mux-type",
    ),
    pytest.param(
        'vhostHTTPPort = "80"',
        "vhostHTTPPort",
        'expected an integer, got string "80"',
        "80",
        id="quoted-port",
    ),
    pytest.param(
        'subDomainHos = "x"',
        "subDomainHos",
        'unknown field "subDomainHos", did you mean "subDomainHost"?',
        None,
        id="typo",
    ),
    pytest.param("tlsOnly = true", "tlsOnly", 'unknown field "tlsOnly"', None, id="ini-key"),
]


@pytest.mark.parametrize(("text", "path", "reason", "value"), SERVER_CASES)
def test_server_errors(text: str, path: str, reason: str, value: object) -> None:
    err = server_error(text)
    assert (err.source, err.path, err.value) == ("frps.toml", path, value)
    assert str(err) == f"frps.toml: {path}: {reason}" or str(err).startswith(f"frps.toml: {path}: {reason}")


def test_error_from_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "frpc"
    f.write_text(
        'serverAddr = "x"\n[[proxies]]\nname = "a"\ntype = "tcp"\n[[proxies]]\nname = "b"\ntype = "tcp"\n'
        "transport.useEncryptoin = true\n"
    )
    with pytest.raises(ConfigError) as info:
        load_client_config(str(f))
    assert str(info.value) == (
        f'{f}: proxies[1].transport.useEncryptoin: unknown field "useEncryptoin", did you mean "useEncryption"?'
    )


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^/nonexistent/frps\.toml: cannot read config file: No such file"):
        load_server_config("/nonexistent/frps.toml")


class TestSyntaxErrors:
    def test_toml_extension_makes_toml_error_final(self) -> None:
        err = server_error("bindPort: 7000\n", "frps.toml")
        assert err.path == "" and str(err).startswith("frps.toml: invalid TOML: ")

    @needs_yaml
    def test_without_extension_yaml_is_tried(self) -> None:
        assert parse_server_config("bindPort: 7001\n", "frps").bind_port == 7001

    @needs_yaml
    def test_broken_everything_reports_both(self) -> None:
        err = server_error("a: b\nbindPort = [\n", "frps")
        assert str(err).startswith("frps: invalid TOML (") and "invalid YAML" in str(err)

    def test_broken_json(self) -> None:
        err = server_error('{"bindPort": 7000,}', "frps.json")
        assert str(err).startswith("frps.json: invalid JSON: ")

    @needs_yaml
    def test_broken_yaml(self) -> None:
        err = server_error("bindPort: [7000\n", "frps.yaml")
        assert str(err).startswith("frps.yaml: invalid YAML: ")
        # one line: what and where, not PyYAML's multi-line quote of the source
        err = server_error("bindPort: 7000\nbad: indent\n  x: 1\n", "frps.yaml")
        assert str(err) == "frps.yaml: invalid YAML: mapping values are not allowed here (line 3, column 4)"
        err = server_error('a: "open\n', "frps.yaml")
        assert str(err) == ("frps.yaml: invalid YAML: while scanning a quoted scalar at line 1: "
                            "found unexpected end of stream (line 2, column 1)")

    def test_top_level_must_be_a_table(self) -> None:
        assert (
            str(server_error("[1, 2]", "frps.json"))
            == "frps.json: expected a table of keys at the top, got array"
        )

    def test_go_template_errors_name_the_line(self) -> None:
        err = client_error('serverPort = 7000\nauth.token = "{{ .Env.FRP_TOKEN }}"\n', "frpc")
        assert str(err) == (
            "frpc: template: line 2: can't evaluate field Env in type *config.Values (only .Envs exists)"
        )

    def test_legacy_ini_errors_name_section_and_key(self) -> None:
        err = client_error("[common]\nserver_port = 70000\n", "frpc.ini")
        assert str(err) == "frpc.ini: [common] server_port: port number 70000 must be in the range 0..65535"
