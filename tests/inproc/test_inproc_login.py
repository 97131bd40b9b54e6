"""Login in process: refusal and its LoginResp text, a run id taken over, work connections
that name no logged-in client (frp §3, §5.5; Go's server/service.go handleConnection)."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import DEADLINE, InProc
from support.procs import TEST_STRING, free_port, tcp_proxy

from aiofrp.proto import msg as m

REFUSED = "token in login doesn't match token from configuration"


async def test_wrong_token_is_refused_and_frpc_exits_with_frps_reason(inproc: InProc) -> None:
    server = await inproc.start_server()
    client = inproc.start_client(server, token="not-the-token", login_fail_exit=True)
    code = await asyncio.wait_for(inproc.client_task(client), DEADLINE)
    assert code == 1
    assert server.controls == {}
    assert inproc.log.matching(
        rf"^connect to server error: {REFUSED}; frps at 127\.0\.0\.1:{server.bind_port} refused the login",
        logger="aiofrp.client")
    assert inproc.log.matching(rf"^login from 127\.0\.0\.1:\d+ failed: {REFUSED}$", logger="aiofrp.server")
    assert not inproc.log.matching("login to server success")

    # frps goes on serving: the right token logs in and its proxy works
    echo = await inproc.echo_service()
    port = free_port()
    good = inproc.start_client(server, tcp_proxy("tcp", echo.port, port))
    await inproc.wait_proxies(good, "tcp", server=server)
    assert list(server.controls) == [good.run_id]
    assert await inproc.roundtrip(port, TEST_STRING) == TEST_STRING


@pytest.mark.parametrize(("detailed", "text"), [(True, REFUSED), (False, "register control error")])
async def test_login_resp_error_text(inproc: InProc, detailed: bool, text: str) -> None:
    """detailedErrorsToClient decides whether frpc learns why (Go: GenerateResponseErrorString)."""
    server = await inproc.start_server(detailedErrorsToClient=detailed)
    conn, resp = await inproc.login(server, token="not-the-token", pool_count=1)
    assert resp.error == text
    assert resp.run_id == ""
    with pytest.raises((EOFError, ConnectionError)):  # frps closes the connection after the refusal
        await conn.read_msg(timeout=DEADLINE)
    assert server.controls == {}


async def test_login_with_a_live_run_id_takes_the_control_over(inproc: InProc) -> None:
    """A second Login with the run id of a live control closes the first one (its proxies and
    ports with it) and keeps the run id (Go: ControlManager.Add replaces the old control)."""
    server = await inproc.start_server()
    first, resp = await inproc.login(server)
    assert not resp.error and resp.run_id
    run_id = resp.run_id
    port = free_port()
    first.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    answer = await first.read_msg(timeout=DEADLINE)
    assert isinstance(answer, m.NewProxyResp) and answer.error == "", answer
    old = server.controls[run_id]

    second, resp2 = await inproc.login(server, run_id=run_id)
    assert resp2.error == "" and resp2.run_id == run_id
    assert old.finished.done()
    assert server.controls[run_id] is not old
    assert "tcp" not in server.proxies
    with pytest.raises((EOFError, ConnectionError)):
        await first.read_msg(timeout=DEADLINE)
    # the port of the replaced control's proxy is free again: the new control gets it
    second.write_msg(m.NewProxy(proxy_name="tcp", proxy_type="tcp", remote_port=port))
    answer = await second.read_msg(timeout=DEADLINE)
    assert isinstance(answer, m.NewProxyResp) and answer.error == "" and answer.remote_addr == f":{port}"


async def test_work_conn_for_unknown_run_id_is_closed(inproc: InProc) -> None:
    server = await inproc.start_server()
    control, resp = await inproc.login(server, pool_count=0)
    conn = await inproc.open_conn(inproc.dial(server))
    conn.write_msg(m.NewWorkConn(run_id="no-such-run-id"))
    # aiofrp answers StartWorkConn{error} first (Go 0.65 just closes); then the connection ends
    try:
        start = await conn.read_msg(timeout=DEADLINE)
    except (EOFError, ConnectionError):
        pass
    else:
        assert isinstance(start, m.StartWorkConn) and "no-such-run-id" in start.error
        with pytest.raises((EOFError, ConnectionError)):
            await conn.read_msg(timeout=DEADLINE)
    assert inproc.log.matching(r"no client control found for run id \[no-such-run-id\]")
    # the logged-in control is untouched and still answers
    control.write_msg(m.Ping())
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.Pong)
    assert list(server.controls) == [resp.run_id]


async def test_malformed_first_frame_closes_that_connection_only(inproc: InProc) -> None:
    """Bad input loses nothing else: garbage as the first message of a connection that never
    logged in closes that connection with one fail2ban line; the logged-in control goes on."""
    server = await inproc.start_server()
    control, resp = await inproc.login(server)
    conn = await inproc.open_conn(inproc.dial(server))
    assert conn.transport is not None
    conn.transport.write(b"X" + (5).to_bytes(8, "big") + b"hello")  # unknown type byte
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_msg(timeout=DEADLINE)
    assert inproc.log.matching(r"^connection from 127\.0\.0\.1:\d+ failed: bad message: ", logger="aiofrp.server")
    control.write_msg(m.Ping())
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.Pong)
    assert list(server.controls) == [resp.run_id]


async def test_malformed_first_frame_on_a_logged_in_session_closes_the_stream_only(inproc: InProc) -> None:
    """The same garbage on a new yamux stream of a logged-in frpc's session: only that stream
    ends; the session and the control on it go on."""
    server = await inproc.start_server()
    connector = inproc.dial(server)
    control, resp = await inproc.login(server, connector=connector)
    conn = await inproc.open_conn(connector)
    assert conn.transport is not None
    conn.transport.write(b"X" + (5).to_bytes(8, "big") + b"hello")
    with pytest.raises((EOFError, ConnectionError)):
        await conn.read_msg(timeout=DEADLINE)
    assert inproc.log.matching(r"^bad message from 127\.0\.0\.1:\d+: .*, closing the stream$", logger="aiofrp.server")
    control.write_msg(m.Ping())
    assert isinstance(await control.read_msg(timeout=DEADLINE), m.Pong)
    assert connector.session is not None and not connector.session.is_closed
    assert list(server.controls) == [resp.run_id]
