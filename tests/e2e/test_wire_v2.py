"""Wire protocol v2 (spec §1.8, §2.4) between our frpc (``transport.wireProtocol = "v2"``) and our
frps, which tells v1 from v2 by the magic on every logical connection. No Go >= 0.69 binary is
available here: the byte layouts are checked by tests/unit/test_wire_v2_codec.py (known answers) and
tests/inproc/test_inproc_wire_v2.py (a hand-played peer); Go 0.65 refusing v2 is in
tests/compat/test_go_reach.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from support.procs import (
    LOCALHOST,
    TEST_STRING,
    EchoServer,
    block,
    bulk_download,
    bulk_upload,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
)
from support.waits import frame, poll

pytestmark = pytest.mark.timeout(120)

TOKEN = "e2e-wire-v2"
V2: dict[str, Any] = {"transport.wireProtocol": "v2"}
HB: dict[str, Any] = {"transport.heartbeatInterval": 1}


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    s = EchoServer().start()
    try:
        yield s
    finally:
        s.stop()


def echo_ok(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=3) as s:
            s.sendall(frame(TEST_STRING))
            want, got = frame(TEST_STRING), b""
            while len(got) < len(want) and (chunk := s.recv(4096)):
                got += chunk
            return got == want
    except OSError:
        return False


def start_frps(frp, **kw) -> tuple[Any, int]:
    port = free_port()
    frps = frp.ours_frps(frps_config(port, token=TOKEN, **kw), env=env())
    frps.wait_for_log(r"frps started successfully", 10)
    return frps, port


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
@pytest.mark.parametrize("codec", ["none", "enc+comp"])
def test_v2_client(frp, echo: EchoServer, tls: bool, tcp_mux: bool, codec: str) -> None:
    frps, bind = start_frps(frp, tcp_mux=tcp_mux)
    remote = free_port()
    flags = {"encryption": True, "compression": True} if codec != "none" else {}
    frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("t", echo.port, remote, **flags), token=TOKEN, tls=tls,
                                     tcp_mux=tcp_mux, **V2), env=env())
    frpc.wait_for_proxies("t", timeout=15)
    frps.wait_for_log(r"client login info: .* wire protocol \[v2\]", 5)
    poll(lambda: echo_ok(remote), 10, "echo over wire v2")
    for _ in range(3):  # work connections: v2 magic + NewWorkConn/StartWorkConn frames each
        assert echo_ok(remote)


def test_v2_bulk_and_heartbeats(frp, tmp_path) -> None:
    """1 MiB each way (SHA-256), and Ping/Pong through the AEAD control stream without tcpMux."""
    from support.procs import BulkServer

    _, bind = start_frps(frp, tcp_mux=False)
    with BulkServer() as bulk:
        remote = free_port()
        frpc = frp.ours_frpc(frpc_config(bind, tcp_proxy("b", bulk.port, remote, encryption=True), token=TOKEN,
                                         tcp_mux=False, log_level="debug",
                                         **V2, **HB),
                             env=env())
        frpc.wait_for_proxies("b", timeout=15)
        assert bulk_upload(remote, 1 << 20).ok
        assert bulk_download(remote, 1 << 20).ok
        frpc.wait_for_log(r"receive heartbeat from server", 10)


def test_v1_and_v2_clients_on_one_frps(frp, echo: EchoServer) -> None:
    frps, bind = start_frps(frp)
    r1, r2 = free_port(), free_port()
    c1 = frp.ours_frpc(frpc_config(bind, tcp_proxy("v1p", echo.port, r1), token=TOKEN), env=env())
    c2 = frp.ours_frpc(frpc_config(bind, tcp_proxy("v2p", echo.port, r2), token=TOKEN,
                                   **V2), env=env())
    c1.wait_for_proxies("v1p", timeout=15)
    c2.wait_for_proxies("v2p", timeout=15)
    poll(lambda: echo_ok(r1) and echo_ok(r2), 10, "both clients")
    logins = frps.wait_for_log(r"client login info", 5)
    assert logins
    text = frps.log_text()
    assert text.count("wire protocol [v2]") == 1, text


def test_v2_wrong_token(frp) -> None:
    frps, bind = start_frps(frp)
    frpc = frp.ours_frpc(frpc_config(bind, token="wrong", **V2), env=env())
    frpc.wait_for_log(r"token in login doesn't match token from configuration", 15)
    assert "Traceback" not in frpc.log_text() + frps.log_text()


def test_v2_stcp_visitor(frp, echo: EchoServer) -> None:
    """A visitor connection in v2 (magic + NewVisitorConn frame), provider and visitor both v2."""
    _, bind = start_frps(frp)
    vport = free_port()
    prov = frp.ours_frpc(frpc_config(bind, block("proxies", name="s", type="stcp", secretKey="k", localIP=LOCALHOST,
                                                 localPort=echo.port), token=TOKEN,
                                     **V2), env=env())
    prov.wait_for_proxies("s", timeout=15)
    vis = frp.ours_frpc(frpc_config(bind, block("visitors", name="v", type="stcp", serverName="s", secretKey="k",
                                                bindAddr=LOCALHOST, bindPort=vport), token=TOKEN,
                                    **V2), env=env())
    vis.wait_login(15)
    poll(lambda: echo_ok(vport), 15, "stcp visitor over v2")


@pytest.mark.parametrize("tcp_mux", [True, False], ids=["mux", "nomux"])
def test_v2_udp_proxy(frp, tcp_mux: bool) -> None:
    """udp work connections in v2: UDPPacket and Ping as v2 message frames (§2.4)."""
    from support.procs import UdpEchoServer, udp_proxy, udp_roundtrip

    _, bind = start_frps(frp, tcp_mux=tcp_mux)
    with UdpEchoServer() as uecho:
        remote = free_port()
        frpc = frp.ours_frpc(frpc_config(bind, udp_proxy("u", uecho.port, remote, **{"transport.useEncryption": True}),
                                         token=TOKEN, tcp_mux=tcp_mux, **V2), env=env())
        frpc.wait_for_proxies("u", timeout=15)
        for size in (1, 100, 1400):  # udpPacketSize (1500) bounds a datagram
            data = os.urandom(size)
            assert udp_roundtrip(remote, data, 5, attempts=10) == data


def test_v2_sudp_same_and_mixed_framings(frp) -> None:
    """sudp with providers and visitors on either wire protocol: frps relays a tunnel whose two
    clients frame UDPPacket messages alike as it is, and re-frames the messages of a v1 and a v2 end
    (Go >= 0.69.1's bridge, logged as Go logs it); sk encryption and compression on one visitor of
    each kind."""
    from support.procs import UdpEchoServer, udp_roundtrip

    frps, bind = start_frps(frp)
    with UdpEchoServer() as uecho:
        def provider(name: str, **kw: Any) -> Any:
            return frp.ours_frpc(frpc_config(bind, block("proxies", name=name, type="sudp", secretKey="k",
                                                         localIP=LOCALHOST, localPort=uecho.port),
                                             token=TOKEN, **kw), env=env())

        p1, p2 = provider("p1"), provider("p2", **V2)
        p1.wait_for_proxies("p1", timeout=15)
        p2.wait_for_proxies("p2", timeout=15)
        ports: dict[str, int] = {}

        def visitors(wire: str, **kw: Any) -> Any:
            blocks = []
            for target in ("p1", "p2"):
                for codec in ("plain", "enc"):
                    name = f"{wire}-{target}-{codec}"
                    ports[name] = free_port()
                    extra = ({"transport.useEncryption": True, "transport.useCompression": True}
                             if codec == "enc" else {})
                    blocks.append(block("visitors", name=name, type="sudp", serverName=target, secretKey="k",
                                        bindAddr=LOCALHOST, bindPort=ports[name], **extra))
            return frp.ours_frpc(frpc_config(bind, *blocks, token=TOKEN, **kw), env=env())

        for vis in (visitors("v1"), visitors("v2", **V2)):
            vis.wait_login(15)
        for name, port in ports.items():
            for size in (1, 100, 1400):
                data = os.urandom(size)
                assert udp_roundtrip(port, data, 5, attempts=10) == data, (name, size)
        # mixed: v1 visitors of p2 and v2 visitors of p1, two of each (plain, enc)
        bridged = frps.wait_for_log(r"bridge mixed SUDP payload codecs", 5)
        assert bridged
        text = frps.log_text()
        assert text.count("proxy wireProtocol [v2], visitor wireProtocol [v1]") == 2, text
        assert text.count("proxy wireProtocol [v1], visitor wireProtocol [v2]") == 2, text
        assert "Traceback" not in text
