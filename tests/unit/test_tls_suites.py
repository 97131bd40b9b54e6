"""TLS 1.3 suites in Go's order (net/suites.py): our contexts agree on AES-128-GCM as Go's
crypto/tls does, as servers (whatever the client prefers) and as clients (offered first); with
``AIOFRP_TLS_GO_SUITES=0`` OpenSSL's order stays and handshakes still work."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading

from aiofrp.net.suites import GO_TLS13_SUITES, prefer_go_suites
from aiofrp.net.tls import client_context, server_context

AES128 = "TLS_AES_128_GCM_SHA256"
AES256 = "TLS_AES_256_GCM_SHA384"


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str, str]:
    """The suite each side reports after a handshake over loopback."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: dict[str, str] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server.wrap_socket(conn, server_side=True) as tls:
            got["server"] = tls.cipher()[0]  # type: ignore[index]
            tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with client.wrap_socket(socket.create_connection(listener.getsockname(), timeout=10)) as tls:
        suite = tls.cipher()[0]  # type: ignore[index]
        tls.sendall(b"x")
    thread.join(10)
    listener.close()
    return got["server"], suite


def plain_client() -> ssl.SSLContext:
    """A client with OpenSSL's own order (AES-256-GCM first), as Python's defaults are."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls13_order(ctx: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in ctx.get_ciphers() if c.get("protocol") == "TLSv1.3"]


def test_openssl_defaults_would_pick_aes256() -> None:
    # the premise: without the reordering both sides of a Python pair say AES-256-GCM first
    assert tls13_order(plain_client())[0] == AES256


def test_our_contexts_list_the_suites_in_gos_order() -> None:
    assert tuple(tls13_order(server_context())) == GO_TLS13_SUITES
    assert tuple(tls13_order(client_context())) == GO_TLS13_SUITES


def test_two_of_ours_agree_on_aes128() -> None:
    assert handshake(server_context(), client_context()) == (AES128, AES128)


def test_our_server_picks_aes128_for_a_client_that_prefers_aes256() -> None:
    # as Go's frps does (tests/compat/test_go_tls_suites.py checks Go's answer)
    assert handshake(server_context(), plain_client()) == (AES128, AES128)


def test_our_client_offers_aes128_first_to_a_server_that_follows_the_client() -> None:
    server = server_context()
    server.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    assert handshake(server, client_context()) == (AES128, AES128)
    assert handshake(server, plain_client()) == (AES256, AES256)  # the server does follow


def test_the_tls12_ciphers_are_left_alone() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    before = [c["name"] for c in ctx.get_ciphers()]
    assert prefer_go_suites(ctx)  # a fresh context: done
    assert prefer_go_suites(ctx)  # and again: the same order, still true
    after = [c["name"] for c in ctx.get_ciphers()]
    assert [n for n in after if n not in GO_TLS13_SUITES] == [n for n in before if n not in GO_TLS13_SUITES]


def test_switched_off_the_order_stays_openssls_and_handshakes_work() -> None:
    code = textwrap.dedent("""
        import os, sys
        sys.path[:0] = [os.environ["TESTS"]]
        from test_tls_suites import handshake
        from aiofrp.net.tls import client_context, server_context
        print(*handshake(server_context(), client_context()))
    """)
    env = dict(os.environ, AIOFRP_TLS_GO_SUITES="0", TESTS=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [AES256, AES256]
