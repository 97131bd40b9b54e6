"""udp, stcp and sudp against the real Go frp 0.65.0 binaries (frp §5.7, §5.9, §10).

udp: Go frpc -> our frps and our frpc -> Go frps, each with a plain, an encrypted+compressed and
a random-port proxy (echo, a 2 000-datagram burst).

stcp/sudp: provider and visitor frpc of different implementations, through our frps and
through Go frps (4 cases): stcp echo with and without sk-keyed encryption/compression on the
visitor connection (token-keyed on the provider's), sudp echo, and a visitor with a wrong
secret key, refused with a clear log line on the server and on the visitor's frpc while the
other visitors keep working.
"""

from __future__ import annotations

import os
import re
import select
import socket
import struct
import time

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
    udp_proxy,
    udp_roundtrip,
    wait_port,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]

TOKEN = "compat-udp-token"
SK = "compat-sk"


def start(frp, impl: str, which: str, text: str) -> FrpProcess:
    return getattr(frp, f"{impl}_{which}")(text)


def start_frps(frp, impl: str) -> int:
    port = free_port()
    start(frp, impl, "frps", frps_config(port, token=TOKEN))
    wait_port(port, 10)
    return port


def udp_burst(port: int, count: int, window: int = 128, timeout: float = 15.0) -> int:
    """Numbered datagrams with at most ``window`` unanswered; returns how many came back."""
    got: set[int] = set()
    sent = given_up = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect((LOCALHOST, port))
        s.setblocking(False)
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while len(got) + given_up < count and time.monotonic() < deadline:
            while sent < count and sent - len(got) - given_up < window:
                s.send(struct.pack(">I", sent) + b"p" * 60)
                sent += 1
            if select.select([s], [], [], 0.05)[0]:
                while True:
                    try:
                        got.add(struct.unpack_from(">I", s.recv(2048))[0])
                    except BlockingIOError:
                        break
                last = time.monotonic()
            elif time.monotonic() - last > 0.5:
                given_up, last = sent - len(got), time.monotonic()
    return len(got)


# --------------------------------------------------------------------------------------------------
# udp
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("frps_impl", "frpc_impl"), [("ours", "go"), ("go", "ours")],
                         ids=["go_frpc-ours_frps", "ours_frpc-go_frps"])
def test_udp(frp, udp_echo_server, frps_impl: str, frpc_impl: str) -> None:
    port = start_frps(frp, frps_impl)
    frps = frp.processes[-1]
    plain, both = free_port(), free_port()
    frpc = start(frp, frpc_impl, "frpc", frpc_config(
        port,
        udp_proxy("plain", udp_echo_server.port, plain),
        udp_proxy("both", udp_echo_server.port, both,
                  **{"transport.useEncryption": True, "transport.useCompression": True}),
        udp_proxy("rnd", udp_echo_server.port, 0, **{"transport.useEncryption": True}),
        token=TOKEN,
    ))
    frpc.wait_for_proxies("plain", "both", "rnd", timeout=10)
    # the random port, from whichever side is ours
    if frpc_impl == "ours":
        rnd = int(frpc.wait_for_log(r"\[rnd\] remote address \[127\.0\.0\.1:(\d+)\]", 5)[1])
    else:
        rnd = int(frps.wait_for_log(r"\[rnd\] udp proxy listen port \[(\d+)\]", 5)[1])
    assert rnd not in (plain, both)
    ports = [plain, both, rnd]
    for p in ports:
        assert udp_roundtrip(p, TEST_STRING, 5, attempts=20) == TEST_STRING
        for data in (os.urandom(1500), b"\x00" * 1400, b"."):
            assert udp_roundtrip(p, data, 2, attempts=4) == data
    count = 2000
    got = udp_burst(both, count)
    print(f"\nudp burst {frpc_impl} frpc -> {frps_impl} frps: {got}/{count} echoed")
    assert got >= count * 0.99


# --------------------------------------------------------------------------------------------------
# stcp / sudp
# --------------------------------------------------------------------------------------------------

SECRET_CASES = [
    # frps, provider frpc, visitor frpc, encryption+compression on the provider's proxies
    pytest.param("ours", "go", "ours", True, id="go_provider-ours_visitor-ours_frps"),
    pytest.param("ours", "ours", "go", False, id="ours_provider-go_visitor-ours_frps"),
    pytest.param("go", "go", "ours", False, id="go_provider-ours_visitor-go_frps"),
    pytest.param("go", "ours", "go", True, id="ours_provider-go_visitor-go_frps"),
]


@pytest.mark.parametrize(("frps_impl", "provider_impl", "visitor_impl", "provider_enc"), SECRET_CASES)
def test_stcp_sudp(frp, echo_server, udp_echo_server, frps_impl: str, provider_impl: str, visitor_impl: str,
                   provider_enc: bool) -> None:
    port = start_frps(frp, frps_impl)
    layers = {"transport__useEncryption": True, "transport__useCompression": True} if provider_enc else {}
    provider = start(frp, provider_impl, "frpc", frpc_config(
        port,
        extra=block("proxies", name="s", type="stcp", localIP=LOCALHOST, localPort=echo_server.port,
                    secretKey=SK, allowUsers=["*"], **layers)
        + block("proxies", name="u", type="sudp", localIP=LOCALHOST, localPort=udp_echo_server.port,
                secretKey=SK, allowUsers=["bob"], **layers),
        token=TOKEN, user="alice",
    ))
    provider.wait_for_proxies("alice.s", "alice.u", timeout=10)

    p = {n: free_port() for n in ("s", "s_enc", "u", "u_enc", "bad")}
    common = {"serverUser": "alice", "secretKey": SK, "bindAddr": LOCALHOST}
    enc = {"transport__useEncryption": True, "transport__useCompression": True}
    visitors = (
        block("visitors", name="v_s", type="stcp", serverName="s", bindPort=p["s"], **common)
        + block("visitors", name="v_s_enc", type="stcp", serverName="s", bindPort=p["s_enc"], **common, **enc)
        + block("visitors", name="v_u", type="sudp", serverName="u", bindPort=p["u"], **common)
        + block("visitors", name="v_u_enc", type="sudp", serverName="u", bindPort=p["u_enc"], **common, **enc)
        + block("visitors", name="v_bad", type="stcp", serverName="s", bindPort=p["bad"],
                **{**common, "secretKey": "wrong"})
    )
    visitor = start(frp, visitor_impl, "frpc", frpc_config(port, extra=visitors, token=TOKEN, user="bob"))
    visitor.wait_for_log(r"login to server success", 10)
    wait_port(p["s"], 5)

    payload = os.urandom(256 << 10) + b"c" * (256 << 10)
    for name in ("s", "s_enc"):
        assert tcp_roundtrip(p[name], TEST_STRING, 10) == TEST_STRING, name
        assert tcp_roundtrip(p[name], payload, 20) == payload, name
    for name in ("u", "u_enc"):
        assert udp_roundtrip(p[name], TEST_STRING, 5, attempts=10) == TEST_STRING, name
        for data in (os.urandom(1500), b"x"):
            assert udp_roundtrip(p[name], data, 2, attempts=4) == data, name

    # wrong secret key: refused, logged on both ends, nothing else disturbed
    try:
        assert tcp_roundtrip(p["bad"], TEST_STRING, 5) == b""
    except ConnectionResetError:
        pass
    reason = r"visitor connection of \[alice\.s\] auth failed"
    visitor.wait_for_log(reason, 5)
    # both name the visitor as Go 0.65 does, with its user
    visitor.wait_for_log(r"\[bob\.v_bad\] start new visitor connection error: " + reason, 1)
    frps_proc = frp.processes[0]
    frps_proc.wait_for_log(reason, 5)
    assert tcp_roundtrip(p["s"], TEST_STRING, 10) == TEST_STRING
    assert udp_roundtrip(p["u"], b"still", 2, attempts=4) == b"still"
    for proc in (provider, visitor):
        assert len(re.findall(r"login to server success", proc.log_text())) == 1, proc.log_tail()
