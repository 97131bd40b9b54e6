"""``https2http`` in a real browser (Debian's headless Chromium, tests/support/browser.py): our frps
and frpc as processes, the plugin's generated certificate (accepted through DevTools), and the page's
own ``fetch()`` calls. Chromium must speak HTTP/2 to the plugin (ALPN ``h2``, as to Go's
``http.Server``), and many requests in flight on that one connection, a POSTed body, a large
download, a WebSocket and a streamed response must all arrive intact; with ``enableHTTP2 = false`` it
must fall back to HTTP/1.1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from support.browser import Browser
from support.httpd import WebBackend, pattern_sha256
from support.processes import FrpLauncher
from support.procs import LOCALHOST, free_port, frpc_config, frps_config

pytestmark = pytest.mark.timeout(180)

TOKEN = "browser-https2http"

# Many requests at once on the page's connection, a POST body, a 3 MiB download hashed in the page.
PAGE_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const n = 40;
  const gets = await Promise.all([...Array(n).keys()].map(async i => {
    const r = await fetch(`/item/${i}?q=${i}`, {headers: {'X-Seq': String(i)}});
    return [r.status, await r.json()];
  }));
  const body = 'b'.repeat(300000);
  const post = await (await fetch('/upload', {method: 'POST', body})).json();
  const big = new Uint8Array(await (await fetch('/big?size=3145739')).arrayBuffer());
  const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', big))]
    .map(b => b.toString(16).padStart(2, '0')).join('');
  const stream = await (await fetch('/stream?n=4&delay=0.05')).text();
  const ws = await new Promise((resolve, reject) => {
    const s = new WebSocket(`wss://${location.host}/ws`);
    s.onopen = () => s.send('hello over wss');
    s.onmessage = e => { resolve(e.data); s.close(); };
    s.onerror = () => reject(new Error('websocket failed'));
  });
  const protocols = [...new Set(performance.getEntriesByType('resource')
    .concat(performance.getEntriesByType('navigation')).map(e => e.nextHopProtocol))];
  return {gets, post, bigLen: big.length, digest, stream, ws, protocols};
})().then(done, e => done({error: String(e)}));
"""


class Env:
    def __init__(self, h2: int, h1: int) -> None:
        self.h2, self.h1 = h2, h1


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("https2http-browser")
    backend = WebBackend("plain").start()
    launcher = FrpLauncher(base / "frp")
    bind, h2, h1 = free_port(), free_port(), free_port()
    local = f"{LOCALHOST}:{backend.port}"
    proxies = (
        f'\n[[proxies]]\nname = "web-h2"\ntype = "tcp"\nremotePort = {h2}\n'
        f'[proxies.plugin]\ntype = "https2http"\nlocalAddr = "{local}"\n'
        f'\n[[proxies]]\nname = "web-h1"\ntype = "tcp"\nremotePort = {h1}\n'
        f'[proxies.plugin]\ntype = "https2http"\nlocalAddr = "{local}"\nenableHTTP2 = false\n'
    )
    try:
        frps = launcher.ours_frps(frps_config(bind, token=TOKEN))
        frps.wait_for_log(r"frps started successfully", 15)
        frpc = launcher.ours_frpc(frpc_config(bind, proxies, token=TOKEN))
        frpc.wait_for_log(r"\[web-h2\] start proxy success", 20)
        frpc.wait_for_log(r"\[web-h1\] start proxy success", 20)
        yield Env(h2, h1)
    finally:
        launcher.kill_all()
        backend.stop()


def _run_page(browser: Browser, port: int) -> dict[str, object]:
    browser.driver.execute_cdp_cmd("Security.setIgnoreCertificateErrors", {"ignore": True})
    browser.get(f"https://{LOCALHOST}:{port}/index?from=browser")
    browser.wait(lambda: '"backend": "plain"' in browser.text("body"), "the echo page through https2http")
    got: dict[str, object] = browser.driver.execute_async_script(PAGE_JS)
    assert "error" not in got, got
    return got


def _check(got: dict[str, object], port: int) -> None:
    gets = got["gets"]
    assert isinstance(gets, list) and len(gets) == 40
    for i, (status, info) in enumerate(gets):
        assert status == 200
        assert info["path"] == f"/item/{i}?q={i}"
        headers = {k.lower(): v for k, v in info["headers"]}
        assert headers["x-seq"] == str(i)
        assert headers["host"] == f"{LOCALHOST}:{port}"
        assert headers["x-forwarded-proto"] == "https"
    assert got["post"] == {"size": 300000, "sha256": hashlib.sha256(b"b" * 300000).hexdigest()}
    assert got["bigLen"] == 3145739
    assert got["digest"] == pattern_sha256(3145739)
    assert got["stream"] == "".join(f"chunk-{i}\n" for i in range(4))
    assert got["ws"] == "hello over wss"


def test_chromium_speaks_h2_to_https2http(env: Env, browser: Browser) -> None:
    got = _run_page(browser, env.h2)
    _check(got, env.h2)
    assert got["protocols"] == ["h2"], got["protocols"]


def test_chromium_falls_back_to_http11_without_enable_http2(env: Env, browser: Browser) -> None:
    got = _run_page(browser, env.h1)
    _check(got, env.h1)
    assert got["protocols"] == ["http/1.1"], got["protocols"]
