"""Server manage plugins in process (frp §7.8; Go: pkg/plugin/server, server/control.go,
server/service.go, server/proxy/proxy.go): frps asks a mock plugin (support/plugin_server.py)
about every op; what it sends, where, and what each answer does."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.inproc import DEADLINE, TOKEN, InProc, until
from support.plugin_server import ERROR_500, GARBAGE, HANG_UP, SLOW, MockPlugin, fixed, reject, rewrite
from support.procs import free_port

from aiofrp import FRP_VERSION
from aiofrp.net.msgconn import MsgConn
from aiofrp.proto import msg as m
from aiofrp.proto.crypto import auth_key, derive_key
from aiofrp.server.plugin import http as plugin_http
from aiofrp.server.service import Server

ALL_OPS = ("Login", "NewProxy", "CloseProxy", "Ping", "NewWorkConn", "NewUserConn")
REQID = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture
def plugin() -> Iterator[MockPlugin]:
    with MockPlugin("mock") as p:
        yield p


async def login(inproc: InProc, server: Server, **fields: Any) -> tuple[MsgConn, m.LoginResp]:
    """A Login by hand with the given fields (user, metas, ...)."""
    conn = await inproc.open_conn(inproc.dial(server))
    ts = int(time.time())
    msg = m.Login(version=FRP_VERSION, hostname="host", os="linux", arch="amd64",
                  privilege_key=auth_key(TOKEN, ts), timestamp=ts, **fields)
    conn.write_msg(msg)
    resp = await conn.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.LoginResp)
    if not resp.error:
        conn.enable_encryption(derive_key(TOKEN))
    return conn, resp


async def work_conn(inproc: InProc, server: Server, run_id: str) -> MsgConn:
    conn = await inproc.open_conn(inproc.dial(server))
    ts = int(time.time())
    conn.write_msg(m.NewWorkConn(run_id=run_id, privilege_key=auth_key(TOKEN, ts), timestamp=ts))
    return conn


async def reply(conn: MsgConn, cls: type[m.M]) -> m.M:
    while True:
        msg = await conn.read_msg(timeout=DEADLINE)
        if isinstance(msg, cls):
            return msg
        assert isinstance(msg, m.ReqWorkConn), msg


def body_of(op: str, content: dict[str, Any]) -> bytes:
    """What Go's json.Marshal makes of a plugin request (keys as given, no spaces)."""
    return json.dumps({"version": "0.1.0", "op": op, "content": content}, separators=(",", ":")).encode()


async def test_every_op_and_its_content(inproc: InProc, plugin: MockPlugin) -> None:
    """All six ops, in Go's request format, with Go's content fields in Go's key order."""
    server = await inproc.start_server(extra=plugin.toml(*ALL_OPS))
    assert inproc.log.matching(r"plugin \[mock\] has been registered")
    control, resp = await login(inproc, server, user="alice", metas={"token": "123", "b": "2"}, pool_count=1)
    assert resp.error == ""
    run_id = resp.run_id
    [call] = plugin.calls_of("Login")
    assert call.path == "/handler" and call.query == {"op": "Login", "version": "0.1.0"}
    assert REQID.match(call.headers["X-Frp-Reqid"]) and call.headers["Content-Type"] == "application/json"
    peer = call.content["client_address"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", peer)
    ts = call.content["timestamp"]
    assert call.body == body_of("Login", {
        "version": FRP_VERSION, "hostname": "host", "os": "linux", "arch": "amd64", "user": "alice",
        "privilege_key": auth_key(TOKEN, ts), "timestamp": ts, "metas": {"b": "2", "token": "123"},
        "client_spec": {}, "pool_count": 1, "client_address": peer,
    })
    user = {"user": "alice", "metas": {"b": "2", "token": "123"}, "run_id": run_id}

    # NewWorkConn (frps asked for one: pool_count = 1)
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.ReqWorkConn)
    work = await work_conn(inproc, server, run_id)
    await until(lambda: plugin.calls_of("NewWorkConn"), "NewWorkConn asked")
    [call] = plugin.calls_of("NewWorkConn")
    ts = call.content["timestamp"]
    assert call.body == body_of("NewWorkConn", {
        "user": user, "run_id": run_id, "privilege_key": auth_key(TOKEN, ts), "timestamp": ts,
    })

    # NewProxy with metas and annotations
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="alice.tcp", proxy_type="tcp", use_encryption=True,
                                 metas={"m": "1"}, annotations={"a/b": "x<y"}, remote_port=port))
    resp2 = await reply(control, m.NewProxyResp)
    assert resp2.error == "" and resp2.remote_addr == f":{port}"
    [call] = plugin.calls_of("NewProxy")
    assert call.body == body_of("NewProxy", {
        "user": user, "proxy_name": "alice.tcp", "proxy_type": "tcp", "use_encryption": True,
        "metas": {"m": "1"}, "annotations": {"a/b": "x<y"}, "remote_port": port,
    }).replace(b"x<y", b"x\\u003cy")  # Go escapes <, > and & in strings

    # Ping
    ts = int(time.time())
    control.write_msg(m.Ping(privilege_key=auth_key(TOKEN, ts), timestamp=ts))
    assert (await reply(control, m.Pong)).error == ""
    [call] = plugin.calls_of("Ping")
    assert call.body == body_of("Ping", {"user": user, "privilege_key": auth_key(TOKEN, ts), "timestamp": ts})

    # NewUserConn, then the user is served through the pooled work connection
    _, writer = await inproc.open_user(port)
    start = await work.read_msg(timeout=DEADLINE)
    assert isinstance(start, m.StartWorkConn) and start.proxy_name == "alice.tcp"
    [call] = plugin.calls_of("NewUserConn")
    local = writer.get_extra_info("sockname")
    assert call.body == body_of("NewUserConn", {
        "user": user, "proxy_name": "alice.tcp", "proxy_type": "tcp", "remote_addr": f"127.0.0.1:{local[1]}",
    })

    # CloseProxy: a notification, in the background
    control.write_msg(m.CloseProxy(proxy_name="alice.tcp"))
    await until(lambda: plugin.calls_of("CloseProxy"), "CloseProxy told")
    [call] = plugin.calls_of("CloseProxy")
    assert call.body == body_of("CloseProxy", {"user": user, "proxy_name": "alice.tcp"})
    reqids = {c.headers["X-Frp-Reqid"] for c in plugin.calls}
    assert len(reqids) == len(plugin.calls)  # one request id per operation


async def test_empty_user_info_is_sent_as_go_does(inproc: InProc, plugin: MockPlugin) -> None:
    """UserInfo has no omitempty: "user": "" and "metas": null when the Login had none."""
    server = await inproc.start_server(extra=plugin.toml("NewProxy"))
    control, resp = await login(inproc, server)
    control.write_msg(m.NewProxy(proxy_name="s", proxy_type="stcp", sk="k"))
    assert (await reply(control, m.NewProxyResp)).error == ""
    [call] = plugin.calls_of("NewProxy")
    assert call.body == body_of("NewProxy", {
        "user": {"user": "", "metas": None, "run_id": resp.run_id}, "proxy_name": "s", "proxy_type": "stcp", "sk": "k",
    })


async def test_rejections_reach_frpc(inproc: InProc, plugin: MockPlugin) -> None:
    server = await inproc.start_server(extra=plugin.toml(*ALL_OPS))
    plugin.rules["Login"] = lambda c: (
        {"reject": False, "unchange": True} if c.get("metas", {}).get("token") == "123"
        else {"reject": True, "reject_reason": "invalid token"}
    )
    _, resp = await login(inproc, server, metas={"token": "bad"})
    assert resp.error == "invalid token" and resp.run_id == ""
    assert inproc.log.matching(r"login from 127\.0\.0\.1:\d+ failed: invalid token")

    control, resp = await login(inproc, server, metas={"token": "123"}, pool_count=1)
    assert resp.error == ""
    plugin.rules["NewProxy"] = reject("no tcp for you")
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp"))
    resp2 = await reply(control, m.NewProxyResp)
    assert resp2.proxy_name == "t" and resp2.error == "no tcp for you"
    assert inproc.log.matching(r"new proxy \[t\] type \[tcp\] error: no tcp for you")
    assert "t" not in server.proxies

    plugin.rules["Ping"] = reject("ping refused")
    ts = int(time.time())
    control.write_msg(m.Ping(privilege_key=auth_key(TOKEN, ts), timestamp=ts))
    assert (await reply(control, m.Pong)).error == "ping refused"
    assert inproc.log.matching(r"received invalid ping: ping refused")

    plugin.rules["NewWorkConn"] = reject("no work")
    work = await work_conn(inproc, server, resp.run_id)
    start = await work.read_msg(timeout=DEADLINE)
    assert isinstance(start, m.StartWorkConn) and start.error == "no work"
    assert inproc.log.matching(r"connection from 127\.0\.0\.1:\d+ failed: work connection refused: no work")
    plugin.rules["NewWorkConn"] = fixed(ERROR_500)
    work = await work_conn(inproc, server, resp.run_id)
    start = await work.read_msg(timeout=DEADLINE)
    assert isinstance(start, m.StartWorkConn) and start.error == "send NewWorkConn request to plugin error"
    await until(lambda: inproc.log.matching(r"connection from 127\.0\.0\.1:\d+ closed: work connection refused: "
                                            r"send NewWorkConn request to plugin error"), "refusal logged")

    # NewUserConn: the user connection is closed, the proxy goes on
    plugin.rules.pop("NewProxy")
    plugin.rules.pop("NewWorkConn")
    port = free_port()
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp", remote_port=port))
    assert (await reply(control, m.NewProxyResp)).error == ""
    plugin.rules["NewUserConn"] = reject("user not welcome")
    reader, _ = await inproc.open_user(port)
    assert await asyncio.wait_for(reader.read(), DEADLINE) == b""
    await until(lambda: inproc.log.matching(r"\[t\] the user conn \[127\.0\.0\.1:\d+\] was rejected, "
                                            r"err:user not welcome"), "rejection logged")


async def test_empty_reject_reason_is_still_an_error(inproc: InProc, plugin: MockPlugin) -> None:
    """Go passes an empty reject_reason on as an empty error, which frpc takes for success; we
    name the plugin instead."""
    server = await inproc.start_server(extra=plugin.toml("NewProxy"))
    plugin.rules["NewProxy"] = fixed({"reject": True})
    control, _ = await login(inproc, server)
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp"))
    assert (await reply(control, m.NewProxyResp)).error == "rejected by plugin [mock]"


async def test_rewrites_in_configured_order(inproc: InProc) -> None:
    """Two plugins: the second sees what the first returned; frps uses the last content.
    Login may change metas (seen by the later ops), NewProxy the remote port."""
    port = free_port()
    with MockPlugin("first") as first, MockPlugin("second") as second:
        first.rules["Login"] = rewrite(lambda c: c.update(metas={"tier": "gold"}))
        first.rules["NewProxy"] = rewrite(lambda c: c.update(remote_port=port))
        server = await inproc.start_server(extra=first.toml("Login", "NewProxy") + second.toml("Login", "NewProxy"))
        control, resp = await login(inproc, server, user="bob", metas={"tier": "free"})
        assert resp.error == ""
        assert second.calls_of("Login")[0].content["metas"] == {"tier": "gold"}
        control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp", remote_port=0))
        resp2 = await reply(control, m.NewProxyResp)
        assert resp2.error == "" and resp2.remote_addr == f":{port}"
        new_proxy = second.calls_of("NewProxy")[0].content
        assert new_proxy["remote_port"] == port
        assert new_proxy["user"] == {"user": "bob", "metas": {"tier": "gold"}, "run_id": resp.run_id}
        assert first.calls[0].at <= second.calls[0].at
        await inproc.stop_server(server)


async def test_rewrite_replaces_the_whole_content(inproc: InProc, plugin: MockPlugin) -> None:
    """unchange = false: the answer's content is the whole new content (keys left out are zero,
    as Go decodes into a fresh struct), keys match case-insensitively."""
    server = await inproc.start_server(extra=plugin.toml("NewProxy"))
    plugin.rules["NewProxy"] = fixed({"unchange": False, "content": {"PROXY_NAME": "renamed", "proxy_type": "stcp"}})
    control, _ = await login(inproc, server)
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp", remote_port=free_port()))
    resp = await reply(control, m.NewProxyResp)
    assert resp.proxy_name == "renamed" and resp.error == ""
    assert server.proxies["renamed"].type == "stcp"


@pytest.mark.parametrize(("rule", "why"), [
    (GARBAGE, r"invalid character '<' looking for beginning of value$"),
    (ERROR_500, r"do http request error code: 500"),
    (HANG_UP, r'Post "http://127\.0\.0\.1:\d+/handler\?op=NewProxy&version=0\.1\.0": EOF$'),
    ('{"reject": "yes"}', r"json: cannot unmarshal string into Go struct field Response\.reject of type bool$"),
    ('{"unchange": false, "content": null}', r'the answer has "unchange": false and "content": null'),
    ('[1, 2]', r"json: cannot unmarshal array into Go value of type server\.Response$"),
])
async def test_bad_answers_fail_only_that_request(inproc: InProc, plugin: MockPlugin, rule: str, why: str) -> None:
    server = await inproc.start_server(extra=plugin.toml("NewProxy"))
    control, _ = await login(inproc, server)
    plugin.rules["NewProxy"] = fixed(rule)
    control.write_msg(m.NewProxy(proxy_name="bad", proxy_type="tcp"))
    resp = await reply(control, m.NewProxyResp)
    assert resp.error == "send NewProxy request to plugin error"
    assert inproc.log.matching(r"\[reqid: [0-9a-f]{16}\] send NewProxy request to plugin \[mock\] error: " + why)
    # the control and the plugin go on
    plugin.rules.pop("NewProxy")
    control.write_msg(m.NewProxy(proxy_name="good", proxy_type="tcp"))
    assert (await reply(control, m.NewProxyResp)).error == ""


async def test_slow_plugin_is_bounded(inproc: InProc, plugin: MockPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that does not answer in time fails that request (Go would wait forever)."""
    monkeypatch.setattr(plugin_http, "TIMEOUT", 0.3)
    server = await inproc.start_server(extra=plugin.toml("Login"))
    plugin.rules["Login"] = fixed(SLOW)
    _, resp = await login(inproc, server)
    assert resp.error == "send Login request to plugin error"
    assert inproc.log.matching(r"send Login request to plugin \[mock\] error: Post \"http://127\.0\.0\.1:\d+"
                               r"/handler\?op=Login&version=0\.1\.0\": no answer within 0\.3s")
    plugin.rules.pop("Login")
    assert (await login(inproc, server))[1].error == ""


async def test_unreachable_plugin_rejects(inproc: InProc) -> None:
    port = free_port()
    toml = f'\n[[httpPlugins]]\nname = "gone"\naddr = "127.0.0.1:{port}"\npath = "/h"\nops = ["Login"]\n'
    server = await inproc.start_server(extra=toml)
    _, resp = await login(inproc, server)
    assert resp.error == "send Login request to plugin error"
    assert inproc.log.matching(
        rf'\[reqid: [0-9a-f]{{16}}\] send Login request to plugin \[gone\] error: Post "http://127\.0\.0\.1:{port}'
        rf'/h\?op=Login&version=0\.1\.0": dial tcp 127\.0\.0\.1:{port}: connect'
    )
    # the client is not to blame: an INFO "closed" line, not a "failed" one fail2ban counts
    assert inproc.log.matching(r"connection from 127\.0\.0\.1:\d+ closed: login refused: "
                               r"send Login request to plugin error")
    assert not inproc.log.matching(r"login from .* failed")
    server2 = await inproc.start_server(extra=toml, detailedErrorsToClient=False)
    assert (await login(inproc, server2))[1].error == "register control error"


async def test_https_plugin(inproc: InProc) -> None:
    """https:// addresses: tlsVerify = false accepts the self-signed certificate; true refuses it."""
    with MockPlugin("tls", tls=True) as tls:
        server = await inproc.start_server(extra=tls.toml("Login", "NewProxy"))
        control, resp = await login(inproc, server, user="carol")
        assert resp.error == ""
        control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp"))
        assert (await reply(control, m.NewProxyResp)).error == ""
        assert [c.op for c in tls.calls] == ["Login", "NewProxy"]
        await inproc.stop_server(server)

        strict = await inproc.start_server(extra=tls.toml("Login", tls_verify=True))
        assert (await login(inproc, strict))[1].error == "send Login request to plugin error"
        assert inproc.log.matching(r"send Login request to plugin \[tls\] error: Post \"https://.*certificate")
        assert len(tls.calls) == 2
        await inproc.stop_server(strict)


async def test_ops_not_subscribed_are_not_sent(inproc: InProc, plugin: MockPlugin) -> None:
    server = await inproc.start_server(extra=plugin.toml("CloseProxy"))
    control, _ = await login(inproc, server, pool_count=1)
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp"))
    assert (await reply(control, m.NewProxyResp)).error == ""
    assert plugin.calls == []
    # the control ends: each of its proxies is told closed
    control.abort()
    await until(lambda: plugin.calls_of("CloseProxy"), "CloseProxy told at client exit")
    assert plugin.calls_of("CloseProxy")[0].content["proxy_name"] == "t"


async def test_frps_stopping_with_controls_leaves_nothing_behind(inproc: InProc, plugin: MockPlugin) -> None:
    """frps stops while clients with proxies are logged in: their CloseProxy notices do not open
    a new plugin session after frps closed its own (the teardown checks no socket or task is left)."""
    server = await inproc.start_server(extra=plugin.toml(*ALL_OPS))
    control, _ = await login(inproc, server, pool_count=1)
    control.write_msg(m.NewProxy(proxy_name="t", proxy_type="tcp"))
    assert (await reply(control, m.NewProxyResp)).error == ""
    await inproc.stop_server(server)
