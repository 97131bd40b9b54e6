"""Server manage plugins and maxPortsPerClient with the real Go frp 0.65.0 (frp §7.8, §5.3).

* A Go frpc logs in and registers its proxies through our frps's plugins (login gated on a meta
  token, remote port rewritten, user connections asked about), and one without the token is
  refused with the plugin's reason.
* Parity: the same Go frpc (tcp, udp and stcp proxies, an stcp visitor) against Go frps and
  against our frps, each with its own mock plugin:
  the request bodies of every op are byte for byte the same once the values that differ from run
  to run (time stamps, keys, run ids, client ports) are masked; path, query and Content-Type too.
* maxPortsPerClient: a Go frpc with more tcp/udp proxies than the quota gets Go's error for the
  ones beyond it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from support.plugin_server import MockPlugin, reject, rewrite
from support.procs import (
    TEST_STRING,
    EchoServer,
    free_port,
    frpc_config,
    frps_config,
    tcp_proxy,
    tcp_roundtrip,
    udp_proxy,
    wait_port,
)
from support.waits import frame, poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

TOKEN = "plugin-compat-token"
ALL_OPS = ("Login", "NewProxy", "CloseProxy", "Ping", "NewWorkConn", "NewUserConn")


@pytest.fixture
def plugin() -> Iterator[MockPlugin]:
    with MockPlugin("mock") as p:
        yield p


def _frps(frp, port: int, *, go: bool = False, extra: str = "", **keys: Any):
    text = frps_config(port, token=TOKEN, extra=extra, **keys)
    frps = frp.go_frps(text) if go else frp.ours_frps(text)
    wait_port(port, 10)
    return frps


def _token_rule(content: dict) -> dict:
    if (content.get("metas") or {}).get("token") == "123":
        return {"reject": False, "unchange": True}
    return {"reject": True, "reject_reason": "invalid token"}


def test_go_frpc_through_our_plugins(frp, plugin: MockPlugin, echo_server: EchoServer) -> None:
    port = free_port()
    remote = free_port()
    plugin.rules["Login"] = _token_rule
    plugin.rules["NewProxy"] = rewrite(lambda c: c.update(remote_port=remote))
    frps = _frps(frp, port, extra=plugin.toml(*ALL_OPS))
    frps.wait_for_log(r"plugin \[mock\] has been registered")
    keys: dict[str, Any] = {"metadatas.owner": "team-a", "annotations.note": "n"}
    frpc = frp.go_frpc(frpc_config(
        port, tcp_proxy("tcp", echo_server.port, 0, **keys),
        token=TOKEN, user="alice", extra='metadatas.token = "123"\n',
    ))
    run_id = frpc.wait_login(15)
    frpc.wait_for_proxies("alice.tcp", timeout=15)
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)

    [login] = plugin.calls_of("Login")
    assert login.content["user"] == "alice" and login.content["metas"] == {"token": "123"}
    [new_proxy] = plugin.calls_of("NewProxy")
    user = {"user": "alice", "metas": {"token": "123"}, "run_id": run_id}
    assert new_proxy.content["user"] == user
    assert new_proxy.content["proxy_name"] == "alice.tcp" and "remote_port" not in new_proxy.content  # 0: omitempty
    assert new_proxy.content["metas"] == {"owner": "team-a"} and new_proxy.content["annotations"] == {"note": "n"}
    poll(lambda: plugin.calls_of("NewUserConn"), 5, "NewUserConn asked")
    assert plugin.calls_of("NewUserConn")[0].content["proxy_type"] == "tcp"
    assert plugin.calls_of("NewWorkConn")[0].content["run_id"] == run_id

    # without the token: refused with the plugin's reason, as Go frpc shows it
    bad = frp.go_frpc(frpc_config(port, tcp_proxy("tcp2", echo_server.port, free_port()), token=TOKEN))
    bad.wait_for_log(r"invalid token", 15)
    frps.wait_for_log(r"login from 127\.0\.0\.1:\d+ failed: invalid token")

    # a NewUserConn rejection closes that user connection only: an EOF, or a reset when the byte
    # sent reached frps's socket after frps closed it (a fast plugin answer; Go's frps alike)
    plugin.rules["NewUserConn"] = reject("busy")
    try:
        answer = tcp_roundtrip(remote, b"x", 5)
    except ConnectionResetError:
        answer = b""
    assert answer == b""
    frps.wait_for_log(r"\[alice\.tcp\] the user conn \[127\.0\.0\.1:\d+\] was rejected, err:busy")
    plugin.rules.pop("NewUserConn")
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)


# Values that differ from one run to the next; masked before the bodies are compared.
_VOLATILE = re.compile(rb'"(privilege_key|run_id|client_address|remote_addr)":"[^"]*"|"timestamp":\d+')


def _mask(body: bytes) -> bytes:
    return _VOLATILE.sub(lambda m: (m[1] or b"timestamp") + b"=*", body)


def _run_go_frpc_against(frp, plugin: MockPlugin, *, go: bool, echo_port: int, remote: int, remote_udp: int,
                         visitor_port: int) -> None:
    port = free_port()
    frps = _frps(frp, port, go=go, extra=plugin.toml(*ALL_OPS))
    keys: dict[str, Any] = {"metadatas.owner": "team-a", "annotations.note": "a<b>&c", "transport.bandwidthLimit": "1MB"}
    frpc = frp.go_frpc(frpc_config(
        port,
        tcp_proxy("tcp", echo_port, remote, encryption=True, **keys),
        udp_proxy("udp", echo_port, remote_udp),
        '\n[[proxies]]\nname = "secret"\ntype = "stcp"\nsecretKey = "sk"\nallowUsers = ["*"]\n'
        f"localIP = \"127.0.0.1\"\nlocalPort = {echo_port}\n",
        '\n[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "secret"\nsecretKey = "sk"\n'
        f'bindAddr = "127.0.0.1"\nbindPort = {visitor_port}\n',
        token=TOKEN, user="bob", extra='metadatas.token = "123"\nmetadatas.zone = "eu"\n'
                                      "transport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 30\n",
    ))
    frpc.wait_login(15)
    frpc.wait_for_proxies("bob.tcp", "bob.udp", "bob.secret", timeout=15)
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)
    poll(lambda: tcp_roundtrip(visitor_port, frame(TEST_STRING), 5) == frame(TEST_STRING), 10, "stcp visitor")
    poll(lambda: plugin.calls_of("Ping") and len(plugin.calls_of("NewUserConn")) >= 2, 10, "Ping and NewUserConn")
    frpc.stop()
    poll(lambda: len(plugin.calls_of("CloseProxy")) == 3, 10, "three CloseProxy notifications")
    frps.stop()


def test_plugin_requests_match_go_frps(frp, echo_server: EchoServer) -> None:
    ports = {"remote": free_port(), "remote_udp": free_port(), "visitor_port": free_port()}
    with MockPlugin("go") as go_plugin, MockPlugin("ours") as our_plugin:
        _run_go_frpc_against(frp, go_plugin, go=True, echo_port=echo_server.port, **ports)
        _run_go_frpc_against(frp, our_plugin, go=False, echo_port=echo_server.port, **ports)
        for op in ALL_OPS:
            go_calls, our_calls = go_plugin.calls_of(op), our_plugin.calls_of(op)
            assert go_calls and our_calls, op
            assert {_mask(c.body) for c in our_calls} == {_mask(c.body) for c in go_calls}, op
            for ours, go in zip(our_calls, go_calls, strict=False):
                assert ours.path == go.path and ours.query == go.query, op
                assert ours.headers["Content-Type"] == go.headers["Content-Type"], op
                assert re.fullmatch(r"[0-9a-f]{16}", ours.headers["X-Frp-Reqid"]), op


@pytest.mark.parametrize("go_client", [True, False], ids=["go_frpc", "ours_frpc"])
def test_max_ports_per_client(frp, echo_server: EchoServer, go_client: bool) -> None:
    """Quota 2: a tcp and a udp proxy fit, a third tcp proxy gets Go's error; an stcp proxy takes
    no port; allowPorts still applies."""
    port = free_port()
    low = free_port()
    _frps(frp, port, maxPortsPerClient=2, extra=f"allowPorts = [{{ start = {low}, end = {low + 20} }}]\n")
    text = frpc_config(
        port,
        tcp_proxy("a-tcp", echo_server.port, low + 1),
        udp_proxy("b-udp", echo_server.port, low + 2),
        tcp_proxy("c-tcp", echo_server.port, low + 3),
        '\n[[proxies]]\nname = "secret"\ntype = "stcp"\nsecretKey = "sk"\n'
        f"localIP = \"127.0.0.1\"\nlocalPort = {echo_server.port}\n",
        token=TOKEN,
    )
    frpc = frp.go_frpc(text) if go_client else frp.ours_frpc(text)
    if go_client:
        # Go 0.65 starts each proxy in its own goroutine: whichever of the three port-taking
        # proxies sends its NewProxy last gets the refusal (seen: c-tcp before b-udp).
        def outcome() -> tuple[set[str], set[str]] | None:
            log = frpc.log_text()
            ok = set(re.findall(r"\[([abc]-\w+)\] start proxy success", log))
            refused = set(re.findall(r"\[([abc]-\w+)\] start error: exceed the max_ports_per_client", log))
            return (ok, refused) if len(ok) + len(refused) == 3 and "[secret] start proxy success" in log else None

        ok, refused = poll(outcome, 15, "all four proxies answered")
        assert len(ok) == 2 and len(refused) == 1, (ok, refused)
        tcp_ok = sorted(name for name in ok if name.endswith("-tcp"))
        remote = {"a-tcp": low + 1, "c-tcp": low + 3}[tcp_ok[0]]
    else:
        # names sorted as in the file: aiofrp (as Go 0.68) registers by name
        frpc.wait_for_proxies("a-tcp", "b-udp", "secret", timeout=15)
        frpc.wait_for_log(r"\[c-tcp\] start error: exceed the max_ports_per_client", 15)
        remote = low + 1
    assert tcp_roundtrip(remote, frame(TEST_STRING), 5) == frame(TEST_STRING)
