"""Visitors do not drop connections that arrive before frpc has logged in (issue 8, item 2).

A visitor's ``bindPort`` is open from the moment frpc starts (Go opens it only after the login and
closes it whenever the control connection drops). A connection (stcp, xtcp) or datagram (sudp)
that arrives while frpc is not logged in is held until the login is done, up to 10 s, instead of
being closed with "not connected to the server". Shortly after a (re)login a visitor connection
refused because the provider has not registered its proxy yet is retried too, since after an
frps restart both sides log in again in no particular order.

Checked with real processes, for stcp, sudp and xtcp visitors:

* the very first connection to the visitor port (the first successful ``connect()``, payload sent
  at once), with frps and the provider already up;
* a connection made while frps is not running at all, frps and the provider started after it;
* the first connection right after frps was killed and restarted.
"""

from __future__ import annotations

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
    wait_port,
)
from support.waits import check_first, first_connect, first_datagram, frame, read_exactly

pytestmark = pytest.mark.timeout(90)

TOKEN = "visitor-early-token"
SK = "visitor-early-sk"
KINDS = ["stcp", "xtcp", "sudp"]


def provider_blocks(kind: str, echo_port: int, udp_echo_port: int) -> str:
    local = udp_echo_port if kind == "sudp" else echo_port
    return block("proxies", name="svc", type=kind, secretKey=SK, localIP=LOCALHOST, localPort=local,
                 allowUsers=["*"])


def visitor_block(kind: str, bind_port: int) -> str:
    return block("visitors", name="vis", type=kind, serverName="svc", secretKey=SK, bindAddr=LOCALHOST,
                 bindPort=bind_port)


class World:
    def __init__(self, frp, kind: str, stun: str, echo_port: int, udp_echo_port: int) -> None:
        self.frp = frp
        self.kind = kind
        self.stun = stun
        self.bind = free_port()
        self.visitor_port = free_port()
        self.echo_port, self.udp_echo_port = echo_port, udp_echo_port
        self.frps: FrpProcess | None = None

    def start_frps(self) -> FrpProcess:
        self.frps = self.frp.ours_frps(frps_config(self.bind, token=TOKEN))
        return self.frps

    def frpc_text(self, *blocks: str) -> str:
        return frpc_config(self.bind, *blocks, token=TOKEN, natHoleStunServer=self.stun)

    def start_provider(self) -> FrpProcess:
        return self.frp.ours_frpc(self.frpc_text(provider_blocks(self.kind, self.echo_port, self.udp_echo_port)))

    def start_visitor(self) -> FrpProcess:
        return self.frp.ours_frpc(self.frpc_text(visitor_block(self.kind, self.visitor_port)))


@pytest.fixture
def world(request: pytest.FixtureRequest, frp, stun_server, echo_server, udp_echo_server) -> World:
    return World(frp, request.param, stun_server.address, echo_server.port, udp_echo_server.port)


@pytest.mark.parametrize("world", KINDS, indirect=True)
def test_first_connection_after_start(world: World) -> None:
    world.start_frps()
    wait_port(world.bind, 10)
    provider = world.start_provider()
    provider.wait_for_proxies("svc", timeout=10)
    visitor = world.start_visitor()
    check_first(world.kind, world.visitor_port)
    assert "not connected to the server" not in visitor.log_text()


@pytest.mark.parametrize("world", KINDS, indirect=True)
def test_connection_before_frps_is_up(world: World) -> None:
    """The visitor's frpc starts first and cannot log in; its first connection waits for frps and the
    provider, both started after it."""
    visitor = world.start_visitor()
    visitor.wait_for_log(r"connect to server error", 10)
    started = time.monotonic()
    payload = frame(TEST_STRING)
    with ThreadPoolExecutor(1) as pool:
        if world.kind == "sudp":
            reply = pool.submit(first_datagram, world.visitor_port, payload, 12)
        else:
            sock = first_connect(world.visitor_port, 10)
            sock.sendall(payload)
            reply = pool.submit(read_exactly, sock, len(payload), 12)
        world.start_frps()
        world.start_provider()
        assert reply.result(15) == payload, visitor.log_tail()
    if world.kind != "sudp":
        sock.close()
    assert time.monotonic() - started < 12
    assert "not connected to the server" not in visitor.log_text()


@pytest.mark.parametrize("world", KINDS, indirect=True)
def test_first_connection_after_frps_restart(world: World) -> None:
    frps = world.start_frps()
    wait_port(world.bind, 10)
    provider = world.start_provider()
    provider.wait_for_proxies("svc", timeout=10)
    visitor = world.start_visitor()
    visitor.wait_login(10)
    check_first(world.kind, world.visitor_port)
    vmark, pmark = visitor.mark(), provider.mark()

    frps.kill()
    visitor.wait_for_log(r"control connection closed|connect to server error", 10, since=vmark)
    world.start_frps()
    check_first(world.kind, world.visitor_port)  # no waiting for either frpc to log in again
    visitor.wait_login(10, since=vmark)
    provider.wait_login(10, since=pmark)
