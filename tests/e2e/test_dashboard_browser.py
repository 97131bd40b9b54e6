"""The frps dashboard in a real browser (Debian's headless Chromium, tests/support/browser.py):
our frps with real clients, proxies online and offline and a known transfer; the rendered page
must show the totals, every proxy with its status and today's traffic, filter them, and draw a
proxy's 7-day traffic chart; on a phone-sized screen too. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from support.browser import Browser
from support.procs import LOCALHOST, EchoServer, FrpLauncher, free_port, frpc_config, frps_config, tcp_proxy

pytestmark = pytest.mark.timeout(180)

USER, PASSWORD = "admin", "browser-pw"
ROWS_JS = ("return [...document.querySelectorAll('#proxies tbody tr[data-name]')]"
           ".map(r => [r.dataset.name, r.querySelector('.st').textContent])")
ROW_TEXT_JS = "const r = document.querySelector(`tr[data-name='${arguments[0]}']`); return r ? r.textContent : ''"


def test_dashboard_in_chromium(frp: FrpLauncher, browser: Browser) -> None:
    echo = EchoServer().start()
    try:
        bind, dash = free_port(), free_port()
        keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": dash, "webServer.user": USER,
                                "webServer.password": PASSWORD}
        frps = frp.ours_frps(frps_config(bind, token="t", **keys))
        frps.wait_for_log("frps started successfully", 20)
        remote = free_port()
        names = [f"svc-{i:02d}" for i in range(12)]
        frpc = frp.ours_frpc(frpc_config(
            bind, tcp_proxy("ssh", echo.port, remote), *(tcp_proxy(n, echo.port) for n in names),
            token="t", user="ops", clientID="rack1"))
        gone = frp.ours_frpc(frpc_config(bind, tcp_proxy("old-db", echo.port), token="t"))
        for n in ("ops.ssh", *(f"ops.{n}" for n in names)):
            frpc.wait_for_log(rf"\[{n}\] start proxy success", 20)
        gone.wait_for_log(r"\[old-db\] start proxy success", 20)
        gone.kill()  # its proxy goes offline
        payload = b"z" * 50_000
        with socket.create_connection((LOCALHOST, remote), timeout=10) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += s.recv(65536)

        browser.basic_auth(USER, PASSWORD)
        browser.get(f"http://{LOCALHOST}:{dash}/")  # 301 to /static/
        browser.wait_text("#proxies tbody", "ops.ssh")
        browser.wait_text("#proxies tbody", "old-db")
        assert browser.driver.current_url.endswith("/static/")
        assert browser.text("#version") == "v0.65.0"
        browser.wait(lambda: browser.text("#t-clients") == "1", "1 client in the totals")
        assert browser.text("#t-proxies") == "13"
        assert browser.text("#count") == "(14)"

        # The page re-renders its tables every 5 s: read what it shows in one script each time
        # (element references would go stale between two calls).
        rows = dict(browser.js(ROWS_JS))
        assert set(rows) == {"ops.ssh", "old-db", *(f"ops.{n}" for n in names)}
        assert rows["ops.ssh"] == "online" and rows["old-db"] == "offline"
        browser.wait(lambda: "48.8 KiB" in browser.js(ROW_TEXT_JS, "ops.ssh"), "today's traffic of ops.ssh (50,000 bytes)")
        assert "rack1" in browser.js(ROW_TEXT_JS, "ops.ssh")  # the client column
        assert "rack1" in browser.text("#clients") and "0.65.0" in browser.text("#clients")
        browser.screenshot("desktop")

        # filters: a search word, then the status filter
        search = browser.find("#search")
        search.send_keys("svc-0")
        browser.wait(lambda: len(browser.js(ROWS_JS)) == 10, "10 rows for 'svc-0'")
        assert browser.text("#count") == "(10 of 14)"
        search.clear()
        search.send_keys("zzz-nothing")
        browser.wait_text("#proxies tbody", "no proxy matches")
        search.clear()
        browser.js("document.getElementById('search').dispatchEvent(new Event('input'))")
        browser.wait(lambda: len(browser.js(ROWS_JS)) == 14, "all 14 rows again")
        browser.js("const s = document.getElementById('status-filter'); s.value = 'offline';"
                   "s.dispatchEvent(new Event('change'))")
        browser.wait(lambda: browser.js(ROWS_JS) == [["old-db", "offline"]], "only the offline proxy")
        browser.js("const s = document.getElementById('status-filter'); s.value = '';"
                   "s.dispatchEvent(new Event('change'))")
        browser.wait(lambda: len(browser.js(ROWS_JS)) == 14, "all 14 rows again")

        # a proxy's detail: its 7-day chart, today's bars drawn, its configuration
        browser.js("document.querySelector(\"tr[data-name='ops.ssh']\").click()")
        browser.wait_for("#traffic-chart")
        chart = browser.js("const c = document.getElementById('traffic-chart'); return [c.tagName, "
                           "[...c.querySelectorAll('rect')].map(r => Number(r.getAttribute('height')))]")
        tag, heights = chart
        assert tag.lower() == "svg"
        assert len(heights) == 14  # in and out for 7 days
        assert heights[-2] > 0 and heights[-1] > 0 and sum(heights[:-2]) == 0  # only today has traffic
        assert '"remotePort"' in browser.text("#detail-conf")
        browser.screenshot("detail")

        # a phone: the same data, readable without zooming
        browser.set_phone()
        browser.get(f"http://{LOCALHOST}:{dash}/static/")
        browser.wait_text("#proxies tbody", "ops.ssh")
        assert browser.js("return document.documentElement.scrollWidth") <= browser.js("return window.innerWidth")
        width = browser.js("return document.querySelector(\"tr[data-name='ops.ssh'] td.name\")"
                           ".getBoundingClientRect().width")
        assert width > 0
        browser.screenshot("phone")
        assert browser.console_errors() == []
    finally:
        echo.stop()
