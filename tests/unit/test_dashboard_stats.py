"""frps statistics (server/stats.py), the dashboard's conf rendering and the web Basic auth guard
(net/webauth.py), without sockets."""

from __future__ import annotations

import base64

import pytest

from aiofrp.net import webauth
from aiofrp.proto import msg as m
from aiofrp.server import stats as st
from aiofrp.server.dashboard import is_loopback, proxy_conf


def test_date_counter_rotates_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    day = [1000]
    monkeypatch.setattr(st, "_today", lambda: day[0])
    c = st.DateCounter()
    c.inc(5)
    assert c.last_days() == [5, 0, 0, 0, 0, 0, 0]
    day[0] += 1
    c.inc(2)
    assert c.today() == 2 and c.last_days() == [2, 5, 0, 0, 0, 0, 0]
    day[0] += 3
    assert c.last_days() == [0, 0, 0, 2, 5, 0, 0]
    day[0] += 7
    assert c.last_days() == [0] * 7


def test_proxy_statistics_lifecycle() -> None:
    s = st.ServerStats()
    live = [0, 0]
    s.new_proxy("a", "tcp", "u", "cid", lambda: (live[0], live[1]))
    assert s.proxy_type_counts == {"tcp": 1}
    s.open_conn("a")
    live[:] = [10, 20]
    ps = s.proxies["a"]
    assert ps.today() == (10, 20) and s.cur_conns == 1 and ps.cur_conns == 1  # live bytes of an open conn
    assert s.today_totals() == (10, 20)
    s.close_conn("a", 100, 200)  # the connection's final counts replace its live bytes
    live[:] = [0, 0]
    assert ps.today() == (100, 200) and ps.totals() == (100, 200) and s.cur_conns == 0
    assert ps.last_start_text and not ps.last_close_text
    s.close_proxy("a", "tcp")
    assert s.proxy_type_counts == {"tcp": 0} and ps.live is None and ps.last_close_text
    assert s.clear_offline(older_than=3600) == (0, 1)  # offline, but not for long
    assert s.clear_offline() == (1, 1) and not s.proxies
    s.close_conn("gone", 7, 8)  # a connection outliving its statistics still counts in the totals
    assert s.today_totals() == (107, 208) and (s.orphan_in, s.orphan_out) == (7, 8)


def test_udp_live_bytes_without_connections() -> None:
    s = st.ServerStats()
    s.new_proxy("u", "udp", "", "r", lambda: (3, 4), datagram=True)
    assert s.proxies["u"].today() == (3, 4)
    s.new_proxy("t", "tcp", "", "r", lambda: (3, 4))  # no open connection: live is not asked
    assert s.proxies["t"].today() == (0, 0)
    s.close_proxy("u", "udp", (3, 4))
    assert s.proxies["u"].today() == (3, 4)


def test_clients_follow_go_registry() -> None:
    s = st.ServerStats()
    s.new_client("alice", "box", "run1", "h", "0.65.0", "127.0.0.1")
    s.new_client("", "", "run2", "", "0.65.0", "::1")
    assert set(s.clients) == {"alice.box", "run2"} and s.client_count == 2
    s.close_client("run2")  # no client id: forgotten
    s.close_client("run1")  # with one: kept offline
    assert set(s.clients) == {"alice.box"} and s.client_count == 0
    c = s.clients["alice.box"]
    assert not c.online and c.run_id == "" and c.disconnected
    s.new_client("alice", "box", "run3", "h2", "0.65.0", "127.0.0.1")
    assert c.online and c.run_id == "run3" and c.hostname == "h2" and c.disconnected == 0


def test_conf_like_go_and_without_secrets() -> None:
    tcp = proxy_conf(m.NewProxy(proxy_name="a.ssh", proxy_type="tcp", use_encryption=True, remote_port=6000,
                                annotations={"k": "v"}, group="g", group_key="SECRET"))
    assert list(tcp) == ["name", "type", "annotations", "transport", "loadBalancer", "healthCheck", "localIP",
                         "plugin", "remotePort"]
    assert tcp["transport"] == {"useEncryption": True, "bandwidthLimit": "", "bandwidthLimitMode": "client"}
    assert tcp["loadBalancer"] == {"group": "g"} and "SECRET" not in repr(tcp)
    http = proxy_conf(m.NewProxy(proxy_name="w", proxy_type="http", custom_domains=["a.example"],
                                 http_user="u", http_pwd="SECRET"))
    assert http["locations"] is None and http["customDomains"] == ["a.example"] and "SECRET" not in repr(http)
    sudp = proxy_conf(m.NewProxy(proxy_name="s", proxy_type="sudp", sk="SECRET"))
    assert "SECRET" not in repr(sudp) and "secretKey" not in sudp


@pytest.mark.parametrize(("addr", "loop"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("::", False), ("", False), ("example.com", False)])
def test_loopback(addr: str, loop: bool) -> None:
    assert is_loopback(addr) is loop


def test_basic_auth_check_and_blocking() -> None:
    now = [0.0]
    auth = webauth.BasicAuth("admin", "pw", clock=lambda: now[0])
    good = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert auth.check(good) and auth.check("basic " + good[6:])
    for bad in ("Basic " + base64.b64encode(b"admin:pW").decode(), "Bearer x", "Basic %%%", "", good + "x"):
        assert not auth.check(bad), bad
    for _ in range(webauth.MAX_FAILURES - 1):
        auth._failed("1.2.3.4", now[0])
    assert auth._blocked("1.2.3.4", now[0]) == 0
    auth._failed("1.2.3.4", now[0])
    assert auth._blocked("1.2.3.4", now[0]) == webauth.BLOCK and auth._blocked("5.6.7.8", now[0]) == 0
    now[0] += webauth.BLOCK + 1
    assert auth._blocked("1.2.3.4", now[0]) == 0
    assert not webauth.BasicAuth("", "").enabled
