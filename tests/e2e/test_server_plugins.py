"""Server manage plugins end to end: our frps and our frpc as processes, a mock plugin
(support/plugin_server.py) over HTTPS with ``tlsVerify = false`` (frp §7.8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.plugin_server import GARBAGE, MockPlugin, reject
from support.procs import (
    TEST_STRING,
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
)
from support.waits import frame, poll

pytestmark = pytest.mark.timeout(90)

TOKEN = "e2e-plugin-token"


@pytest.fixture
def tls_plugin() -> Iterator[MockPlugin]:
    with MockPlugin("tls-mock", tls=True) as p:
        yield p


def test_our_frpc_through_an_https_plugin(frp, tls_plugin: MockPlugin, echo_server: EchoServer) -> None:
    """Client metadatas reach Login and every later op; proxy metadatas and annotations reach
    NewProxy; a user connection is asked about; a rejected proxy shows the reason in frpc."""
    port, remote = free_port(), free_port()
    tls_plugin.rules["NewProxy"] = lambda c: (
        reject("no second proxy")(c) if c["proxy_name"] == "denied" else {"reject": False, "unchange": True}
    )
    frps = frp.ours_frps(frps_config(port, token=TOKEN, extra=tls_plugin.toml(
        "Login", "NewProxy", "NewWorkConn", "NewUserConn", "CloseProxy")))
    frps.wait_for_log("frps started successfully", 10)
    keys: dict[str, Any] = {"metadatas.team": "blue", "annotations.owner": "ops"}
    frpc = frp.ours_frpc(frpc_config(
        port, tcp_proxy("web", echo_server.port, remote, **keys), tcp_proxy("denied", echo_server.port, free_port()),
        token=TOKEN, extra='metadatas.token = "t-1"\nmetadatas.site = "lab"\n',
    ))
    run_id = frpc.wait_login(15)
    frpc.wait_for_proxies("web", timeout=15)
    frpc.wait_for_log(r"\[denied\] start error: no second proxy", 15)
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)

    [login] = tls_plugin.calls_of("Login")
    assert login.content["metas"] == {"site": "lab", "token": "t-1"}
    user = {"user": "", "metas": {"site": "lab", "token": "t-1"}, "run_id": run_id}
    web = next(c.content for c in tls_plugin.calls_of("NewProxy") if c.content["proxy_name"] == "web")
    assert web["user"] == user and web["metas"] == {"team": "blue"} and web["annotations"] == {"owner": "ops"}
    assert web["remote_port"] == remote
    poll(lambda: tls_plugin.calls_of("NewUserConn"), 5, "NewUserConn asked")
    assert tls_plugin.calls_of("NewUserConn")[0].content["proxy_name"] == "web"
    assert all(c.content["user"] == user for c in tls_plugin.calls_of("NewWorkConn"))

    frpc.stop()
    poll(lambda: [c for c in tls_plugin.calls_of("CloseProxy") if c.content["proxy_name"] == "web"], 10,
         "CloseProxy told when frpc left")


def test_unreachable_and_garbage_plugins(frp, echo_server: EchoServer) -> None:
    """A plugin that is down refuses logins with Go's text; one answering garbage fails only
    the op it garbles, with a clear line in frps's log."""
    port = free_port()
    dead = free_port()
    with MockPlugin("garbler") as garbler:
        garbler.rules["NewProxy"] = lambda c: GARBAGE if c["proxy_name"] == "bad" else {"unchange": True}
        plugins = garbler.toml("NewProxy") + (
            f'\n[[httpPlugins]]\nname = "down"\naddr = "127.0.0.1:{dead}"\npath = "/h"\nops = ["Ping"]\n'
        )
        frps = frp.ours_frps(frps_config(port, token=TOKEN, tcp_mux=False, extra=plugins))
        frps.wait_for_log("frps started successfully", 10)
        remote = free_port()
        frpc = frp.ours_frpc(frpc_config(
            port, tcp_proxy("good", echo_server.port, remote), tcp_proxy("bad", echo_server.port, free_port()),
            token=TOKEN, tcp_mux=False,
            extra="transport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 30\n",
        ))
        frpc.wait_for_proxies("good", timeout=15)
        frpc.wait_for_log(r"\[bad\] start error: send NewProxy request to plugin error", 15)
        frps.wait_for_log(r"\[reqid: [0-9a-f]{16}\] send NewProxy request to plugin \[garbler\] error: "
                          r"invalid character '<' looking for beginning of value$")  # Go's text
        # the Ping plugin is down: frps answers the heartbeat with the error, frpc reconnects
        frps.wait_for_log(r"send Ping request to plugin \[down\] error: Post \"http://127\.0\.0\.1:"
                          rf"{dead}/h\?op=Ping&version=0\.1\.0\": dial tcp 127\.0\.0\.1:{dead}: connect", 15)
        frps.wait_for_log(r"received invalid ping: send Ping request to plugin error", 15)


def test_max_ports_per_client_flag(frp, echo_server: EchoServer) -> None:
    """``frps --max-ports-per-client 1`` (the flag Go's frps has): our frpc's second tcp proxy gets
    Go's error, the first works."""
    port, remote = free_port(), free_port()
    frps = frp.ours_frps(None, args=["--bind-addr", "127.0.0.1", "-p", str(port), "-t", TOKEN,
                                     "--max-ports-per-client", "1"])
    frps.wait_for_log("frps started successfully", 10)
    frpc = frp.ours_frpc(frpc_config(
        port, tcp_proxy("a", echo_server.port, remote), tcp_proxy("b", echo_server.port, free_port()), token=TOKEN,
    ))
    frpc.wait_for_proxies("a", timeout=15)
    frpc.wait_for_log(r"\[b\] start error: exceed the max_ports_per_client", 15)
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)
