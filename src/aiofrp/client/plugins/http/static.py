"""The ``static_file`` plugin's web server: Go's router (gorilla/mux: path cleaning, a GET-only
``PathPrefix`` route, basic auth), ``http.StripPrefix`` and ``http.FileServer`` with its
directory listing, Range and conditional requests, and frp's gzip wrapper.

Stricter than Go on one point: a symlink that resolves outside ``localPath`` is not followed
(404), where Go's ``http.Dir`` follows it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import hmac
import html
import logging
import mimetypes
import os
import secrets
import stat
import urllib.parse
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from ....config.plugin import StaticFilePluginOptions
from ....proto.sniff import detect_content_type
from .responses import BufferedStreamResponse, Response

log = logging.getLogger("aiofrp.client.plugins.http")

CHUNK = 256 * 1024
AUTH_FAIL_DELAY = 0.2  # Go: SetAuthFailDelay(200 * time.Millisecond)
SNIFF_LEN = 512
INDEX = "/index.html"
GO_PATH_SAFE = "$&+,/:;=@"  # what Go's URL path escaping leaves alone (besides -_.~ and alphanumerics)


class _RangeError(Exception):
    def __init__(self, text: str, no_overlap: bool = False) -> None:
        super().__init__(text)
        self.no_overlap = no_overlap


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


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
        part = part.strip(" \t")
        if not part:
            continue
        start_s, sep, end_s = part.partition("-")
        if not sep:
            raise _RangeError("invalid range")
        start_s, end_s = start_s.strip(" \t"), end_s.strip(" \t")
        if not start_s:
            if not end_s or not end_s.isdigit():
                raise _RangeError("invalid range")
            n = min(int(end_s), size)
            ranges.append(ByteRange(size - n, n))
            continue
        if not start_s.isdigit():
            raise _RangeError("invalid range")
        start = int(start_s)
        if start >= size:
            no_overlap = True
            continue
        if not end_s:
            ranges.append(ByteRange(start, size - start))
            continue
        if not end_s.isdigit() or start > int(end_s):
            raise _RangeError("invalid range")
        end = min(int(end_s), size - 1)
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


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value: str) -> float | None:
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt.timestamp()


def content_type(name: str, head: bytes) -> str:
    """Go: ``mime.TypeByExtension`` (text types get ``charset=utf-8``), else ``http.DetectContentType``
    of the first 512 bytes."""
    ctype, _ = mimetypes.guess_type(name, strict=False)
    if ctype:
        if ctype.startswith("text/") and "charset" not in ctype:
            ctype += "; charset=utf-8"
        return ctype
    return detect_content_type(head)


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """Go's ``http.Error``: a text/plain body with a newline."""
    h = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    if headers:
        h.update(headers)
    return Response(status=status, body=(text + "\n").encode(), headers=h)


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
        raw = origin_target(request.raw_path)  # Go routes an absolute-form target by its path
        raw_path, _, query = raw.partition("?")
        path = urllib.parse.unquote(raw_path, errors="surrogateescape")
        cleaned = clean_path(path)
        if cleaned != path:  # gorilla/mux: redirect to the clean path
            loc = urllib.parse.quote(cleaned, safe=GO_PATH_SAFE) + (f"?{query}" if query else "")
            return Response(status=301, headers={"Location": loc})
        if not path.startswith(self.prefix):
            return _text(404, "404 page not found")
        if request.method != "GET":
            return Response(status=405)
        if self.auth and not self._authorized(request.headers.get("Authorization", "")):
            await asyncio.sleep(AUTH_FAIL_DELAY)
            return _text(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="Restricted"'})
        rel = path[len(self.prefix):]
        return await self._file_server(request, rel, query)

    def _authorized(self, header: str) -> bool:
        """Go's ``r.BasicAuth()`` and ``ConstantTimeEqString`` on both fields."""
        scheme, _, value = header.partition(" ")
        ok = scheme.lower() == "basic"
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded, ok = b"", False
        user, sep, password = decoded.partition(b":")
        ok = ok and bool(sep)
        u = hmac.compare_digest(user, self.user)
        p = hmac.compare_digest(password, self.password)
        return ok and u and p

    # -- http.FileServer -------------------------------------------------------------------

    def _resolve(self, name: str) -> str | None:
        """``localPath`` + ``name`` (already clean and rooted); None when it would leave the root
        (NUL bytes, or a symlink pointing outside)."""
        if "\x00" in name:
            return None
        full = os.path.join(self.root, name.strip("/"))  # Go's http.Dir opens path.Clean(name)
        real = os.path.realpath(full)
        root = os.path.realpath(self.root)
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            return None
        return full

    async def _file_server(self, request: web.BaseRequest, url: str, query: str) -> web.StreamResponse:
        name = clean_path("/" + url)
        if "\x00" in name:  # Go: os.Open fails with EINVAL, not "does not exist"
            return _text(500, "500 Internal Server Error")
        if url.endswith(INDEX) or url == INDEX[1:]:  # Go redirects .../index.html to .../
            return _redirect("./", query)
        full = self._resolve(name)
        if full is None:
            return _text(404, "404 page not found")
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return _text(404, "404 page not found")
        except NotADirectoryError:
            return _text(404, "404 page not found")
        except PermissionError:
            return _text(403, "403 Forbidden")
        except OSError:
            return _text(500, "500 Internal Server Error")
        is_dir = stat.S_ISDIR(st.st_mode)
        slash = url == "" or url.endswith("/")
        if is_dir and not slash:
            return _redirect(os.path.basename(url.rstrip("/")) + "/", query)
        if not is_dir and slash and url:
            return _redirect("../" + os.path.basename(url.rstrip("/")), query)
        if is_dir:
            index = self._resolve(name.rstrip("/") + INDEX)
            if index is not None and os.path.isfile(index):
                full = index
                st = os.stat(full)
                is_dir = False
        gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        if is_dir:
            if _not_modified(request, st.st_mtime):
                return Response(status=304)
            try:
                body = self._listing(full)
            except PermissionError:
                return _text(403, "403 Forbidden")
            except OSError:
                return _text(500, "Error reading directory")
            resp = Response(status=200, body=body, headers={
                "Content-Type": "text/html; charset=utf-8", "Last-Modified": http_date(st.st_mtime)})
            if gzip:
                resp.enable_compression(web.ContentCoding.gzip)
            return resp
        try:
            # Local files are opened and read on the loop, 256 KiB at a time (page cache; a
            # thread hop per chunk would cost more than the read), closed in _serve_content
            f = open(full, "rb")  # noqa: SIM115, ASYNC230
        except PermissionError:
            return _text(403, "403 Forbidden")
        except OSError:
            return _text(404, "404 page not found")
        return await _serve_content(request, f, full, st, gzip)

    def _listing(self, path: str) -> bytes:
        """Go's ``dirList``."""
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        out = ['<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n']
        for e in entries:
            name = e.name
            try:
                if e.is_dir():
                    name += "/"
            except OSError:
                pass
            href = urllib.parse.quote(name, safe=GO_PATH_SAFE)  # Go: url.URL{Path: name}.String()
            if ":" in name.split("/")[0]:
                href = "./" + href
            out.append(f'<a href="{href}">{html.escape(name, quote=True)}</a>\n')
        out.append("</pre>\n")
        return "".join(out).encode("utf-8", "surrogateescape")


def _redirect(location: str, query: str) -> web.Response:
    """Go's ``localRedirect``: 301 with a relative Location."""
    if query:
        location += "?" + query
    return Response(status=301, headers={"Location": location})


def _not_modified(request: web.BaseRequest, mtime: float) -> bool:
    """Go's ``checkIfModifiedSince`` for GET/HEAD: True when the client's copy is current."""
    ims = request.headers.get("If-Modified-Since", "")
    if not ims or request.method not in ("GET", "HEAD") or mtime <= 0:
        return False
    t = parse_http_date(ims)
    return t is not None and int(mtime) <= t


async def _serve_content(request: web.BaseRequest, f: BinaryIO, name: str, st: os.stat_result,
                         gzip: bool) -> web.StreamResponse:
    """Go's ``serveContent``: preconditions, Range, then the bytes, streamed in chunks."""
    with f:
        size = st.st_size
        mtime = st.st_mtime
        ius = request.headers.get("If-Unmodified-Since", "")
        last_modified = {"Last-Modified": http_date(mtime)}  # set before the preconditions, as Go
        if ius and "If-Match" not in request.headers:
            t = parse_http_date(ius)
            if t is not None and int(mtime) > t:
                return Response(status=412, headers=last_modified)
        if _not_modified(request, mtime):
            return Response(status=304, headers=last_modified)
        head = f.read(SNIFF_LEN)
        f.seek(0)
        ctype = content_type(name, head)
        range_header = request.headers.get("Range", "")
        if_range = request.headers.get("If-Range", "")
        if range_header and if_range:
            t = parse_http_date(if_range)
            if t is None or int(mtime) != t:
                range_header = ""
        try:
            ranges = parse_range(range_header, size)
        except _RangeError as exc:
            extra = {"Content-Range": f"bytes */{size}"} if exc.no_overlap else None
            return _text(416, str(exc), extra)
        if sum(r.length for r in ranges) > size:
            ranges = []
        headers = {"Last-Modified": http_date(mtime), "Accept-Ranges": "bytes"}
        status = 200
        parts: list[tuple[bytes, ByteRange]] = []
        trailer = b""
        if len(ranges) == 1:
            status = 206
            headers["Content-Range"] = ranges[0].content_range(size)
            parts = [(b"", ranges[0])]
            length = ranges[0].length
        elif len(ranges) > 1:
            status = 206
            boundary = secrets.token_hex(30)
            headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
            length = 0
            for i, r in enumerate(ranges):
                sep = "\r\n" if i else ""
                part_head = (f"{sep}--{boundary}\r\nContent-Range: {r.content_range(size)}\r\n"
                             f"Content-Type: {ctype}\r\n\r\n").encode()
                parts.append((part_head, r))
                length += len(part_head) + r.length
            trailer = f"\r\n--{boundary}--\r\n".encode()
            length += len(trailer)
        else:
            parts = [(b"", ByteRange(0, size))]
            length = size
        headers.setdefault("Content-Type", ctype)
        resp = BufferedStreamResponse(status=status, headers=headers)  # the head goes with the first bytes
        if gzip:
            resp.enable_compression(web.ContentCoding.gzip)
        else:
            resp.content_length = length
        await resp.prepare(request)
        if request.method != "HEAD":
            for part_head, r in parts:
                if part_head:
                    await resp.write(part_head)
                f.seek(r.start)
                left = r.length
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:  # the file shrank: the promised length cannot be kept
                        log.warning("static_file: %s shrank while being sent", name)
                        if request.transport is not None:
                            request.transport.close()
                        return resp
                    left -= len(chunk)
                    await resp.write(chunk)
            if trailer:
                await resp.write(trailer)
        await resp.write_eof()
        return resp
