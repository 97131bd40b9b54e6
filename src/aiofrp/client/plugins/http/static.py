"""The ``static_file`` plugin's web server: Go's router (gorilla/mux: path cleaning, a GET-only
``PathPrefix`` route, basic auth), ``http.StripPrefix`` and ``http.FileServer`` with its
directory listing, Range and conditional requests, and frp's gzip wrapper.

Matched against Go frpc 0.65.0 (Go 1.24) side by side (tests/compat/test_go_static_audit.py).
Different on purpose:

* stricter than Go: a symlink that resolves outside ``localPath`` is not followed (404), where
  Go's ``http.Dir`` follows it (tests/e2e/test_plugin_static_file.py holds this);
* where Go is broken under ``Accept-Encoding: gzip``: Go's file server sends its error pages
  (404, 403, 416, 500) gzipped but without ``Content-Encoding``, and Range answers with the plain
  Content-Length but a gzip body; ours sends those error pages plain and the ranges gzipped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import functools
import hmac
import logging
import os
import re
import secrets
import stat
import struct
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from ....config.plugin import StaticFilePluginOptions
from ....proto.http import RESPONSE_BUFFER
from ....proto.sniff import detect_content_type
from .responses import BufferedStreamResponse, Response

log = logging.getLogger("aiofrp.client.plugins.http")

CHUNK = 256 * 1024
AUTH_FAIL_DELAY = 0.2  # Go: SetAuthFailDelay(200 * time.Millisecond)
SNIFF_LEN = 512
INDEX = "/index.html"
GO_PATH_SAFE = "$&+,/:;=@"  # what Go's URL path escaping leaves alone (besides -_.~ and alphanumerics)
_TRIM = " \t\r\n"  # textproto.TrimString
_INT64 = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MAX = (1 << 63) - 1


class _RangeError(Exception):
    def __init__(self, text: str, no_overlap: bool = False) -> None:
        super().__init__(text)
        self.no_overlap = no_overlap


class _FileShrank(Exception):
    """The file got shorter while being sent: the promised length cannot be kept."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


_Parts = list[tuple[bytes, ByteRange]]  # (multipart head, file range) pairs


def _parse_int64(s: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 10, 64)``: an optional sign (``+`` too), ASCII digits, int64."""
    if not _INT64.match(s):
        return None
    n = int(s)
    return n if -_INT64_MAX - 1 <= n <= _INT64_MAX else None


def parse_range(header: str, size: int) -> list[ByteRange]:
    """Go's ``parseRange``: the ranges of a ``Range`` header within ``size`` bytes."""
    if not header:
        return []
    prefix = "bytes="
    if not header.startswith(prefix):
        raise _RangeError("invalid range")
    ranges: list[ByteRange] = []
    no_overlap = False
    for part in header[len(prefix):].split(","):
        part = part.strip(_TRIM)
        if not part:
            continue
        start_s, sep, end_s = part.partition("-")
        if not sep:
            raise _RangeError("invalid range")
        start_s, end_s = start_s.strip(_TRIM), end_s.strip(_TRIM)
        if not start_s:  # a suffix length: Go refuses a leading '-' but takes a '+'
            n = _parse_int64(end_s) if end_s[:1] not in ("", "-") else None
            if n is None or n < 0:
                raise _RangeError("invalid range")
            n = min(n, size)
            ranges.append(ByteRange(size - n, n))
            continue
        start = _parse_int64(start_s)
        if start is None or start < 0:
            raise _RangeError("invalid range")
        if start >= size:  # the end is not even looked at
            no_overlap = True
            continue
        if not end_s:
            ranges.append(ByteRange(start, size - start))
            continue
        end = _parse_int64(end_s)
        if end is None or start > end:
            raise _RangeError("invalid range")
        end = min(end, size - 1)
        ranges.append(ByteRange(start, end - start + 1))
    if no_overlap and not ranges:
        raise _RangeError("invalid range: failed to overlap", no_overlap=True)
    return ranges


def clean_path(p: str) -> str:
    """Go's ``path.Clean`` on a rooted path, keeping a trailing slash (gorilla/mux ``cleanPath``)."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    out: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    np = "/" + "/".join(out)
    if p.endswith("/") and np != "/":
        np += "/"
    return np


def origin_target(raw_path: str) -> str:
    """The request target sent upstream: an absolute-form one (``http://host/x?y``) as its path and
    query (Go sends ``URL.RequestURI()``: ``/x?y``, ``/`` for none)."""
    if raw_path.startswith("/") or "://" not in raw_path:
        return raw_path
    rest = raw_path.partition("://")[2]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    target = rest[cut:]
    return target if target.startswith("/") else "/" + target


def _split_absolute(raw_target: str) -> tuple[str, str]:
    """An absolute-form target as (``scheme://authority``, the rest); ``("", target)`` otherwise."""
    if raw_target.startswith("/") or "://" not in raw_target:
        return "", raw_target
    scheme, _, rest = raw_target.partition("://")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return f"{scheme.lower()}://{rest[:cut]}", rest[cut:]


def go_escape_path(path: str) -> str:
    """Go's ``url.PathEscape``-like escaping of a URL path (``url.URL.EscapedPath`` without RawPath);
    bytes that were not UTF-8 (surrogate escapes) come back as their ``%XX``."""
    return urllib.parse.quote(path, safe=GO_PATH_SAFE, errors="surrogateescape")


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


# -- Go's http.ParseTime --------------------------------------------------------------------------

_CLOCK = r"(?P<H>\d\d?):(?P<M>\d\d):(?P<S>\d\d)(?P<frac>[.,]\d+)?"
# Go's time.Parse: a space in the layout takes one or more spaces; day and month names in any case
_IMF_FIXDATE = re.compile(r"(?P<wd>[A-Za-z]{3}), +(?P<d>\d\d) +(?P<mon>[A-Za-z]{3}) +(?P<y>\d{4}) +"
                          + _CLOCK + r" +GMT\Z")
_RFC850 = re.compile(r"(?P<wd>[A-Za-z]+), +(?P<d>\d\d)-(?P<mon>[A-Za-z]{3})-(?P<yy>\d\d) +" + _CLOCK
                     + r" +(?P<zone>\S+)\Z")
_ANSIC = re.compile(r"(?P<wd>[A-Za-z]{3}) +(?P<mon>[A-Za-z]{3}) +(?P<d>\d\d?) +" + _CLOCK + r" +(?P<y>\d{4})\Z")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_GMT_OFFSET = re.compile(r"(?:GMT)?[+-](\d+)\Z")


def _zone_ok(zone: str) -> bool:
    """Whether Go's time.Parse takes ``zone`` for ``MST`` (RFC 850 dates). Go places a zone it
    does not know at offset 0 (even ``GMT+5``), so the instant never depends on it."""
    if zone.startswith("UTC"):
        return zone == "UTC"
    if zone == "GMT" or zone in ("ChST", "MeST", "WITA"):
        return True
    m = _GMT_OFFSET.match(zone)
    if m is not None and (zone.startswith("GMT") or zone[0] in "+-"):
        return int(m[1]) <= 23
    if not (zone.isascii() and zone.isalpha() and zone.isupper()) or zone.startswith("GMT"):
        return False
    return len(zone) == 3 or (len(zone) in (4, 5) and zone[-1] == "T")


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year, 0 included)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _epoch(m: re.Match[str], year: int) -> float | None:
    """The instant of a matched date, None when Go's range checks refuse it."""
    month = _MONTHS.index(m["mon"].lower()) + 1 if m["mon"].lower() in _MONTHS else 0
    day, hour, minute, sec = int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"])
    if not month or hour >= 24 or minute >= 60 or sec >= 60 or not 1 <= day <= _days_in_month(year, month):
        return None
    frac = float("0." + m["frac"][1:10]) if m["frac"] else 0.0
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec + frac


def go_parse_time(text: str) -> float | None:
    """Go's ``http.ParseTime``: IMF-fixdate, RFC 850 or ANSI C ``asctime`` (nothing else: no
    numeric zone, no ``UTC`` for ``GMT``), as seconds since the epoch; None if none fits."""
    m = _IMF_FIXDATE.match(text)
    if m is not None and m["wd"].lower() in (d[:3] for d in _WEEKDAYS):
        return _epoch(m, int(m["y"]))
    m = _RFC850.match(text)
    if m is not None and m["wd"].lower() in _WEEKDAYS and _zone_ok(m["zone"]):
        yy = int(m["yy"])
        return _epoch(m, yy + (1900 if yy >= 69 else 2000))
    m = _ANSIC.match(text)
    if m is not None and m["wd"].lower() in (d[:3] for d in _WEEKDAYS):
        return _epoch(m, int(m["y"]))
    return None


# -- Go's mime.TypeByExtension ---------------------------------------------------------------------

# Go's built-in table (mime/type.go); the system's database only adds extensions it lacks
_GO_BUILTIN_TYPES = {
    ".avif": "image/avif", ".css": "text/css; charset=utf-8", ".gif": "image/gif",
    ".htm": "text/html; charset=utf-8", ".html": "text/html; charset=utf-8", ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8", ".json": "application/json",
    ".mjs": "text/javascript; charset=utf-8", ".pdf": "application/pdf", ".png": "image/png",
    ".svg": "image/svg+xml", ".wasm": "application/wasm", ".webp": "image/webp", ".xml": "text/xml; charset=utf-8",
}
_MIME_GLOBS = ("/usr/local/share/mime/globs2", "/usr/share/mime/globs2")
_MIME_TYPES_FILES = ("/etc/mime.types", "/etc/apache2/mime.types", "/etc/apache/mime.types",
                     "/etc/httpd/conf/mime.types")
_MEDIA_TYPE = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+(?:/[!#$%&'*+\-.^_`|~0-9a-z]+)?\Z")


class _MimeTable:
    """Go's extension table: exact and lower-cased lookups, filled the way Go's Unix loader does."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = dict(_GO_BUILTIN_TYPES)
        self.lower: dict[str, str] = dict(_GO_BUILTIN_TYPES)

    def set(self, ext: str, mtype: str) -> None:
        """Go's ``setExtensionType``: a text type gets ``; charset=utf-8`` (and is lower-cased)."""
        if not _MEDIA_TYPE.match(mtype.strip().lower()):
            return
        if mtype.startswith("text/"):
            mtype = mtype.lower() + "; charset=utf-8"
        self.exact[ext] = mtype
        self.lower[ext.lower()] = mtype

    def load_globs(self, path: str) -> bool:
        """The shared-mime-info database: ``weight:type:*.ext`` lines, heaviest first; the first
        type seen for an extension wins (a built-in one included); real globs are skipped."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        for line in lines:
            fields = line.split(":")
            if len(fields) < 3 or not fields[0] or len(fields[2]) < 3:
                continue
            if fields[0][0] == "#" or not fields[2].startswith("*."):
                continue
            ext = fields[2][1:]
            if any(c in ext for c in "?*[") or ext in self.exact:
                continue
            self.set(ext, fields[1])
        return True

    def load_types(self, path: str) -> None:
        """An Apache-style ``mime.types`` file: later lines override earlier ones and built-ins."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for line in lines:
            fields = line.split()
            if len(fields) <= 1 or fields[0][0] == "#":
                continue
            for ext in fields[1:]:
                if ext[0] == "#":
                    break
                self.set("." + ext, fields[0])


@functools.cache
def _mime_table() -> _MimeTable:
    """Go's ``initMime`` on Unix: built-ins, then the first globs2 file found, else every
    ``mime.types`` file. Read once, on the first file served."""
    table = _MimeTable()
    if not any(table.load_globs(p) for p in _MIME_GLOBS):
        for p in _MIME_TYPES_FILES:
            table.load_types(p)
    return table


def type_by_extension(ext: str) -> str:
    """Go's ``mime.TypeByExtension``: the exact extension, then its lower-case form."""
    table = _mime_table()
    return table.exact.get(ext) or table.lower.get(ext.lower(), "")


def _go_ext(name: str) -> str:
    """Go's ``filepath.Ext``: from the last dot of the base name (``""`` for none)."""
    base = name.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""


def content_type(name: str, head: bytes) -> str:
    """Go: ``mime.TypeByExtension(filepath.Ext(name))``, else ``http.DetectContentType`` of the
    first 512 bytes."""
    return type_by_extension(_go_ext(name)) or detect_content_type(head)


# -- Go's conditional requests (checkPreconditions); our files carry no ETag -----------------------


def _scan_etag(s: str) -> tuple[str, str]:
    """Go's ``scanETag``: (``"tag"`` or ``W/"tag"``, the rest), or ``("", "")``."""
    s = s.strip(_TRIM)
    start = 2 if s.startswith("W/") else 0
    if len(s) - start < 2 or s[start] != '"':
        return "", ""
    for i in range(start + 1, len(s)):
        c = ord(s[i])
        if c == 0x22:
            return s[:i + 1], s[i + 1:]
        if not (c == 0x21 or 0x23 <= c <= 0x7E or c >= 0x80):
            return "", ""
    return "", ""


def _star_listed(value: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` list reaches a ``*`` before a malformed tag
    (no listed tag can match: we send no ETag)."""
    while True:
        value = value.strip(_TRIM)
        if not value:
            return False
        if value[0] == ",":
            value = value[1:]
            continue
        if value[0] == "*":
            return True
        tag, value = _scan_etag(value)
        if not tag:
            return False


def _not_after(header: str, mtime: int | None) -> bool | None:
    """``mtime`` (whole seconds) is at or before the header's date: Go's If-Unmodified-Since
    and If-Modified-Since test; None when absent, unparsable or the file time is zero."""
    if not header or mtime is None:
        return None
    t = go_parse_time(header)
    return None if t is None else mtime <= t


@dataclass(frozen=True)
class _Stamp:
    """A file's modification time as Go compares it."""

    seconds: int  # truncated to the second (Last-Modified has no more)
    zero: bool  # the Unix epoch: Go's isZeroTime, no Last-Modified, no date preconditions

    @classmethod
    def of(cls, st: os.stat_result) -> _Stamp:
        return cls(st.st_mtime_ns // 1_000_000_000, st.st_mtime_ns == 0)

    @property
    def dated(self) -> int | None:
        return None if self.zero else self.seconds

    def headers(self) -> dict[str, str]:
        return {} if self.zero else {"Last-Modified": http_date(self.seconds)}


def _preconditions(headers: Mapping[str, str], stamp: _Stamp) -> tuple[int | None, str]:
    """Go's ``checkPreconditions`` for a GET: (304 or 412 to answer, else None; the ``Range``
    header still in force after ``If-Range``)."""
    im = headers.get("If-Match", "")
    ok = _star_listed(im) if im else _not_after(headers.get("If-Unmodified-Since", ""), stamp.dated)
    if ok is False:
        return 412, ""
    inm = headers.get("If-None-Match", "")
    if inm:
        if _star_listed(inm):
            return 304, ""
    elif _not_after(headers.get("If-Modified-Since", ""), stamp.dated):
        return 304, ""
    rng = headers.get("Range", "")
    if_range = headers.get("If-Range", "")
    if rng and if_range:
        t = None if _scan_etag(if_range)[0] else go_parse_time(if_range)  # a tag never matches ours
        if t is None or int(t // 1) != stamp.seconds:
            rng = ""
    return None, rng


# -- answers -------------------------------------------------------------------------------------

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # Go's gzip.Writer: no mtime, OS "unknown"
_GZIP_EMPTY = _GZIP_HEADER + b"\x01\x00\x00\xff\xff" + bytes(8)  # what it writes when given nothing


def _gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """frp's gzip wrapper (``compress/gzip`` at the default level) over a body; an empty body is
    Go's exact 23 bytes."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    crc = size = 0
    for chunk in chunks:
        if not chunk:
            continue
        out = z.compress(chunk)
        if not size:
            out = _GZIP_HEADER + out
        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        if out:
            yield out
    if not size:
        yield _GZIP_EMPTY
        return
    yield z.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)


def _take(chunks: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """Up to a little more than ``limit`` bytes from ``chunks``; True when they ended within it."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            return bytes(buf), False
    return bytes(buf), True


async def _send(request: web.BaseRequest, status: int, headers: dict[str, str], body: Iterable[bytes], *,
                length: int | None = None, gzip: bool = False) -> web.StreamResponse:
    """An answer framed as Go's ``http.Server`` frames a handler's: the handler's Content-Length
    if it set one (a file), else one when the whole body fit the 2 KiB write buffer, else chunked
    (HTTP/1.0: until close). Under frp's gzip wrapper the compressed bytes are what count."""
    chunks = iter(body)
    if gzip:
        headers["Content-Encoding"] = "gzip"
        chunks, length = _gzipped(chunks), None
    resp = BufferedStreamResponse(status=status, headers=headers)  # the head goes with the first bytes
    try:
        first = b""
        if length is None:
            first, ended = _take(chunks, RESPONSE_BUFFER)
            length = len(first) if ended else None
        if length is not None:
            resp.content_length = length
        await resp.prepare(request)
        if first:
            await resp.write(first)
        for chunk in chunks:
            await resp.write(chunk)
    except _FileShrank as exc:
        log.warning("static_file: %s shrank while being sent", exc)
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """Go's ``http.Error``: a text/plain body with a newline."""
    h = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    if headers:
        h.update(headers)
    return Response(status=status, body=(text + "\n").encode(), headers=h)


_NOT_FOUND = "404 page not found"
_FORBIDDEN = "403 Forbidden"
_INTERNAL = "500 Internal Server Error"


def _listing(path: str) -> bytes:
    """Go's ``dirList``: entries sorted by name bytes, a ``/`` after directories (not after a
    symlink to one: Go's ``DirEntry.IsDir``), hrefs path-escaped, names HTML-escaped."""
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    out = ['<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n']
    for e in entries:
        name = e.name
        try:
            if e.is_dir(follow_symlinks=False):
                name += "/"
        except OSError:
            pass
        href = go_escape_path(name)  # Go: url.URL{Path: name}.String()
        if ":" in name.split("/")[0]:
            href = "./" + href
        out.append(f'<a href="{href}">{_html_escape(name)}</a>\n')
    out.append("</pre>\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def _html_escape(s: str) -> str:
    """Go's ``htmlReplacer`` (numeric references for quotes, unlike :func:`html.escape`)."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def _file_chunks(f: BinaryIO, parts: _Parts, trailer: bytes) -> Iterator[bytes]:
    """The bytes of ``parts`` (a multipart head, then a range of the file), then ``trailer``.
    Local files are read on the loop, 256 KiB at a time (page cache; a thread hop per chunk
    would cost more than the read)."""
    for part_head, r in parts:
        if part_head:
            yield part_head
        f.seek(r.start)
        left = r.length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise _FileShrank(getattr(f, "name", "?"))
            left -= len(chunk)
            yield chunk
    if trailer:
        yield trailer


class StaticFiles:
    """One ``static_file`` plugin's handler."""

    def __init__(self, cfg: StaticFilePluginOptions) -> None:
        self.root = os.path.abspath(cfg.local_path or ".")
        self.prefix = f"/{cfg.strip_prefix}/" if cfg.strip_prefix else "/"
        self.user = cfg.http_user.encode()
        self.password = cfg.http_password.encode()
        self.auth = bool(cfg.http_user or cfg.http_password)

    # -- router ----------------------------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "OPTIONS" and request.raw_path == "*":
            return Response(status=200)  # Go's server answers "OPTIONS *" itself
        origin, raw = _split_absolute(request.raw_path)
        raw_path, has_query, query = raw.partition("?")
        path = urllib.parse.unquote(raw_path, errors="surrogateescape")
        cleaned = clean_path(path)
        if cleaned != path:  # gorilla/mux: redirect to the clean path (url.URL.String())
            loc = origin + go_escape_path(cleaned) + has_query + query
            return Response(status=301, headers={"Location": loc})
        if not path.startswith(self.prefix):
            return _text(404, _NOT_FOUND)
        if request.method != "GET":
            return Response(status=405)
        if self.auth and not self._authorized(request.headers.get("Authorization", "")):
            await asyncio.sleep(AUTH_FAIL_DELAY)
            return _text(401, "Unauthorized", {"Www-Authenticate": 'Basic realm="Restricted"'})
        gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        if raw_path != go_escape_path(path) and not raw_path.startswith(self.prefix):
            # http.StripPrefix also strips the escaped form Go keeps (URL.RawPath) when it is
            # not the plain escaping of the path ("/pre%2Fx", "/pr%65/x"): 404 when it lacks it
            return await _send(request, 404, _error_headers(), [(_NOT_FOUND + "\n").encode()], gzip=gzip)
        return await self._file_server(request, "/" + path[len(self.prefix):], query, gzip)

    def _authorized(self, header: str) -> bool:
        """Go's ``r.BasicAuth()`` (``Basic `` in any case, then strict standard base64 of
        ``user:password``) and ``ConstantTimeEqString`` on both fields."""
        ok = header[:6].lower() == "basic "
        decoded = _strict_b64(header[6:]) if ok else None
        user, sep, password = (decoded or b"").partition(b":")
        ok = decoded is not None and bool(sep)
        u = hmac.compare_digest(user, self.user)
        p = hmac.compare_digest(password, self.password)
        return ok and u and p

    # -- http.FileServer -------------------------------------------------------------------

    def _full(self, name: str) -> str:
        return os.path.join(self.root, name.strip("/"))  # Go's http.Dir opens path.Clean(name)

    async def _file_server(self, request: web.BaseRequest, upath: str, query: str,
                           gzip: bool) -> web.StreamResponse:
        """Go's ``serveFile`` for the URL path ``upath`` (rooted, clean but for a trailing slash)."""
        if upath.endswith(INDEX):  # Go redirects .../index.html to .../
            return await _redirect(request, "./", query, gzip)
        name = upath.rstrip("/") or "/"
        opened = self._open(name)
        if isinstance(opened, web.StreamResponse):
            return opened
        fd, st = opened
        try:
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir and not upath.endswith("/"):
                return await _redirect(request, os.path.basename(upath) + "/", query, gzip)
            if not is_dir and upath.endswith("/"):
                base = os.path.basename(upath.rstrip("/"))
                return await _redirect(request, "../" + base, query, gzip)
            if is_dir:
                index = self._open(name.rstrip("/") + INDEX)
                if isinstance(index, tuple):  # Go takes index.html whatever it is, a directory too
                    os.close(fd)
                    fd, st = index
                    name = name.rstrip("/") + INDEX
                    is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir:
                return await self._serve_dir(request, self._full(name), _Stamp.of(st), gzip)
            f = os.fdopen(fd, "rb")
            fd = -1
            with f:
                return await _serve_content(request, f, os.path.basename(self._full(name)), st, gzip)
        finally:
            if fd >= 0:
                os.close(fd)

    def _open(self, name: str) -> tuple[int, os.stat_result] | web.Response:
        """Go's ``http.Dir.Open`` then ``Stat``: the open file (a directory too) or the error page
        Go's ``toHTTPError`` picks. Non-blocking, so that a FIFO cannot stall the loop."""
        full = self._full(name)
        if "\x00" in name or _not_utf8(name):  # filepath.Localize refuses it
            return _text(500, _INTERNAL)
        if not self._inside(full):
            return _text(404, _NOT_FOUND)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            return _text(*_open_error(exc, full))
        try:
            return fd, os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            return _text(*_open_error(exc, full))

    def _inside(self, full: str) -> bool:
        """Whether ``full``, symlinks resolved, stays within ``localPath`` (stricter than Go)."""
        real = os.path.realpath(full)
        root = os.path.realpath(self.root)
        return real == root or real.startswith(root.rstrip("/") + "/")

    async def _serve_dir(self, request: web.BaseRequest, path: str, stamp: _Stamp,
                         gzip: bool) -> web.StreamResponse:
        """Go: only If-Modified-Since is looked at, then the listing."""
        if _not_after(request.headers.get("If-Modified-Since", ""), stamp.dated):
            return Response(status=304)
        try:
            body = _listing(path)
        except OSError:
            return _text(500, "Error reading directory")
        headers = {**stamp.headers(), "Content-Type": "text/html; charset=utf-8"}
        return await _send(request, 200, headers, [body], gzip=gzip)


def _not_utf8(name: str) -> bool:
    """A path with bytes that are not UTF-8 (surrogate escapes): Go's ``fs.ValidPath`` refuses it."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _open_error(exc: OSError, full: str) -> tuple[int, str]:
    """Go's ``mapOpenError`` + ``toHTTPError``: a missing file 404, a refused one 403; any other
    error 404 when some leading component is a file (ENOTDIR), else 500."""
    if isinstance(exc, FileNotFoundError):
        return 404, _NOT_FOUND
    if isinstance(exc, PermissionError):
        return 403, _FORBIDDEN
    parts = full.split("/")
    for i, part in enumerate(parts):
        if not part:
            continue
        try:
            st = os.stat("/".join(parts[:i + 1]))
        except OSError:
            return 500, _INTERNAL
        if not stat.S_ISDIR(st.st_mode):
            return 404, _NOT_FOUND
    return 500, _INTERNAL


_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


def _strict_b64(value: str) -> bytes | None:
    """Go's ``base64.StdEncoding.DecodeString``: padded, nothing but the alphabet (CR/LF skipped)."""
    value = value.replace("\r", "").replace("\n", "")
    if not _B64.match(value):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _error_headers() -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


async def _redirect(request: web.BaseRequest, location: str, query: str, gzip: bool) -> web.StreamResponse:
    """Go's ``localRedirect``: 301 with a relative Location (and, under gzip, an empty gzip body)."""
    if query:
        location += "?" + query
    return await _send(request, 301, {"Location": location}, [], gzip=gzip)


def _ranges_answer(ranges: list[ByteRange], size: int, ctype: str) -> tuple[dict[str, str], _Parts, bytes, int]:
    """Go's range answer: (headers, parts, trailer, length); one range as is, several as
    ``multipart/byteranges`` (part heads Content-Range then Content-Type, a random boundary)."""
    if len(ranges) == 1:
        return {"Content-Range": ranges[0].content_range(size)}, [(b"", ranges[0])], b"", ranges[0].length
    boundary = secrets.token_hex(30)
    parts: _Parts = []
    length = 0
    for i, r in enumerate(ranges):
        sep = "\r\n" if i else ""
        head = (f"{sep}--{boundary}\r\nContent-Range: {r.content_range(size)}\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode()
        parts.append((head, r))
        length += len(head) + r.length
    trailer = f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/byteranges; boundary={boundary}"}
    return headers, parts, trailer, length + len(trailer)


async def _serve_content(request: web.BaseRequest, f: BinaryIO, name: str, st: os.stat_result,
                         gzip: bool) -> web.StreamResponse:
    """Go's ``serveContent``: Last-Modified, preconditions, Content-Type, Range, then the bytes."""
    size = st.st_size
    stamp = _Stamp.of(st)
    status, range_header = _preconditions(request.headers, stamp)
    if status == 304:
        return Response(status=304, headers=stamp.headers())
    if status == 412:
        return await _send(request, 412, stamp.headers(), [], gzip=gzip)
    head = f.read(SNIFF_LEN) if not type_by_extension(_go_ext(name)) else b""
    ctype = content_type(name, head)
    try:
        ranges = parse_range(range_header, size)
    except _RangeError as exc:
        if not (exc.no_overlap and size == 0):  # Go: an empty file ignores a Range it cannot meet
            extra = {"Content-Range": f"bytes */{size}"} if exc.no_overlap else None
            return _text(416, str(exc), extra)
        ranges = []
    if sum(r.length for r in ranges) > size:
        ranges = []
    headers = {**stamp.headers(), "Accept-Ranges": "bytes", "Content-Type": ctype}
    if not ranges:
        parts, trailer, length, status = [(b"", ByteRange(0, size))], b"", size, 200
    else:
        extra, parts, trailer, length = _ranges_answer(ranges, size, ctype)
        headers.update(extra)
        status = 206
    return await _send(request, status, headers, _file_chunks(f, parts, trailer), length=length, gzip=gzip)
