"""A Go frpc 0.65.0 against our frps while unauthenticated connections hammer it (issue 8, item 4).

* A Go frpc with a wrong token is refused: it logs frps's reason (so the LoginResp was delivered
  before the close), frps logs ``login from ADDR failed: ...`` for each of its attempts, and its
  connections do not pile up in frps.
* A legit Go frpc's tcp proxy keeps echoing (new and long-lived connections) through a burst of
  200 wrong-token logins, 100 idle and 150 malformed connections; every one of those is closed in
  time with one log line and frps's fds return to their baseline; the Go frpc never re-logs in.
"""

from __future__ import annotations

import re

import pytest
from support.hostile import burst_while_echoing, fd_count
from support.procs import free_port, frpc_config, frps_config, tcp_proxy, wait_port

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TOKEN = "compat-preauth-token"
MISMATCH = "token in login doesn't match token from configuration"


@pytest.mark.parametrize("mux", [True, False], ids=["mux", "nomux"])
def test_go_frpc_during_burst(frp, echo_server, mux: bool) -> None:
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN, tcp_mux=None if mux else False))
    wait_port(bind, 10)
    frpc = frp.go_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, remote), token=TOKEN,
                                   tcp_mux=None if mux else False))
    frpc.wait_for_proxies("echo", timeout=10)
    burst_while_echoing(frps, frpc, bind, remote, mux)


def test_go_frpc_wrong_token_is_refused_and_closed(frp, echo_server) -> None:
    bind, remote = free_port(), free_port()
    frps = frp.ours_frps(frps_config(bind, token=TOKEN))
    wait_port(bind, 10)
    pid = frps.pid
    assert pid is not None
    baseline = fd_count(pid)
    bad = frp.go_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, remote), token="wrong-token"))
    # Go frpc retries (loginFailExit = false): several refusals, each with its own line on frps
    frps.wait_for_log(rf"(?s)(login from 127\.0\.0\.1:\d+ failed: {re.escape(MISMATCH)}.*){{2}}", 15)
    bad.wait_for_log(re.escape(MISMATCH), 5)
    assert "login to server success" not in bad.log_text()
    # between attempts nothing of the refused client stays open in frps
    assert fd_count(pid) <= baseline + 1  # at most the attempt in flight
    bad.kill()
    assert frps.running
    good = frp.go_frpc(frpc_config(bind, tcp_proxy("echo", echo_server.port, remote), token=TOKEN,
                                   login_fail_exit=True))
    good.wait_for_proxies("echo", timeout=10)
