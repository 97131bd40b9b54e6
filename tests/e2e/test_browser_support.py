"""The browser test support itself: Debian's headless Chromium renders a page served on 127.0.0.1,
its DOM is read back after a script ran, and screenshots land in the artifacts directory."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from support.browser import Browser

PAGE = b"""<!doctype html><html><head><meta name="viewport" content="width=device-width">
<title>probe</title></head><body><ul id="list"></ul>
<script>
for (const n of ["alpha", "beta", "gamma"]) {
  const li = document.createElement("li"); li.textContent = n; document.getElementById("list").append(li);
}
</script></body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_port() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_chromium_renders_script_output(browser: Browser, page_port: int) -> None:
    browser.get(f"http://127.0.0.1:{page_port}/")
    items = browser.wait_count("#list li", 3)
    assert [li.text for li in items] == ["alpha", "beta", "gamma"]
    assert browser.driver.title == "probe"
    shot = browser.screenshot("desktop")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser.set_phone()
    assert browser.js("return window.innerWidth") <= 400
    assert browser.screenshot("phone").exists()
    assert browser.console_errors() == []
