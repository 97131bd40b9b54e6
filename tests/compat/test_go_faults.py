"""Faults with a Go frp 0.65.0 peer (the e2e versions with ours on both sides: tests/e2e/test_faults.py).

* Go frpc killed with SIGKILL mid-transfer and restarted against our frps: the user connection is
  closed, the new Go frpc registers the same proxy within 10 s, no "already exists";
* a 5 s partition (tests/support/blackhole.py, no FIN/RST) between frpc and frps, in both
  directions (Go frpc -> our frps, our frpc -> Go frps): each side logs its heartbeat timeout,
  and the tunnel comes back after the heal.
"""

from __future__ import annotations

import time

import pytest
from support.blackhole import BlackholeProxy
from support.faults import BACK_WITHIN, mid_transfer, no_stale_proxy
from support.procs import free_port, frpc_config, frps_config, tcp_proxy
from support.waits import echo_ok, poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

TOKEN = "go-faults-token"
GO_CLIENT, OURS_CLIENT = "go_frpc-ours_frps", "ours_frpc-go_frps"


def test_go_frpc_killed_and_restarted_mid_transfer(frp, echo_server, gofrp_bins) -> None:
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    frps.wait_for_log(r"frps started successfully", 10)
    conf = frpc_config(bind, tcp_proxy("t", echo_server.port, remote), token=TOKEN)
    frpc = frp.go_frpc(conf)
    frpc.wait_for_proxies("t", timeout=15)
    poll(lambda: echo_ok(remote), 10, "the tunnel")
    stream = mid_transfer(remote)
    frpc.kill()
    stream.join(10)
    assert stream.ended is not None, "our frps left the user connection open after Go frpc died"
    frpc2 = frp.go_frpc(conf)
    started = time.monotonic()
    frpc2.wait_for_proxies("t", timeout=BACK_WITHIN)
    poll(lambda: echo_ok(remote), max(0.5, BACK_WITHIN - (time.monotonic() - started)),
         "the tunnel within 10 s of the Go frpc restart")
    no_stale_proxy(frps, frpc2)


@pytest.mark.parametrize("direction", [GO_CLIENT, OURS_CLIENT])
def test_partition_with_a_go_peer(frp, echo_server, gofrp_bins, direction: str) -> None:
    bind, remote = free_port(), free_port()
    frps_text = frps_config(bind, token=TOKEN, extra="transport.heartbeatTimeout = 3\n")
    frps = frp.ours_frps(frps_text) if direction == GO_CLIENT else frp.go_frps(frps_text)
    poll(lambda: "frps started successfully" in frps.log_text() or "start frps success" in frps.log_text(),
         15, "frps started")
    with BlackholeProxy(bind) as hole:
        frpc_text = frpc_config(hole.port, tcp_proxy("t", echo_server.port, remote), token=TOKEN,
                                extra="transport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 3\n")
        frpc = frp.go_frpc(frpc_text) if direction == GO_CLIENT else frp.ours_frpc(frpc_text)
        frpc.wait_for_proxies("t", timeout=15)
        poll(lambda: echo_ok(remote), 10, "the tunnel through the proxy")
        s_mark, c_mark = frps.mark(), frpc.mark()
        hole.partition()
        cut = time.monotonic()
        detect = 3 + 2 + 1.5
        frps.wait_for_log(r"heartbeat timeout", detect + 1, since=s_mark)
        frpc.wait_for_log(r"heartbeat timeout", max(0.5, detect + 1 - (time.monotonic() - cut)), since=c_mark)
        remaining = 5.0 - (time.monotonic() - cut)
        if remaining > 0:
            time.sleep(remaining)  # the partition lasts 5 s: nothing to poll for meanwhile
        hole.heal()
        healed = time.monotonic()
        # Go frpc's login backoff grows to 20 s while the partition swallows its attempts
        frpc.wait_for_proxies("t", timeout=40, since=c_mark)
        poll(lambda: echo_ok(remote), max(1.0, 40 - (time.monotonic() - healed)), "the tunnel after the heal")
    no_stale_proxy(frps, frpc)
