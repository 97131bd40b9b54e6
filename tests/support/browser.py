"""A real browser for web-UI tests: Debian's headless Chromium driven through Selenium.

Uses the system ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages ``chromium``
and ``chromium-driver``), never a downloaded browser build: Selenium's own driver manager is not
consulted because both paths are given. Where they are missing, :func:`ensure_chromium` installs
them with ``apt-get install -y chromium chromium-driver`` (as root; ``.ci/run`` does the same up
front) or fails the test saying why; it never skips in silence.

Fixture ``browser``: a :class:`Browser` for the running test (one Chromium per test session,
reused; every test starts on ``about:blank`` with its cookies cleared and the desktop window
size). ``browser.screenshot("name")`` saves ``tests/artifacts/<test>-<name>.png`` (directory
overridable with ``AIOFRP_ARTIFACTS``; it is git-ignored); a last ``<test>-end.png`` is saved at
teardown, so a failing test leaves a picture of what the page showed.

Example::

    def test_dashboard(browser, ...):
        browser.get(f"http://user:pass@127.0.0.1:{port}/")
        browser.wait_text("#proxies", "ssh")
        browser.set_phone()
        browser.screenshot("phone")
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

__all__ = [
    "ARTIFACTS",
    "CHROMEDRIVER",
    "CHROMIUM",
    "Browser",
    "BrowserUnavailable",
    "browser",
    "ensure_chromium",
    "start_chromium",
]

CHROMIUM = os.environ.get("AIOFRP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AIOFRP_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("AIOFRP_ARTIFACTS", Path(__file__).resolve().parent.parent / "artifacts"))

DESKTOP = (1280, 900)
PHONE = (390, 844)  # a current phone's CSS viewport

T = TypeVar("T")


class BrowserUnavailable(RuntimeError):
    """Chromium or chromedriver is missing and could not be installed; the message says why."""


def _present() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def ensure_chromium() -> None:
    """Install Debian's chromium + chromium-driver when missing (root only), else raise why."""
    if _present():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise BrowserUnavailable(
            f"{CHROMIUM} / {CHROMEDRIVER} missing and no apt-get here: install Chromium and its "
            "chromedriver, or point AIOFRP_CHROMIUM / AIOFRP_CHROMEDRIVER at them"
        )
    if os.geteuid() != 0:
        raise BrowserUnavailable(
            f"{CHROMIUM} / {CHROMEDRIVER} missing; run: sudo apt-get install -y chromium chromium-driver"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "install", "-y", "-q", "chromium", "chromium-driver"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:  # stale package lists: update once, then try again
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600, check=False)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0 or not _present():
        raise BrowserUnavailable(
            f"apt-get install chromium chromium-driver failed (exit {r.returncode}): {r.stderr[-2000:]}"
        )


def start_chromium() -> webdriver.Chrome:
    """A headless Chromium under chromedriver (installs both first if needed)."""
    ensure_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",  # nothing but the page under test goes on the wire
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        "--password-store=basic",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for console_errors()
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    try:
        driver = webdriver.Chrome(options=opts, service=service)
    except WebDriverException as e:
        raise BrowserUnavailable(f"chromium did not start under chromedriver: {e.msg}") from e
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


class Browser:
    """The Chromium driver plus the few things web-UI tests need: waits with deadlines and
    screenshots named after the test. ``driver`` is the Selenium WebDriver for anything else."""

    def __init__(self, driver: webdriver.Chrome, test_name: str) -> None:
        self.driver = driver
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)[:120]
        self.shots: list[Path] = []

    # -- navigation ------------------------------------------------------------------------
    def get(self, url: str) -> None:
        self.driver.get(url)

    def basic_auth(self, user: str, password: str) -> None:
        """Send ``Authorization: Basic`` with every request of this page (Chromium's DevTools
        protocol; credentials in the URL do not reach the page's own fetch() calls)."""
        import base64

        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})

    def set_size(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)

    def set_phone(self) -> None:
        """A phone-sized viewport (390x844 CSS pixels)."""
        self.set_size(*PHONE)

    def set_desktop(self) -> None:
        self.set_size(*DESKTOP)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    # -- queries ---------------------------------------------------------------------------
    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    # -- waits (poll with a deadline; never fixed sleeps) ------------------------------------
    def wait(self, fn: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
        """Call ``fn`` until it returns something truthy (exceptions count as "not yet")."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                v = fn()
                if v:
                    return v
                last = v
            except Exception as e:  # noqa: BLE001 - anything means "not yet"
                last = e
            if time.monotonic() >= deadline:
                shot = self.screenshot("timeout")
                pytest.fail(f"browser: {what} not reached within {timeout}s (last: {last!r}; see {shot})")
            time.sleep(0.05)

    def wait_for(self, css: str, timeout: float = 15.0) -> WebElement:
        """The first element matching ``css`` once it exists and is displayed."""

        def visible() -> WebElement | None:
            for el in self.find_all(css):
                if el.is_displayed():
                    return el
            return None

        return self.wait(visible, f"a visible {css!r}", timeout)

    def wait_text(self, css: str, needle: str, timeout: float = 15.0) -> str:
        """Wait until the text of ``css`` contains ``needle``; returns that text."""

        def has() -> str | None:
            t = self.text(css)
            return t if needle in t else None

        return self.wait(has, f"{needle!r} in {css!r}", timeout)

    def wait_count(self, css: str, n: int, timeout: float = 15.0) -> list[WebElement]:
        """Wait until exactly ``n`` elements match ``css``."""
        return self.wait(
            lambda: (els if len(els := self.find_all(css)) == n else None), f"{n} x {css!r}", timeout
        )

    # -- artifacts -------------------------------------------------------------------------
    def screenshot(self, name: str) -> Path:
        """Save a PNG of the viewport under ARTIFACTS as ``<test>-<name>.png``; returns its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def console_errors(self) -> list[str]:
        """JS errors the page logged (SEVERE entries of the browser log)."""
        try:
            logs = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [str(e.get("message")) for e in logs if e.get("level") == "SEVERE"]

    def reset(self) -> None:
        try:
            self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        except WebDriverException:
            pass
        self.driver.get("about:blank")
        self.driver.delete_all_cookies()
        self.set_desktop()


@pytest.fixture(scope="session")
def _chromium() -> Iterator[webdriver.Chrome]:
    try:
        driver = start_chromium()
    except BrowserUnavailable as e:
        pytest.fail(str(e))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_chromium: webdriver.Chrome, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A headless Chromium for this test (shared Chromium process, fresh page state)."""
    b = Browser(_chromium, request.node.name)
    b.reset()
    try:
        yield b
    finally:
        try:
            b.screenshot("end")
        except WebDriverException:
            pass
        b.reset()
