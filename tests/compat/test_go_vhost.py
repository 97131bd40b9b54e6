"""http, https and tcpmux proxies across implementations: Go frpc -> our frps, our frpc -> Go frps.

One frps with vhostHTTPPort, vhostHTTPSPort and tcpmuxHTTPConnectPort per direction; frpc exposes
aiohttp services through all three types. Checked: Host/location/auth routing, header rewrites,
keep-alive requests to two proxies on one connection, WebSocket, SNI routing with end-to-end TLS,
CONNECT tunnels with Proxy-Authorization.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from support.httpd import RawClient, WebBackend, proxy_block, tls_server_context
from support.procs import LOCALHOST, free_port, frpc_config, frps_config, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "interop-vhost-token"
GO_CLIENT = "go_frpc-ours_frps"
OURS_CLIENT = "ours_frpc-go_frps"


def basic(user: str, pwd: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pwd}".encode()).decode()


@pytest.mark.parametrize("direction", [GO_CLIENT, OURS_CLIENT])
def test_vhost_types_across_implementations(frp, tmp_path, direction: str):
    ctx, der = tls_server_context(str(tmp_path))
    bind, hport, sport, mport = free_port(), free_port(), free_port(), free_port()
    text = frps_config(bind, token=TOKEN, vhostHTTPPort=hport, vhostHTTPSPort=sport, tcpmuxHTTPConnectPort=mport,
                       subDomainHost="frps.test")
    frps = frp.ours_frps(text) if direction == GO_CLIENT else frp.go_frps(text)
    wait_port(bind, 10)
    with WebBackend("A") as a, WebBackend("B") as b, WebBackend("T", ssl_context=ctx) as t:
        proxies = [
            proxy_block("http", "h-a", a.port, customDomains=["a.example.com"],
                        **{"requestHeaders.set.X-From-Frp": "yes", "responseHeaders.set.X-Resp": "1",
                           "transport.useEncryption": True, "transport.useCompression": True}),
            proxy_block("http", "h-b", b.port, subdomain="b", locations=["/api"]),
            proxy_block("http", "h-auth", a.port, customDomains=["auth.example.com"], httpUser="u", httpPassword="p"),
            proxy_block("https", "s-t", t.port, customDomains=["*.tls.example.com"]),
            proxy_block("tcpmux", "m-a", a.port, customDomains=["m.example.com"], httpUser="u", httpPassword="p",
                        multiplexer="httpconnect"),
        ]
        text = frpc_config(bind, *proxies, token=TOKEN)
        frpc = frp.go_frpc(text) if direction == GO_CLIENT else frp.ours_frpc(text)
        frpc.wait_for_proxies("h-a", "h-b", "h-auth", "s-t", "m-a", timeout=15)

        # http: two proxies on one keep-alive connection, header sets, locations, 404
        with RawClient(hport) as c:
            r = c.request("GET", "/x", "a.example.com", {"X-Forwarded-For": "2.2.2.2"})
            assert r.status == 200 and r.header("X-Backend") == "A" and r.header("X-Resp") == "1"
            sent = {k.lower(): v for k, v in r.json()["headers"]}
            assert sent["x-from-frp"] == "yes" and sent["x-forwarded-for"] == "2.2.2.2, 127.0.0.1"
            assert sent["x-forwarded-host"] == "a.example.com" and sent["host"] == "a.example.com"
            assert c.request("GET", "/api/v1", "b.frps.test").header("X-Backend") == "B"
            assert c.request("GET", "/other", "b.frps.test").status == 404
            assert c.request("POST", "/y", "a.example.com", body=b"z" * 5000).json()["body_len"] == 5000
        with RawClient(hport) as c:
            r = c.request("GET", "/", "auth.example.com")
            assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="Restricted"'
            assert c.request("GET", "/", "auth.example.com", {"Authorization": basic("u", "p")}).status == 200

        async def ws_echo() -> str:
            import aiohttp

            async with aiohttp.ClientSession() as session, session.ws_connect(
                f"http://{LOCALHOST}:{hport}/ws", headers={"Host": "a.example.com"}
            ) as ws:
                await ws.send_str("through frp")
                return (await ws.receive(timeout=5)).data

        assert asyncio.run(ws_echo()) == "through frp"

        # https: SNI routing, the service's own certificate
        with RawClient(sport, tls=True, server_name="x.tls.example.com") as c:
            assert c.sock.getpeercert(binary_form=True) == der  # type: ignore[union-attr]
            assert c.request("GET", "/", "x").header("X-Backend") == "T"

        # tcpmux: CONNECT with proxy auth, then HTTP through the tunnel
        with RawClient(mport) as c:
            c.send(b"CONNECT m.example.com:443 HTTP/1.1\r\nHost: m.example.com:443\r\nProxy-Authorization: "
                   + basic("u", "p").encode() + b"\r\n\r\n")
            assert c.read_response().status == 200
            assert c.request("GET", "/", "m").header("X-Backend") == "A"
    assert frps.running


class _Capture:
    """A TCP service that records the first bytes of each connection and answers one HTTP 200."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind((LOCALHOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import contextlib

        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.seen.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def test_start_work_conn_addresses_seen_by_go_frpc(frp):
    """StartWorkConn from our frps: http carries only the client address (Go frpc's PROXY header then
    says 127.0.0.1:0 for the destination), https carries both ends."""
    import re

    bind, hport = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, vhostHTTPPort=hport))
    wait_port(bind, 10)
    cap = _Capture()
    try:
        frpc = frp.go_frpc(frpc_config(bind, proxy_block(
            "http", "pp", cap.port, customDomains=["pp.example.com"], **{"transport.proxyProtocolVersion": "v1"}),
            token=TOKEN))
        frpc.wait_for_proxies("pp", timeout=15)
        with RawClient(hport) as c:
            client_port = c.sock.getsockname()[1]
            assert c.request("GET", "/", "pp.example.com", {"Connection": "close"}).body == b"ok"
        m = re.match(rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 (\d+) (\d+)\r\n", cap.seen[0])
        assert m is not None, cap.seen[0][:100]
        assert (int(m[1]), int(m[2])) == (client_port, 0)
    finally:
        cap.close()
    assert frps.running
