"""frpc's admin UI in a real browser (Debian's headless Chromium, tests/support/browser.py), with
real data: our frps + our frpc with a running proxy and a refused one.

The page shows each proxy's name, status and error; on a phone-sized screen the table becomes
cards without horizontal scrolling; the config editor refuses a broken config inline (the precise
error, nothing written) and a valid edit is saved and reloaded (the added proxy shows up running
and carries traffic). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.admin import AdminClient
from support.procs import LOCALHOST, EchoServer, free_port, frpc_config, frps_config, tcp_proxy
from support.waits import echo_ok, poll

pytestmark = pytest.mark.timeout(180)

TOKEN = "ui-token"
USER, PASSWORD = "admin", "ui-pass"


def row_status(browser, name: str) -> str:
    return browser.find(f'tr[data-name="{name}"] .status').text


def test_frpc_ui_status_editor_round_trip(frp, browser, tmp_path) -> None:
    bind = free_port()
    frp.ours_frps(frps_config(bind, token=TOKEN)).wait_for_log("frps started successfully", 10)
    admin = free_port()
    with EchoServer() as echo:
        ok_port, new_port = free_port(), free_port()
        keys: dict[str, Any] = {"webServer.addr": LOCALHOST, "webServer.port": admin, "webServer.user": USER,
                "webServer.password": PASSWORD, "store.path": str(tmp_path / "store.json")}
        text = frpc_config(bind, tcp_proxy("ok-tcp", echo.port, ok_port),
                           tcp_proxy("refused-tcp", echo.port, bind),  # frps's own port: start error
                           token=TOKEN, **keys)
        frpc = frp.ours_frpc(text)
        frpc.wait_for_proxies("ok-tcp")
        frpc.wait_for_log(r"\[refused-tcp\] start error", 10)
        api = AdminClient(admin, USER, PASSWORD)
        refused_err = api.status()["refused-tcp"]["err"]
        assert refused_err

        browser.basic_auth(USER, PASSWORD)
        browser.get(f"http://{LOCALHOST}:{admin}/")  # redirects to /static/
        browser.wait_text("#proxy-rows", "refused-tcp")
        assert browser.driver.current_url.endswith("/static/")
        assert row_status(browser, "ok-tcp") == "running"
        assert row_status(browser, "refused-tcp") == "start error"
        assert browser.find('tr[data-name="refused-tcp"] td.err').text == refused_err
        assert browser.find('tr[data-name="ok-tcp"] td[data-label="Remote"]').text == f"{LOCALHOST}:{ok_port}"
        assert browser.text("#summary").startswith("2 proxies, 1 running")
        browser.screenshot("status-desktop")

        # filtering
        browser.find("#filter").send_keys("error")
        browser.wait(lambda: len(browser.find_all("#proxy-rows tr")) == 1, "filtered to one row")
        assert browser.find("#proxy-rows tr").get_attribute("data-name") == "refused-tcp"
        browser.find("#filter").clear()
        browser.js("document.getElementById('filter').dispatchEvent(new Event('input'))")
        browser.wait_count("#proxy-rows tr", 2)

        # a phone: cards, nothing wider than the screen
        browser.set_phone()
        browser.wait(lambda: browser.js("return getComputedStyle(document.querySelector('thead')).display")
                     == "none", "the table header hidden on a phone")
        assert browser.js("return document.documentElement.scrollWidth <= window.innerWidth")
        assert browser.find('tr[data-name="ok-tcp"]').is_displayed()
        browser.screenshot("status-phone")
        browser.set_desktop()

        # the editor: a broken config is refused inline, nothing is written
        browser.find("#nav-config").click()
        browser.wait(lambda: "ok-tcp" in browser.js("return document.getElementById('editor').value"),
                     "the config file in the editor")
        assert browser.js("return document.getElementById('editor').value") == text
        broken = text.replace("remotePort", "remotePrt", 1)
        browser.js("document.getElementById('editor').value = arguments[0]", broken)
        browser.find("#save").click()
        err = browser.wait_for("#config-error")
        browser.wait(lambda: "remotePrt" in err.text, "the config error shown")
        assert f"{frpc.config_path}: proxies[0].remotePrt: unknown field" in err.text
        # the cursor is put on the key the error names
        assert browser.js("const e = document.getElementById('editor');"
                          "return e.value.substring(e.selectionStart, e.selectionEnd)") == "remotePrt"
        assert frpc.config_path is not None and frpc.config_path.read_text() == text
        browser.screenshot("editor-error")

        # a valid edit: saved, reloaded, the new proxy runs
        edited = text + tcp_proxy("added-tcp", echo.port, new_port)
        browser.js("document.getElementById('editor').value = arguments[0]", edited)
        browser.find("#save").click()
        browser.wait_text("#config-ok", "Saved and reloaded.")
        assert not browser.find("#config-error").is_displayed()
        assert frpc.config_path.read_text() == edited
        browser.screenshot("editor-saved")
        browser.find("#nav-proxies").click()
        browser.wait_text("#proxy-rows", "added-tcp")
        browser.wait(lambda: row_status(browser, "added-tcp") == "running", "added-tcp running")
        poll(lambda: echo_ok(new_port), 10, "traffic through the added proxy")
        assert echo_ok(ok_port)
        browser.screenshot("status-after-reload")

        # the store: an entry added through the API shows up; Delete in the UI removes it
        store_port = free_port()
        body = ('{"name": "from-store", "type": "tcp", "tcp": {"localIP": "127.0.0.1", '
                f'"localPort": {echo.port}, "remotePort": {store_port}}}}}')
        assert api.request("POST", "/api/store/proxies", body).status == 200
        browser.find("#refresh").click()
        browser.wait_text("#store-list", "from-store (tcp)")
        browser.wait(lambda: row_status(browser, "from-store") == "running", "the store proxy running")
        assert browser.find('tr[data-name="from-store"] td.name .src').text == "store"
        browser.screenshot("store")
        browser.find("#store-list button").click()
        browser.driver.switch_to.alert.accept()
        browser.wait(lambda: not browser.find_all('tr[data-name="from-store"]'), "the store proxy gone")
        assert api.get("/api/store/proxies").json() == {"proxies": []}
        # the only failed request is the expected 400 of the broken config's check
        errors = [e for e in browser.console_errors() if "/api/verify" not in e or "status of 400" not in e]
        assert errors == []
