"""Pure pieces of the HTTP client plugins: Go's parseRange, path cleaning, content types, basic
auth, canonical hosts, hop-by-hop stripping and each plugin's outbound headers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiofrp.client.plugins.http.reverse import (
    Forwarded,
    ProxyOptions,
    ReverseProxy,
    canonical_host,
    split_host_port,
    strip_hop,
    upgrade_type,
)
from aiofrp.client.plugins.http.static import (
    ByteRange,
    StaticFiles,
    _RangeError,
    clean_path,
    content_type,
    parse_range,
)
from aiofrp.config.plugin import StaticFilePluginOptions


def test_parse_range_as_go() -> None:
    assert parse_range("", 10) == []
    assert parse_range("bytes=0-4", 10) == [ByteRange(0, 5)]
    assert parse_range("bytes=5-", 10) == [ByteRange(5, 5)]
    assert parse_range("bytes=-3", 10) == [ByteRange(7, 3)]
    assert parse_range("bytes=-30", 10) == [ByteRange(0, 10)]
    assert parse_range("bytes=8-100", 10) == [ByteRange(8, 2)]
    assert parse_range("bytes= 0-1 , 3-4", 10) == [ByteRange(0, 2), ByteRange(3, 2)]
    assert parse_range("bytes=20-30,0-0", 10) == [ByteRange(0, 1)]  # the non-overlapping one skipped
    for bad in ("items=0-1", "bytes=5-1", "bytes=x-", "bytes=-", "bytes=1", "bytes=--1", "bytes=-x"):
        with pytest.raises(_RangeError, match="^invalid range$"):
            parse_range(bad, 10)
    with pytest.raises(_RangeError, match="failed to overlap") as ei:
        parse_range("bytes=10-", 10)
    assert ei.value.no_overlap
    assert ByteRange(7, 3).content_range(10) == "bytes 7-9/10"


@given(st.text(alphabet="/.a%", max_size=30))
def test_clean_path_never_climbs(p: str) -> None:
    c = clean_path(p)
    assert c.startswith("/") and "/../" not in c + "/" and "//" not in c
    assert clean_path(c) == c


def test_clean_path_examples() -> None:
    assert clean_path("/a/../../b/") == "/b/"
    assert clean_path("/a/./b") == "/a/b"
    assert clean_path("") == "/"
    assert clean_path("/..") == "/"


def test_content_type() -> None:
    assert content_type("a.txt", b"") == "text/plain; charset=utf-8"
    assert content_type("a.html", b"") == "text/html; charset=utf-8"
    assert content_type("a.png", b"") == "image/png"
    assert content_type("noext", b"just words\n") == "text/plain; charset=utf-8"
    assert content_type("noext", b"  <!DOCTYPE html><p>") == "text/html; charset=utf-8"
    assert content_type("noext", b"\x00\x01\x02") == "application/octet-stream"


def test_basic_auth() -> None:
    sf = StaticFiles(StaticFilePluginOptions(local_path="/tmp", http_user="u", http_password="p:w"))

    def h(v: str) -> str:
        return "Basic " + base64.b64encode(v.encode()).decode()

    assert sf._authorized(h("u:p:w"))
    assert sf._authorized("basic " + base64.b64encode(b"u:p:w").decode())
    for bad in (h("u:p"), h("x:p:w"), h("u"), "Bearer x", "Basic !!!", ""):
        assert not sf._authorized(bad)


def test_canonical_host_and_addr() -> None:
    assert canonical_host("Example.COM.:443") == "example.com"
    assert canonical_host("[::1]:8443") == "::1"
    assert canonical_host("::1") == "::1"
    assert split_host_port("127.0.0.1:8080", 80) == ("127.0.0.1", 8080)
    assert split_host_port("[::1]:8443", 443) == ("::1", 8443)
    assert split_host_port("backend", 443) == ("backend", 443)
    with pytest.raises(ValueError):
        split_host_port("a:b", 80)


def test_strip_hop_and_upgrade() -> None:
    h = [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "t=5"), ("TE", "trailers"),
         ("Transfer-Encoding", "chunked"), ("X-Kept", "2"), ("Set-Cookie", "a"), ("Set-Cookie", "b")]
    out = strip_hop(h)
    assert list(out.items()) == [("TE", "trailers"), ("X-Kept", "2"), ("Set-Cookie", "a"), ("Set-Cookie", "b")]
    assert upgrade_type([("Connection", "Upgrade"), ("Upgrade", "websocket")]) == "websocket"
    assert upgrade_type([("Upgrade", "websocket")]) == ""


@pytest.mark.parametrize(("mode", "xff", "xfh", "xfp"), [
    (Forwarded.DROP, [], [], []),
    (Forwarded.KEEP, ["10.0.0.1"], ["orig.example"], []),
    (Forwarded.APPEND, ["10.0.0.1, 192.0.2.7"], ["site.example"], ["https"]),
])
def test_out_headers(mode: Forwarded, xff: list[str], xfh: list[str], xfp: list[str]) -> None:
    proxy = ReverseProxy("p", ProxyOptions("127.0.0.1:80", False, mode, set_headers={"x-from": "frp", "host": "no"}))
    inbound = [("Host", "site.example"), ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Host", "orig.example"),
               ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Expect", "100-continue")]
    out = proxy.out_headers(inbound, "site.example", "192.0.2.7")
    assert out.getall("X-Forwarded-For", []) == xff
    assert out.getall("X-Forwarded-Host", []) == xfh
    assert out.getall("X-Forwarded-Proto", []) == xfp
    assert out["Host"] == "site.example" and out["X-From"] == "frp"
    assert out["Connection"] == "Upgrade" and out["Upgrade"] == "websocket" and "Expect" not in out
    rewritten = ReverseProxy("p", ProxyOptions("127.0.0.1:80", False, mode, host_header_rewrite="in.example"))
    assert rewritten.out_headers(inbound, "site.example", None)["Host"] == "in.example"


def test_misdirected() -> None:
    proxy = ReverseProxy("p", ProxyOptions("127.0.0.1:80", False, Forwarded.APPEND, check_sni=True))
    assert proxy.misdirected("a.example", "b.example")
    assert not proxy.misdirected("A.example", "a.example.:443")
    assert not proxy.misdirected(None, "b.example")


def test_missing_certificate_is_a_plugin_error() -> None:
    """Go: NewHTTPS2HTTPPlugin fails with "gen TLS config error: ..." and the proxy does not start."""
    from aiofrp.client.plugins import PluginError, new_plugin
    from aiofrp.config.plugin import HTTPS2HTTPPluginOptions, HTTPS2HTTPSPluginOptions

    for cls in (HTTPS2HTTPPluginOptions, HTTPS2HTTPSPluginOptions):
        with pytest.raises(PluginError, match=r"^gen TLS config error: cannot load certificate './nope\.crt'"):
            new_plugin("p", cls(local_addr="127.0.0.1:80", crt_path="./nope.crt", key_path="./nope.key"))
