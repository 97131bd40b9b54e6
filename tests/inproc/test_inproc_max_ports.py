"""maxPortsPerClient in process: a client's tcp and udp proxies count one port each, other types
none; a refused or closed proxy gives its port back; allowPorts still applies within the quota
(Go's server/control.go RegisterProxy; frp §5.3 step 4)."""

from __future__ import annotations

from support.inproc import DEADLINE, InProc
from support.procs import free_port

from aiofrp.net.msgconn import MsgConn
from aiofrp.proto import msg as m

QUOTA_ERROR = "exceed the max_ports_per_client"


async def new_proxy(control: MsgConn, **fields: object) -> m.NewProxyResp:
    control.write_msg(m.NewProxy(**fields))  # type: ignore[arg-type]
    resp = await control.read_msg(timeout=DEADLINE)
    assert isinstance(resp, m.NewProxyResp), resp
    return resp


async def test_quota_counts_tcp_and_udp_only(inproc: InProc) -> None:
    low = free_port()
    ports = [p for p in range(low, low + 40) if p != low]
    server = await inproc.start_server(
        maxPortsPerClient=2, extra=f"allowPorts = [{{ start = {low}, end = {low + 40} }}]\n"
    )
    control, _ = await inproc.login(server)
    other, _ = await inproc.login(server)

    ok = await new_proxy(control, proxy_name="t1", proxy_type="tcp", remote_port=ports[0])
    assert ok.error == "" and ok.remote_addr == f":{ports[0]}"
    # a port outside allowPorts is refused by the allocation and gives its quota back
    bad = await new_proxy(control, proxy_name="t-out", proxy_type="tcp", remote_port=low - 1 if low > 1024 else 65000)
    assert "port not allowed" in bad.error
    ok = await new_proxy(control, proxy_name="u1", proxy_type="udp", remote_port=ports[1])
    assert ok.error == ""
    # stcp takes no port: not counted
    assert (await new_proxy(control, proxy_name="s1", proxy_type="stcp", sk="x")).error == ""

    refused = await new_proxy(control, proxy_name="t2", proxy_type="tcp", remote_port=ports[2])
    assert refused.error == QUOTA_ERROR and refused.proxy_name == "t2"
    assert (await new_proxy(control, proxy_name="u2", proxy_type="udp")).error == QUOTA_ERROR
    assert inproc.log.matching(rf"new proxy \[t2\] type \[tcp\] error: {QUOTA_ERROR}")
    assert "t2" not in server.proxies

    # the quota is per client: another client still gets its ports
    assert (await new_proxy(other, proxy_name="o1", proxy_type="tcp", remote_port=ports[3])).error == ""

    # closing a proxy frees its slot
    control.write_msg(m.CloseProxy(proxy_name="t1"))
    ok = await new_proxy(control, proxy_name="t2", proxy_type="tcp", remote_port=ports[2])
    assert ok.error == "" and ok.remote_addr == f":{ports[2]}"
    assert (await new_proxy(control, proxy_name="t3", proxy_type="tcp")).error == QUOTA_ERROR


async def test_quota_checked_before_the_name(inproc: InProc) -> None:
    """Go checks the quota before "already exists": a full client gets the quota error."""
    server = await inproc.start_server(maxPortsPerClient=1)
    control, _ = await inproc.login(server)
    assert (await new_proxy(control, proxy_name="t", proxy_type="tcp")).error == ""
    assert (await new_proxy(control, proxy_name="t", proxy_type="tcp")).error == QUOTA_ERROR
    assert (await new_proxy(control, proxy_name="t", proxy_type="stcp")).error == "proxy [t] already exists"


async def test_no_quota_by_default(inproc: InProc) -> None:
    server = await inproc.start_server()
    control, _ = await inproc.login(server)
    for i in range(5):
        assert (await new_proxy(control, proxy_name=f"t{i}", proxy_type="tcp")).error == ""


async def test_udp_refusals_carry_go_acquire_prefix(inproc: InProc) -> None:
    """Go's udp proxy wraps every refusal of its port manager as ``acquire port N error: <reason>``
    (server/proxy/udp.go), tcp's are bare; ours keep the detail after Go's reason."""
    low = free_port()
    server = await inproc.start_server(extra=f"allowPorts = [{{ start = {low}, end = {low + 5} }}]\n")
    control, _ = await inproc.login(server)
    outside = low - 1 if low > 1024 else 65000
    bad = await new_proxy(control, proxy_name="u-out", proxy_type="udp", remote_port=outside)
    assert bad.error.startswith(f"acquire port {outside} error: port not allowed"), bad.error
    bad = await new_proxy(control, proxy_name="t-out", proxy_type="tcp", remote_port=outside)
    assert bad.error.startswith("port not allowed"), bad.error
    assert (await new_proxy(control, proxy_name="u1", proxy_type="udp", remote_port=low + 1)).error == ""
    taken = await new_proxy(control, proxy_name="u2", proxy_type="udp", remote_port=low + 1)
    assert taken.error.startswith(f"acquire port {low + 1} error: port already used"), taken.error
