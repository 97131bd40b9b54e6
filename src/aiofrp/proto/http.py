"""HTTP/1.x message heads and body framing, sans-I/O: what frps's vhost HTTP proxy needs.

Heads are parsed in one piece once their terminating blank line is in the buffer
(:func:`find_head_end`). Bodies are never buffered: a framer (:class:`ContentLengthBody`,
:class:`ChunkedBody`, :class:`UntilClose`) only tells how many of the bytes handed to it belong to
the message, so the proxy forwards them verbatim and knows where the next message starts.

Errors are :class:`HTTPError` carrying the status code a server answers with (400, 431, 501, 505),
the way Go's ``net/http`` server reports them.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import re
import time

from .errors import ProtocolError

__all__ = [
    "MAX_HEAD_SIZE",
    "TOKEN",
    "TOKEN_SPACE",
    "ChunkState",
    "ChunkedBody",
    "ContentLengthBody",
    "HTTPError",
    "NoBody",
    "Request",
    "Response",
    "UntilClose",
    "basic_auth",
    "build_head",
    "canonical_header_key",
    "canonical_host",
    "clean_query",
    "connect_authority_ok",
    "escaped_path",
    "find_head_end",
    "http_date",
    "parse_request_head",
    "parse_response_head",
    "request_body",
    "request_uri",
    "response_body",
]

# Go: http.DefaultMaxHeaderBytes (1 MiB) plus the 4096 bytes of slack its server allows.
MAX_HEAD_SIZE = (1 << 20) + 4096
MAX_CHUNK_LINE = 4096

# Go's net/http server holds what a handler writes this far (bufferBeforeChunkingSize) before it
# writes the head: a body that ends within it gets a Content-Length, and one of known length that
# breaks off within it leaves the client nothing (frps's vhost, the client plugins' servers)
RESPONSE_BUFFER = 2048

# Go's http.StatusText: the reason phrase Go's server writes, whatever a service said
STATUS_TEXT = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 414: "Request URI Too Long", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked", 424: "Failed Dependency",
    425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
}


def go_status_text(status: int) -> str:
    """The reason phrase of Go's ``writeStatusLine``: ``StatusText``, or ``status code N``."""
    return STATUS_TEXT.get(status) or f"status code {status}"

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token: a method, a header name
# a header name as Go's textproto also takes it, with spaces (not canonicalised; Go's server refuses it)
TOKEN_SPACE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z ]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The bytes a head may hold: all but the control characters other than HTAB, LF and CR (a CR only
# before an LF, checked apart). bytes.translate deleting these leaves only the refused ones: one
# pass in C, a tenth of what a regular expression costs (bench/http_parse.py).
_HEAD_BYTES = bytes(b for b in range(256) if not (b < 0x20 and b not in (0x09, 0x0A, 0x0D)) and b != 0x7F)
# Go's httpguts.ValidHostHeader: the bytes a Host header may contain.
_HOST = re.compile(r"[A-Za-z0-9!$%&'()*+,\-.:;=\[\]_~]*")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_ABSOLUTE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A request target Go's ReverseProxy sends on as received: no byte URL.EscapedPath re-escapes and
# none (';', '%') that may make cleanQueryParams re-encode the query; control characters neither.
# One pass in C over the target, which replaces the control-character check for most requests.
_PLAIN_TARGET = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,/:=@\[\]?]*")
# Go's validEncoded(path, encodePath): a path EscapedPath returns as received (RawPath).
_PATH_AS_IS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,/:;=@\[\]%]*")
_PATH_SAFE = "$&+,/:;=@"  # with quote()'s "-._~" and alphanumerics: what Go's escape(encodePath) keeps
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_STATUS = re.compile(r"HTTP/1\.(\d) (\d{3})(?: (.*))?")


class HTTPError(ProtocolError):
    """The peer sent something that is not HTTP/1.x; ``status`` is what a server answers."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"{status} {STATUS_TEXT.get(status, '')}" + (f": {detail}" if detail else ""))
        self.status = status
        self.detail = detail


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line that ends a head starting at ``start``, or -1.

    Lines may end in CRLF or in a bare LF (Go accepts both).
    """
    i = buf.find(b"\n\r\n", start)
    j = buf.find(b"\n\n", start)
    if i < 0:
        return j + 2 if j >= 0 else -1
    if 0 <= j < i:
        return j + 2
    return i + 3


def _split_head(head: bytes | bytearray, status: int = 400) -> list[str]:
    """Start line and header lines of a complete head (blank line included in ``head``).

    Control characters other than the line ends (and HTAB) are refused here, for the whole head.
    """
    text = head.decode("latin-1")
    if head.translate(None, _HEAD_BYTES) or head.count(b"\r") != head.count(b"\r\n"):
        raise HTTPError(status, "invalid control character in message head")
    lines = text.split("\n")
    del lines[-2:]  # the blank line and the empty rest after it
    return [ln.removesuffix("\r") for ln in lines]


def _parse_fields(lines: list[str]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    token = TOKEN.fullmatch
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or token(name) is None:
            if line[:1] in (" ", "\t"):
                raise HTTPError(400, "obsolete header line folding")
            if sep and TOKEN_SPACE.fullmatch(name) is not None:
                # Go's textproto takes a name with spaces (not canonicalised), its server refuses it
                raise HTTPError(400, "invalid header name")
            raise HTTPError(400, f"malformed MIME header line: {line[:64]!r}")
        fields.append((name, value.strip(" \t")))
    return fields


class _Message:
    __slots__ = ("_index", "headers", "minor")

    headers: list[tuple[str, str]]
    minor: int
    _index: dict[str, list[str]] | None

    def _build_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for k, v in self.headers:
            lk = k.lower()
            if lk in index:
                index[lk].append(v)
            else:
                index[lk] = [v]
        self._index = index
        return index

    def get(self, name: str) -> str | None:
        """First value of header ``name`` (lower-case), or None."""
        values = (self._index or self._build_index()).get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return (self._index or self._build_index()).get(name, [])

    def connection_tokens(self) -> set[str]:
        tokens: set[str] = set()
        for v in self.get_all("connection"):
            tokens.update(t.strip().lower() for t in v.split(",") if t.strip())
        return tokens


class Request(_Message):
    """A parsed request head. ``path`` is the decoded URL path used for routing (Go's URL.Path);
    ``url_host`` is the authority of an absolute-form target (a proxy-style request), else "";
    ``origin_target`` the path and query of the target as received (``/`` for none); ``plain``:
    the target holds nothing Go would re-escape or clean (:func:`request_uri` is the identity)."""

    __slots__ = ("host", "method", "origin_target", "path", "plain", "target", "url_host")

    def __init__(self, method: str, target: str, minor: int, headers: list[tuple[str, str]]) -> None:
        self.method = method
        self.target = target
        self.minor = minor
        self.headers = headers
        self._index = None
        self.url_host = ""
        self.host = ""
        self.origin_target = target
        self.path = ""
        self.plain = True


class Response(_Message):
    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str, minor: int, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.reason = reason
        self.minor = minor
        self.headers = headers
        self._index = None


def parse_request_head(head: bytes | bytearray, *, server: bool = True) -> Request:
    """Parse a complete request head (ending with its blank line); raise HTTPError. ``server``:
    also the checks Go's HTTP server makes of the Host header (``http.ReadRequest``, which frp's
    tcpmux uses, makes none of them)."""
    lines = _split_head(head)
    if not lines:
        raise HTTPError(400, "empty request")
    method, sp1, rest = lines[0].partition(" ")
    target, sp2, version = rest.partition(" ")
    if not sp1 or not sp2:
        raise HTTPError(400, "malformed request line")
    if TOKEN.fullmatch(method) is None:
        raise HTTPError(400, "invalid method")
    vm = _VERSION.fullmatch(version)
    if vm is None:
        raise HTTPError(400, "malformed HTTP version")
    if vm.group(1) != "1":
        raise HTTPError(505, "unsupported HTTP version")
    plain = _PLAIN_TARGET.fullmatch(target) is not None
    if not target or (not plain and (_BAD_VALUE.search(target) is not None or "\t" in target)):
        raise HTTPError(400, "invalid request target")
    req = Request(method, target, int(vm.group(2)), _parse_fields(lines[1:]))
    req.plain = plain

    if target[0] == "/":
        path = target.partition("?")[0]
    elif method == "CONNECT":
        if not connect_authority_ok(target):
            raise HTTPError(400, "malformed HTTP request")  # Go: url.ParseRequestURI("http://" + target)
        req.url_host = target.partition("?")[0].partition("/")[0].rpartition("@")[2]  # Go's URL.Host
        path = ""
    elif target == "*":
        path = "*"
    else:
        m = _ABSOLUTE.fullmatch(target)
        if m is None:
            raise HTTPError(400, "invalid request target")
        req.url_host = m.group(2).rpartition("@")[2]
        origin = m.group(3) or "/"
        if origin[0] != "/":
            origin = "/" + origin
        req.origin_target = origin
        path = m.group(3).partition("?")[0]
    if "%" in path:
        if _BAD_ESCAPE.search(path) is not None:
            raise HTTPError(400, "invalid URL escape")
        from urllib.parse import unquote  # here: urllib.parse imports ipaddress (0.5 MB resident)

        path = unquote(path, errors="surrogateescape")
    req.path = path

    hosts = req.get_all("host")
    if not server:
        req.host = req.url_host or (hosts[0] if hosts else "")
        return req
    if len(hosts) > 1:
        raise HTTPError(400, "too many Host headers")
    if hosts and _HOST.fullmatch(hosts[0]) is None:
        raise HTTPError(400, "malformed Host header")
    if not hosts and req.minor >= 1 and method != "CONNECT":
        raise HTTPError(400, "missing required Host header")
    req.host = req.url_host or (hosts[0] if hosts else "")
    return req


def parse_response_head(head: bytes | bytearray, *, unfold: bool = False) -> Response:
    """Parse a complete response head; raise HTTPError. ``unfold``: obsolete folded header lines
    are joined to the line before with one space (as Go's textproto reads them), not refused."""
    lines = _split_head(head, 502)
    if not lines:
        raise HTTPError(502, "empty response")
    m = _STATUS.fullmatch(lines[0])
    if m is None:
        raise HTTPError(502, f"malformed status line {lines[0][:64]!r}")
    try:
        fields = _parse_fields(lines[1:])
    except HTTPError as exc:
        if not unfold or exc.detail != "obsolete header line folding":
            raise
        fields = _parse_fields(_unfold(lines[1:]))
    return Response(int(m.group(2)), m.group(3) or "", int(m.group(1)), fields)


def _unfold(lines: list[str]) -> list[str]:
    """Header lines with their continuation lines (those starting with a blank) joined to them."""
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] = out[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            out.append(line)
    return out


def build_head(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    parts = [start_line]
    parts.extend(f"{k}: {v}" for k, v in headers)
    parts.append("\r\n")
    return "\r\n".join(parts).encode("latin-1")


_date_cache: tuple[int, str] = (-1, "")  # no second matches before the first call
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date() -> str:
    """The ``Date`` value for now (RFC 9110 IMF-fixdate), formatted once per second (not with
    email.utils: it imports urllib.parse and ipaddress, which frps and frpc otherwise leave out)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        t = time.gmtime(now)
        text = (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
        _date_cache = (now, text)
    return _date_cache[1]


@functools.lru_cache(maxsize=512)  # the same few names again and again
def canonical_header_key(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` (``x-my-header`` -> ``X-My-Header``)."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def canonical_host(host: str) -> str:
    """frp's ``httppkg.CanonicalHost`` (errors ignored, as every caller in Go does): lower case;
    when the host has a port (one colon, or ``[...]:``) what ``net.SplitHostPort`` makes of it,
    "" if it is malformed; then one trailing dot off. ``[::1]:80`` is ``::1`` but ``[::1]`` stays
    ``[::1]``; ``::1`` and ``a:b:c`` are kept whole; nothing is trimmed."""
    host = host.lower()
    colons = host.count(":")
    if colons == 1 or (colons and host[0] == "[" and "]:" in host):
        host = _split_host(host)
    return host.removesuffix(".")


def _split_host(hostport: str) -> str:
    """The host of Go's ``net.SplitHostPort(hostport)``, "" where it fails (it has a colon)."""
    i = hostport.rfind(":")
    if hostport[0] == "[":
        end = hostport.find("]")
        if end < 0 or end + 1 != i:  # no "]", nothing after it, or not the last colon after it
            return ""
        host, j, k = hostport[1:end], 1, end + 1
    else:
        host, j, k = hostport[:i], 0, 0
        if ":" in host:
            return ""
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return ""
    return host


# What Go's url package lets stand in a host without escaping (shouldEscape(c, encodeHost) false)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"")
_USERINFO_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:~!$&'()*+,;=%@")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def connect_authority_ok(target: str) -> bool:
    """Whether Go's net/http reads the authority-form target of a CONNECT (it parses
    ``"http://" + target`` with ``url.ParseRequestURI``): a port of digits only after the last
    colon (or after ``]``), a ``]`` for a ``[``, no character a host must escape (``{}|^`` and
    the like; bytes above 0x7F pass), ``%`` only before two hex digits, and of those only ``%25``
    or a non-ASCII byte. Go answers a plain ``400 Bad Request`` to the rest."""
    authority = target.partition("?")[0].partition("/")[0]
    userinfo, at, host = authority.rpartition("@")
    if at and any(c not in _USERINFO_CHARS for c in userinfo if c < "\x80"):
        return False
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            return False
        port = host[end + 1:]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if port and (port[0] != ":" or not port[1:].isascii() or (len(port) > 1 and not port[1:].isdigit())):
        return False
    i, n = 0, len(host)
    while i < n:
        c = host[i]
        if c == "%":
            if i + 2 >= n or host[i + 1] not in _HEXDIGITS or host[i + 2] not in _HEXDIGITS:
                return False
            if int(host[i + 1], 16) < 8 and host[i:i + 3] != "%25":
                return False
            i += 3
            continue
        if c < "\x80" and c not in _HOST_CHARS:
            return False
        i += 1
    return True


def escaped_path(path: str) -> str:
    """Go's ``URL.EscapedPath()`` of a request path as received (its escapes valid: the parser
    checked them): the path itself when Go's validEncoded accepts it, else the decoded path
    escaped again: a UTF-8 ``ä`` -> ``%C3%A4``, ``{`` -> ``%7B``, ``#`` -> ``%23``, ``%41{`` -> ``A%7B``."""
    if _PATH_AS_IS.fullmatch(path) is not None:
        return path
    from urllib.parse import quote_from_bytes, unquote_to_bytes  # rare: imported when needed

    return quote_from_bytes(unquote_to_bytes(path.encode("latin-1")), _PATH_SAFE)


def clean_query(query: str) -> str:
    """Go's ReverseProxy ``cleanQueryParams``: a query holding ``;`` or a malformed escape is
    replaced by ``url.ParseQuery(query).Encode()``: the ``&``-separated parameters it could parse
    (not an empty one, nor one holding a ``;`` or a bad escape), sorted by name, escaped again as
    ``name=value``; any other query is kept as it is."""
    if ";" not in query and ("%" not in query or _BAD_ESCAPE.search(query) is None):
        return query
    from urllib.parse import quote_plus, unquote_to_bytes

    params: dict[bytes, list[bytes]] = {}
    for part in query.split("&"):
        if not part or ";" in part:
            continue
        name, _, value = part.partition("=")
        if _BAD_ESCAPE.search(name) is not None or _BAD_ESCAPE.search(value) is not None:
            continue
        key = unquote_to_bytes(name.encode("latin-1").replace(b"+", b" "))
        params.setdefault(key, []).append(unquote_to_bytes(value.encode("latin-1").replace(b"+", b" ")))
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k in sorted(params) for v in params[k])


def request_uri(target: str, *, clean: bool = True) -> str:
    """The target Go sends on for an origin-form ``target`` (path and query) as received:
    ``URL.RequestURI()`` of what ``url.ParseRequestURI`` made of it (the path through
    :func:`escaped_path`, the query raw), the query through :func:`clean_query` first when
    ``clean`` (ReverseProxy does it, a CONNECT's ``req.Write`` does not). A fragment is no
    fragment here: ``#`` belongs to the path or the query."""
    path, sep, query = target.partition("?")
    out = escaped_path(path) if path != "*" else path
    if sep:
        cleaned = clean_query(query) if clean else query
        if cleaned or not query:  # "/p?" keeps its "?" (Go's ForceQuery); a query cleaned away does not
            out += "?" + cleaned
    return out


def basic_auth(value: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` value, or None."""
    if not value or len(value) < 6 or value[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(value[6:], validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        return None
    user, sep, pwd = raw.partition(":")
    return (user, pwd) if sep else None


# -- body framing -----------------------------------------------------------------------------


class NoBody:
    """A message without a body."""

    __slots__ = ()
    done = True

    def feed(self, data: bytes, pos: int = 0) -> int:
        return pos


class ContentLengthBody:
    __slots__ = ("done", "remaining")

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def feed(self, data: bytes, pos: int = 0) -> int:
        """Consume body bytes of ``data[pos:]``; return the index where the body (so far) ends."""
        take = min(self.remaining, len(data) - pos)
        self.remaining -= take
        if not self.remaining:
            self.done = True
        return pos + take


class UntilClose:
    """A response body delimited by the connection close."""

    __slots__ = ()
    done = False

    def feed(self, data: bytes, pos: int = 0) -> int:
        return len(data)


class ChunkState(enum.Enum):
    """Where a :class:`ChunkedBody` is in the chunked coding."""

    SIZE = "chunk-size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILER = "trailer section"
    DONE = "done"


_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = ChunkState  # module-level names: fast in the hot loop


class ChunkedBody:
    """Tracks a chunked body (RFC 9112 §7.1) without decoding it: sizes, CRLFs, trailers."""

    __slots__ = ("done", "line", "remaining", "state")

    def __init__(self) -> None:
        self.state = _SIZE
        self.remaining = 0
        self.line = b""
        self.done = False

    def feed(self, data: bytes, pos: int = 0, out: list[bytes] | None = None) -> int:
        """Where the body ends in ``data`` (from ``pos``); ``out``, when given, gets the chunks'
        payload (the coding taken off)."""
        n = len(data)
        while pos < n:
            state = self.state
            if state == _DATA:
                take = min(self.remaining, n - pos)
                if out is not None:
                    out.append(data[pos:pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.state = _DATA_END
                continue
            if state == _DONE:
                break
            nl = data.find(b"\n", pos, pos + MAX_CHUNK_LINE + 2)
            if nl < 0:
                if state == _DATA_END and (self.line + data[pos:]) != b"\r":
                    raise HTTPError(400, "missing CRLF after chunk data")
                self.line += data[pos:]
                if len(self.line) > MAX_CHUNK_LINE:
                    raise HTTPError(400, "chunk header line too long")
                return n
            line = data[pos:nl]
            pos = nl + 1
            if self.line:
                line = self.line + line
                self.line = b""
                if len(line) > MAX_CHUNK_LINE:
                    raise HTTPError(400, "chunk header line too long")
            if line.endswith(b"\r"):
                line = line[:-1]
            if state == _SIZE:
                size_text = line.partition(b";")[0].strip(b" \t")
                if _HEX.fullmatch(size_text) is None:
                    raise HTTPError(400, f"invalid chunk size {size_text[:32]!r}")
                size = int(size_text, 16)
                if size:
                    self.state = _DATA
                    self.remaining = size
                else:
                    self.state = _TRAILER
            elif state == _DATA_END:
                if line:
                    raise HTTPError(400, "missing CRLF after chunk data")
                self.state = _SIZE
            elif not line:  # end of the trailer section
                self.state = _DONE
                self.done = True
                break
        return pos


BodyFramer = NoBody | ContentLengthBody | ChunkedBody | UntilClose
_NO_BODY = NoBody()


def _content_length(msg: _Message) -> int | None:
    values = msg.get_all("content-length")
    if not values:
        return None
    parts = {p.strip() for v in values for p in v.split(",")}
    if len(parts) != 1:
        raise HTTPError(400, "conflicting Content-Length")
    text = parts.pop()
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise HTTPError(400, f"bad Content-Length {text[:32]!r}")
    return int(text)


def _chunked(msg: _Message) -> bool | None:
    """True: chunked is the final coding; False: some other coding; None: no Transfer-Encoding."""
    values = msg.get_all("transfer-encoding")
    if not values:
        return None
    codings = [c.strip().lower() for v in values for c in v.split(",") if c.strip()]
    return bool(codings) and codings[-1] == "chunked"


def request_body(req: Request) -> BodyFramer:
    """How the request's body is delimited (RFC 9112 §6.3); raise HTTPError like Go does."""
    codings = req.get_all("transfer-encoding")
    if codings:
        if [c.strip().lower() for v in codings for c in v.split(",")] != ["chunked"]:
            raise HTTPError(501, "unsupported transfer encoding")
        return ChunkedBody()
    length = _content_length(req)
    if not length:
        return _NO_BODY
    return ContentLengthBody(length)


def response_body(resp: Response, method: str) -> BodyFramer:
    status = resp.status
    if method == "HEAD" or status < 200 or status in (204, 304):
        return _NO_BODY
    te = _chunked(resp)
    if te is not None:
        return ChunkedBody() if te else UntilClose()
    length = _content_length(resp)
    if length is None:
        return UntilClose()
    return ContentLengthBody(length) if length else _NO_BODY
