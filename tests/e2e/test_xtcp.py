"""xtcp (P2P) end to end: our frps, our provider frpc and our visitor frpc on 127.0.0.1.

Every frpc points ``natHoleStunServer`` at a local responder (tests/support/stun.py). On
loopback both peers classify as EasyNAT and punch within ~1 s (the sender's NatHoleResp comes
1 s after the receiver's).

Covered: the tunnel over QUIC and over KCP + yamux (with encryption/compression, with
``keepTunnelOpen``, with ``natTraversal.disableAssistedAddrs``), reuse of one tunnel for many
connections, ``fallbackTo`` an stcp visitor when the pre-check fails or STUN never answers (within
``fallbackTimeoutMs``), a wrong secret key refused with log lines on both ends, and a user outside
``allowUsers`` refused at the pre-check.
"""

from __future__ import annotations

import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    FrpProcess,
    block,
    free_port,
    frpc_config,
    frps_config,
    tcp_roundtrip,
    wait_port,
)
from support.stun import StunServer
from support.waits import frame

pytestmark = pytest.mark.timeout(60)

TOKEN = "e2e-xtcp-token"
SK = "xtcp-secret"
PUNCHED = r"establishing nat hole connection successful, sid \[\d+[0-9a-f]{16}\], remoteAddr \[([^\]]+)\]"


def start_frps(frp) -> tuple[FrpProcess, int]:
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=TOKEN, log_level="debug"))
    return frps, port


def start_frpc(frp, server_port: int, stun: str, *blocks: str, **keys: object) -> FrpProcess:
    return frp.ours_frpc(frpc_config(server_port, *blocks, token=TOKEN, log_level="debug",
                                     natHoleStunServer=stun, **keys))


def check_echo(port: int) -> None:
    assert tcp_roundtrip(port, frame(TEST_STRING), 15) == frame(TEST_STRING)
    payload = os.urandom(256 << 10)
    assert tcp_roundtrip(port, payload, 15) == payload
    datas = [os.urandom(1000 + i) for i in range(6)]
    with ThreadPoolExecutor(len(datas)) as pool:
        assert list(pool.map(lambda d: tcp_roundtrip(port, d, 15), datas)) == datas


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "encryption", "compression", "keep_open", "no_assisted"),
    [
        pytest.param("quic", False, False, False, True, id="quic"),
        pytest.param("kcp", False, False, True, False, id="kcp-keepTunnelOpen"),
        pytest.param("quic", True, True, True, False, id="quic-enc-comp-keepTunnelOpen"),
    ],
)
def test_xtcp_tunnel(frp, stun_server, echo_server, protocol, encryption, compression, keep_open,
                     no_assisted) -> None:
    frps, server_port = start_frps(frp)
    nat = {"natTraversal.disableAssistedAddrs": True} if no_assisted else {}
    wait_port(server_port, 10)
    provider = start_frpc(frp, server_port, stun_server.address, block(
        "proxies", name="p2p", type="xtcp", secretKey=SK, localIP=LOCALHOST, localPort=echo_server.port,
        **{"transport.useEncryption": encryption, "transport.useCompression": compression}, **nat))
    bind_port = free_port()
    provider.wait_for_proxies("p2p", timeout=15)
    visitor = start_frpc(frp, server_port, stun_server.address, block(
        "visitors", name="p2p-visitor", type="xtcp", serverName="p2p", secretKey=SK, bindPort=bind_port,
        protocol=protocol, keepTunnelOpen=keep_open,
        **{"transport.useEncryption": encryption, "transport.useCompression": compression}, **nat))
    visitor.wait_login(15)
    if keep_open:  # the tunnel is made before any user connection
        visitor.wait_for_log(PUNCHED, 10)
    wait_port(bind_port, 10)
    check_echo(bind_port)

    vaddr = visitor.wait_for_log(PUNCHED, 5)[1]
    paddr = provider.wait_for_log(PUNCHED, 5)[1]
    if no_assisted:
        assert vaddr.startswith("127.0.0.1:") and paddr.startswith("127.0.0.1:")
    assert re.search(rf"get natHoleRespMsg, sid \[\S+\], protocol \[{protocol}\]", visitor.log_text())
    frps.wait_for_log(r"report make hole success: true, mode 0, index 0", 5)
    assert "nat type: EasyNAT, behavior: BehaviorNoChange" in provider.log_text()
    # one tunnel carried every connection: punched once
    assert len(re.findall(PUNCHED, visitor.log_text())) == 1
    assert stun_server.requests >= 4


def test_fallback_to_stcp(frp, stun_server, echo_server) -> None:
    """No tunnel within fallbackTimeoutMs -> the stcp visitor serves the connection.

    Visitor A targets an xtcp proxy that does not exist (the pre-check fails at once); visitor B's
    STUN server never answers (discovery takes 3 s, longer than its fallbackTimeoutMs).
    """
    frps, server_port = start_frps(frp)
    wait_port(server_port, 10)
    with StunServer(silent=True) as silent:
        provider = start_frpc(frp, server_port, stun_server.address,
                              block("proxies", name="p2p", type="xtcp", secretKey=SK, localIP=LOCALHOST,
                                    localPort=echo_server.port),
                              block("proxies", name="secret", type="stcp", secretKey=SK, localIP=LOCALHOST,
                                    localPort=echo_server.port))
        provider.wait_for_proxies("p2p", "secret", timeout=15)
        port_a, port_b = free_port(), free_port()

        def visitors(xtcp_target: str, bind_port: int, timeout_ms: int) -> tuple[str, str]:
            return (block("visitors", name="stcp-fallback", type="stcp", serverName="secret", secretKey=SK,
                          bindPort=-1),
                    block("visitors", name="p2p-visitor", type="xtcp", serverName=xtcp_target, secretKey=SK,
                          bindPort=bind_port, fallbackTo="stcp-fallback", fallbackTimeoutMs=timeout_ms))

        va = start_frpc(frp, server_port, stun_server.address, *visitors("missing", port_a, 500))
        vb = start_frpc(frp, server_port, silent.address, *visitors("p2p", port_b, 800))
        va.wait_login(15)
        vb.wait_login(15)
        wait_port(port_a, 10)
        wait_port(port_b, 10)

        t0 = time.monotonic()
        assert tcp_roundtrip(port_a, frame(TEST_STRING), 10) == frame(TEST_STRING)
        assert time.monotonic() - t0 < 0.5 + 1.5
        va.wait_for_log(r"\[p2p-visitor\] nathole precheck error: xtcp server for \[missing\] doesn't exist", 5)
        va.wait_for_log(r"\[p2p-visitor\] open tunnel error", 5)
        frps.wait_for_log(r"nathole pre-check for \[missing\] refused", 5)

        t0 = time.monotonic()
        assert tcp_roundtrip(port_b, frame(TEST_STRING), 10) == frame(TEST_STRING)
        elapsed = time.monotonic() - t0
        assert 0.7 <= elapsed < 0.8 + 1.5, elapsed
        vb.wait_for_log(r"\[p2p-visitor\] open tunnel error: open tunnel timeout", 5)
        vb.wait_for_log(r"\[p2p-visitor\] nathole prepare error: discover error: wait response from stun server "
                        r"timeout", 5)
        assert silent.requests >= 1
        # the provider was never asked to punch
        assert "nathole prepare success" not in provider.log_text()


def test_wrong_secret_key_and_foreign_user_are_refused(frp, stun_server, echo_server) -> None:
    """A wrong sk fails at frps' sign-key check (both ends log it); a user outside ``allowUsers``
    (empty = only the owner) fails the pre-check. The provider is never asked to punch."""
    frps, server_port = start_frps(frp)
    wait_port(server_port, 10)
    provider = start_frpc(frp, server_port, stun_server.address, block(
        "proxies", name="p2p", type="xtcp", secretKey=SK, localIP=LOCALHOST, localPort=echo_server.port),
        user="owner")
    provider.wait_for_proxies("owner.p2p", timeout=15)
    port_sk, port_user = free_port(), free_port()
    wrong_sk = start_frpc(frp, server_port, stun_server.address, block(
        "visitors", name="p2p-visitor", type="xtcp", serverName="p2p", secretKey="not-the-key",
        bindPort=port_sk), user="owner")
    foreign = start_frpc(frp, server_port, stun_server.address, block(
        "visitors", name="p2p-visitor", type="xtcp", serverName="p2p", serverUser="owner", secretKey=SK,
        bindPort=port_user), user="other")
    for v, port in ((wrong_sk, port_sk), (foreign, port_user)):
        v.wait_login(15)
        wait_port(port, 10)
    with socket.create_connection((LOCALHOST, port_sk), timeout=5) as s1, \
            socket.create_connection((LOCALHOST, port_user), timeout=5) as s2:
        s1.sendall(frame(TEST_STRING))
        s2.sendall(frame(TEST_STRING))
        frps.wait_for_log(r"handle visitorMsg error: xtcp connection of \[owner\.p2p\] auth failed", 10)
        wrong_sk.wait_for_log(r"\[owner\.p2p-visitor\] nathole exchange info error: natHoleRespMsg get error info: "
                              r"xtcp connection of \[owner\.p2p\] auth failed", 10)
        foreign.wait_for_log(r"\[other\.p2p-visitor\] nathole precheck error: xtcp visitor user \[other\] not allowed "
                             r"for \[owner\.p2p\]", 10)
        for s in (s1, s2):
            s.settimeout(0.5)
            with pytest.raises((TimeoutError, ConnectionError)):
                if not s.recv(100):
                    raise ConnectionError("closed")  # no echo: the connection is never joined
    assert "nathole prepare success" not in provider.log_text()
    assert not re.search(PUNCHED, wrong_sk.log_text() + foreign.log_text())
