"""Client plugins end to end with real clients: our frps + our frpc processes, on every proxy type
a plugin serves (tcp, http, https, tcpmux, stcp, xtcp).

* ``unix_domain_socket``: curl to a unix-socket HTTP server through tcp, http (vhost), tcpmux,
  stcp and xtcp proxies; the PROXY protocol header reaches the socket first.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping

import pytest
from support.plugin_services import UnixEchoServer, UnixHttpServer, curl
from support.procs import LOCALHOST, TEST_STRING, FrpProcess, block, free_port, frpc_config, frps_config
from support.waits import poll

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-plugins-token"
SK = "plugin-secret"


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A short directory for unix sockets (their paths are limited to 107 bytes)."""
    d = tempfile.mkdtemp(prefix="frp-uds-", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def plugin_proxy(name: str, kind: str, plugin: Mapping[str, object], **keys: object) -> str:
    """A ``[[proxies]]`` table with a ``[proxies.plugin]`` table."""
    text = block("proxies", name=name, type=kind, **keys)
    return text + block("proxies.plugin", **plugin).replace("[[proxies.plugin]]", "[proxies.plugin]")


class Servers:
    def __init__(self, frps: FrpProcess, bind: int, vhost_http: int, vhost_https: int, tcpmux: int) -> None:
        self.frps, self.bind, self.vhost_http, self.vhost_https, self.tcpmux = frps, bind, vhost_http, vhost_https, tcpmux


@pytest.fixture
def servers(frp) -> Servers:
    bind, vh, vhs, mux = free_port(), free_port(), free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=vh, vhostHTTPSPort=vhs,
                                     tcpmuxHTTPConnectPort=mux))
    frps.wait_for_log(r"frps started successfully", 10)
    return Servers(frps, bind, vh, vhs, mux)


def get_ok(url: str, *args: str) -> str:
    r = curl(*args, url)
    assert r.returncode == 0, r.stderr
    return r.stdout


# -- unix_domain_socket ----------------------------------------------------------------------------


def test_unix_domain_socket_on_every_proxy_type(frp, servers, stun_server, sock_dir) -> None:
    http_sock = os.path.join(sock_dir, "http.sock")
    echo_sock = os.path.join(sock_dir, "echo.sock")
    uds = {"type": "unix_domain_socket", "unixPath": http_sock}
    ports = {n: free_port() for n in ("tcp", "enc", "pp", "stcp", "xtcp", "missing")}
    with UnixHttpServer(http_sock) as web, UnixEchoServer(echo_sock) as echo:
        provider = frp.ours_frpc(frpc_config(
            servers.bind,
            plugin_proxy("uds-tcp", "tcp", uds, remotePort=ports["tcp"]),
            plugin_proxy("uds-enc", "tcp", uds, remotePort=ports["enc"], transport__useEncryption=True,
                         transport__useCompression=True),
            plugin_proxy("uds-pp", "tcp", {"type": "unix_domain_socket", "unixPath": echo_sock},
                         remotePort=ports["pp"], transport__proxyProtocolVersion="v2"),
            plugin_proxy("uds-http", "http", uds, customDomains=["uds.example.com"]),
            plugin_proxy("uds-mux", "tcpmux", uds, customDomains=["mux.example.com"], multiplexer="httpconnect"),
            plugin_proxy("uds-stcp", "stcp", uds, secretKey=SK),
            plugin_proxy("uds-xtcp", "xtcp", uds, secretKey=SK),
            plugin_proxy("uds-missing", "tcp", {"type": "unix_domain_socket",
                                                "unixPath": os.path.join(sock_dir, "none.sock")},
                         remotePort=ports["missing"]),
            token=TOKEN, natHoleStunServer=stun_server.address,
        ))
        provider.wait_for_proxies("uds-tcp", "uds-enc", "uds-pp", "uds-http", "uds-mux", "uds-stcp", "uds-xtcp",
                                  "uds-missing", timeout=15)
        visitor = frp.ours_frpc(frpc_config(
            servers.bind,
            block("visitors", name="v-stcp", type="stcp", serverName="uds-stcp", secretKey=SK,
                  bindAddr=LOCALHOST, bindPort=ports["stcp"]),
            block("visitors", name="v-xtcp", type="xtcp", serverName="uds-xtcp", secretKey=SK,
                  bindAddr=LOCALHOST, bindPort=ports["xtcp"]),
            token=TOKEN, natHoleStunServer=stun_server.address,
        ))
        visitor.wait_login(15)

        for name in ("tcp", "enc"):
            assert get_ok(f"http://127.0.0.1:{ports[name]}/v1.43/info") == "unix says hello to /v1.43/info\n"
        assert get_ok(f"http://127.0.0.1:{servers.vhost_http}/vhost",
                      "-H", "Host: uds.example.com") == "unix says hello to /vhost\n"
        # tcpmux: frps answers the CONNECT and relays the rest to frpc's plugin
        assert get_ok("http://mux.example.com/mux", "-p", "-x", f"127.0.0.1:{servers.tcpmux}") \
            == "unix says hello to /mux\n"
        poll(lambda: curl(f"http://127.0.0.1:{ports['stcp']}/stcp").stdout == "unix says hello to /stcp\n",
             10, "stcp through the uds plugin")
        poll(lambda: curl(f"http://127.0.0.1:{ports['xtcp']}/xtcp", timeout=10).stdout == "unix says hello to /xtcp\n",
             20, "xtcp through the uds plugin")
        assert {"/v1.43/info", "/vhost", "/mux", "/stcp", "/xtcp"} <= set(web.paths)

        # the PROXY protocol header is written to the unix socket before the payload
        with socket.create_connection((LOCALHOST, ports["pp"]), timeout=5) as s:
            s.sendall(TEST_STRING)
            got = b""
            while not got.endswith(TEST_STRING):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
        assert got.startswith(b"\r\n\r\n\x00\r\nQUIT\n")  # the v2 signature
        poll(lambda: echo.firsts, 5, "the echo socket saw the connection")

        # a missing socket: a warning, that connection only is closed
        r = curl(f"http://127.0.0.1:{ports['missing']}/")
        assert r.returncode != 0
        provider.wait_for_log(r"\[uds-missing\] dial to uds \S+none\.sock error: ", 5)
        assert get_ok(f"http://127.0.0.1:{ports['tcp']}/after") == "unix says hello to /after\n"

