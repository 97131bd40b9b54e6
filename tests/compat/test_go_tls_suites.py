"""The TLS 1.3 suite of frp's tunnel, side by side with Go frp 0.65.0 (net/suites.py).

* As a server, Go's frps picks AES-128-GCM even for a client that offers AES-256-GCM first (Go's
  crypto/tls keeps its own order); ours picks the same.
* As a client, Go's frpc offers the three TLS 1.3 suites in one order (AES-128-GCM first); ours
  offers them in the same order. Read from the ClientHello each frpc sends to a listener that
  records it and never answers (frp's defaults: no 0x17 first byte since 0.50,
  ``transport.tls.disableCustomTLSFirstByte``).
"""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
from support.procs import free_port, frpc_config, frps_config, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TLS13 = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384", 0x1303: "TLS_CHACHA20_POLY1305_SHA256"}
FRP_TLS_HEAD = 0x17


def server_choice(port: int) -> str:
    """The suite an frps chooses for a client with OpenSSL's order (AES-256-GCM first)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    assert next(c["name"] for c in ctx.get_ciphers()) == "TLS_AES_256_GCM_SHA384"
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(bytes([FRP_TLS_HEAD]))
    with ctx.wrap_socket(sock) as tls:
        return tls.cipher()[0]  # type: ignore[index]


def offered_tls13(hello: bytes) -> list[str]:
    """The TLS 1.3 suites of a ClientHello record, in the client's order."""
    assert hello[0] == 0x16 and hello[5] == 0x01, hello[:8].hex()  # handshake record, ClientHello
    pos = 5 + 4 + 2 + 32  # record header, handshake header, legacy version, random
    pos += 1 + hello[pos]  # session id
    (length,) = struct.unpack_from("!H", hello, pos)
    suites = struct.unpack_from(f"!{length // 2}H", hello, pos + 2)
    return [TLS13[s] for s in suites if s in TLS13]


def client_hello_of(start_frpc) -> list[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    port = listener.getsockname()[1]
    proc = start_frpc(frpc_config(port, tls=True))
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)
        data = b""
        while len(data) < 5 or len(data) < 5 + struct.unpack_from("!H", data, 3)[0]:
            chunk = conn.recv(65536)
            assert chunk, f"frpc closed after {data!r}"
            data += chunk
        conn.close()
    finally:
        listener.close()
        proc.kill()
    return offered_tls13(data)


def test_frps_picks_aes128_as_go_frps_does(frp) -> None:
    go_port, our_port = free_port(), free_port()
    frp.go_frps(frps_config(go_port))
    frp.ours_frps(frps_config(our_port))
    wait_port(go_port, 10)
    wait_port(our_port, 10)
    go = server_choice(go_port)
    assert go == "TLS_AES_128_GCM_SHA256"
    assert server_choice(our_port) == go


def test_frpc_offers_the_tls13_suites_in_go_frpcs_order(frp) -> None:
    go = client_hello_of(frp.go_frpc)
    assert go[0] == "TLS_AES_128_GCM_SHA256" and sorted(go) == sorted(TLS13.values())
    assert client_hello_of(frp.ours_frpc) == go
