"""The frps end of HTTP exchanges with a local service: a work connection spoken to as HTTP/1.1.

An :class:`Upstream` is the protocol of one work connection (after StartWorkConn and with the
proxy's encryption/compression codecs). It parses response heads, frames response bodies and
writes them straight into the client's transport; the client side (:mod:`.http`) tells it when a
request starts and ends. Between requests it waits in its proxy's :class:`UpstreamPool`, like the
idle connections of Go's ``http.Transport``, so keep-alive traffic needs no new work connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING

from ...proto.http import (
    RESPONSE_BUFFER,
    BodyFramer,
    ChunkedBody,
    ContentLengthBody,
    HTTPError,
    NoBody,
    Response,
    UntilClose,
    find_head_end,
    parse_response_head,
    response_body,
)
from ...proto.sniff import SNIFF_LEN, detect_content_type
from .http_rewrite import BodyCoding

if TYPE_CHECKING:
    from ...net.relay import Codec
    from .http import ClientConn, HTTPMember

log = logging.getLogger("aiofrp.server.vhost.http")

IDLE_TIMEOUT = 60.0  # Go: IdleConnTimeout
MAX_RESPONSE_HEAD = 10 << 20  # Go's Transport: MaxResponseHeaderBytes 0 means 10 MiB
MAX_IDLE = 64  # Go keeps 5 per route; fewer than the concurrent requests churns work connections

class UpstreamState(enum.Enum):
    """Where an :class:`Upstream` is: between exchanges, reading a response head or body."""

    IDLE = "idle"
    HEAD = "reading a response head"
    BODY = "forwarding a response body"
    CLOSED = "closed"


_IDLE, _HEAD, _BODY, _CLOSED = UpstreamState  # module-level names: fast to compare
_AS_IS, _CHUNK, _DECHUNK, _SNIFF, _HOLD = BodyCoding


class Upstream(asyncio.Protocol):
    """One work connection carrying HTTP/1.1 requests of one proxy, one exchange at a time."""

    __slots__ = (
        "client",
        "client_transport",
        "coding",
        "counted",
        "decode",
        "encode",
        "eof_held",
        "framer",
        "got_bytes",
        "head_timeout",
        "held_body",
        "held_head",
        "idle_since",
        "in_held",
        "in_timer",
        "member",
        "method",
        "nin",
        "nout",
        "out_held",
        "out_timer",
        "rbuf",
        "read_paused",
        "reusable",
        "reused",
        "sniff",
        "state",
        "timer",
        "transport",
        "write_paused",
    )

    def __init__(
        self, member: HTTPMember, transport: asyncio.Transport, encode: Codec | None, decode: Codec | None,
    ) -> None:
        self.member = member
        self.transport = transport
        self.encode = encode
        self.decode = decode
        self.client: ClientConn | None = None
        self.client_transport: asyncio.Transport | None = None
        self.state = _IDLE
        self.rbuf = b""
        self.framer: BodyFramer = NoBody()
        self.coding = _AS_IS
        self.held_head = b""  # BodyCoding.HOLD: the head, and the body so far (below)
        self.held_body: bytearray | None = None
        self.sniff = False  # BodyCoding.HOLD: a Content-Type to guess when the head goes out
        self.method = ""
        self.timer: asyncio.TimerHandle | None = None
        self.got_bytes = False
        self.reused = False
        self.reusable = True
        self.idle_since = 0.0
        self.read_paused = False  # by the client's full write buffer
        self.write_paused = False  # our transport's buffer is full
        self.nin = 0  # request bytes sent to frpc (frp's "traffic in"), before the codec
        self.nout = 0  # response bytes from frpc ("traffic out"), after the codec
        self.counted = True  # open in frps's statistics until _uncount (member.upstream_done)
        # bandwidthLimitMode "server": the proxy's bucket meters the work connection's plaintext,
        # both ways, as Go's frps does (GetRealConn); bytes beyond it wait here, their side paused
        self.out_held: bytes | None = None  # request bytes not yet written
        self.in_held: bytes | None = None  # response bytes not yet handled (reading paused)
        self.out_timer: asyncio.TimerHandle | None = None
        self.in_timer: asyncio.TimerHandle | None = None
        self.head_timeout = 0.0  # a response-head timeout to start once out_held is written
        self.eof_held = False  # the work connection ended behind in_held
        transport.set_protocol(self)

    # -- driven by the client side --------------------------------------------------------------

    def start(self, client: ClientConn, method: str) -> None:
        self.client = client
        self.client_transport = client.transport
        self.method = method
        self.state = _HEAD
        self.coding = _AS_IS
        self.got_bytes = False
        self.reusable = True
        if client.write_paused:
            self.pause_reading()
        if self.write_paused:
            client.pause_for_upstream(True)

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if self.in_held is None:
                self.transport.resume_reading()

    def send(self, data: bytes | memoryview) -> None:
        self.nin += len(data)
        if self.member.limiter is not None:
            self._send_metered(data)
            return
        enc = self.encode
        self.transport.write(enc(data) if enc is not None else data)

    def request_done(self, timeout: float) -> None:
        """The whole request is written: Go's ResponseHeaderTimeout starts now (once the bandwidth
        limit has let all of it out)."""
        if self.out_held is not None:
            self.head_timeout = timeout
            return
        if self.state == _HEAD and self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(timeout, self._timeout)

    # -- bandwidth limit (mode "server") --------------------------------------------------------

    def _send_metered(self, data: bytes | memoryview) -> None:
        if self.out_held is not None:
            self.out_held += data
            return
        bucket = self.member.limiter
        assert bucket is not None
        n = len(data)
        now = time.monotonic()
        granted = bucket.take(n, now)
        if granted:
            part = data if granted == n else data[:granted]
            enc = self.encode
            self.transport.write(enc(part) if enc is not None else part)
        if granted == n:
            return
        self.out_held = bytes(data[granted:])
        if self.client is not None:
            self.client.pause_for_limit(True)
        self.out_timer = asyncio.get_running_loop().call_later(bucket.wait_time(n - granted, now), self._release_out)

    def _release_out(self) -> None:
        self.out_timer = None
        held, self.out_held = self.out_held, None
        if held is None or self.state == _CLOSED:
            return
        self._send_metered(held)
        if self.out_held is not None:
            return
        if self.client is not None:
            self.client.pause_for_limit(False)
        if self.head_timeout:
            timeout, self.head_timeout = self.head_timeout, 0.0
            self.request_done(timeout)

    def take_out_held(self) -> bytes:
        """Request bytes not yet written (an upgrade hands them to the relay that takes over)."""
        held, self.out_held = self.out_held or b"", None
        if self.out_timer is not None:
            self.out_timer.cancel()
            self.out_timer = None
        return held

    def _take_in(self, data: bytes) -> bytes:
        bucket = self.member.limiter
        assert bucket is not None
        n = len(data)
        now = time.monotonic()
        granted = bucket.take(n, now)
        if granted == n:
            return data
        self.in_held = data[granted:]
        self.transport.pause_reading()
        self.in_timer = asyncio.get_running_loop().call_later(bucket.wait_time(n - granted, now), self._release_in)
        return data[:granted]

    def _release_in(self) -> None:
        self.in_timer = None
        held, self.in_held = self.in_held, None
        if held is None or self.state == _CLOSED:
            return
        data = self._take_in(held)
        if data:
            self._handle(data)
        if self.in_held is not None or self.state == _CLOSED:
            return
        if self.eof_held:
            self.eof_held = False
            if not self.eof_received():
                self.transport.close()
        elif not self.read_paused:
            self.transport.resume_reading()

    def _cancel_limit(self) -> None:
        for h in (self.in_timer, self.out_timer):
            if h is not None:
                h.cancel()
        self.in_timer = self.out_timer = None
        self.in_held = self.out_held = None

    @property
    def usable(self) -> bool:
        return self.state == _IDLE and not self.transport.is_closing()

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.member.upstream_done(self)

    def detach(self) -> None:
        """Stop handling the connection (it becomes one side of a raw relay)."""
        self._uncount()
        self._cancel_timer()
        if self.in_timer is not None:
            self.in_timer.cancel()
            self.in_timer = None
        self.state = _CLOSED
        self.client = None

    def close(self) -> None:
        self._cancel_timer()
        self._cancel_limit()
        self.held_head, self.held_body = b"", None
        if self.state != _CLOSED:
            self.state = _CLOSED
            self.client = None
            self.member.pool.discard(self)
        self.transport.close()

    def abort(self) -> None:
        self._cancel_timer()
        self._cancel_limit()
        self.held_head, self.held_body = b"", None  # a body ended short: the client gets none of it (Go)
        self.state = _CLOSED
        self.client = None
        self.member.pool.discard(self)
        self.transport.abort()

    # -- protocol callbacks ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.decode is not None:
            try:
                data = self.decode(data)
            except Exception as exc:  # noqa: BLE001 - a corrupt work connection fails this exchange only
                self._error(f"bad data on work connection: {exc}")
                return
            if not data:
                return
        elif type(data) is not bytes:
            data = bytes(data)  # yamux streams hand out views of their frames
        self.nout += len(data)
        if self.member.limiter is not None:
            if self.in_held is not None:  # transports may deliver a little after pause_reading
                self.in_held += data
                return
            data = self._take_in(data)
            if not data:
                return
        self._handle(data)

    def _handle(self, data: bytes) -> None:
        state = self.state
        try:
            if state == _BODY:
                self._body(data, 0)
            elif state == _HEAD:
                self._head(data)
        except HTTPError as exc:  # a malformed chunked body
            self._error(f"malformed response body: {exc.detail}")
            return
        except Exception:  # a bug must not take down the yamux session the stream belongs to
            log.exception("[%s] http response handling failed", self.member.name)
            self._error("internal error")
            return
        if state == _IDLE:
            log.debug("[%s] unexpected %d bytes on an idle work connection", self.member.name, len(data))
            self.abort()

    def _head(self, data: bytes) -> None:
        self.got_bytes = True
        if self.rbuf:
            data = self.rbuf + data
            self.rbuf = b""
        pos = 0
        client = self.client
        assert client is not None
        while True:
            end = find_head_end(data, pos)
            if end < 0:
                if len(data) - pos > MAX_RESPONSE_HEAD:
                    self._error("response head too large")
                else:
                    self.rbuf = data[pos:] if pos else data
                return
            raw = data[pos:end]
            try:
                try:
                    resp = parse_response_head(raw)
                except HTTPError as exc:
                    if exc.detail != "obsolete header line folding":
                        raise
                    resp = parse_response_head(raw, unfold=True)  # Go's textproto unfolds them
                    raw = b""  # not to be sent as it came
                framer = _response_framer(resp, self.method)
            except HTTPError as exc:
                self._error(f"malformed response: {exc}")
                return
            if resp.status >= 200 or resp.status == 101:
                break
            client.on_interim(resp, raw)  # 100 Continue, 103 Early Hints ...
            pos = end
        self._cancel_timer()
        if resp.status == 101:
            rest = data[end:]
            if self.in_held is not None:  # bytes the bandwidth limit held go to the relay's client now
                rest += self.in_held
                self.in_held = None
            self.detach()
            client.on_upgrade(self, resp, raw, rest)
            return
        self.framer = framer
        self.state = _BODY
        if isinstance(framer, UntilClose):
            self.reusable = False
        head, coding = client.on_response_head(self, resp, raw)
        ct = self.client_transport
        assert ct is not None
        if type(framer) is ContentLengthBody:  # coded AS_IS or SNIFF
            stop = framer.feed(data, end)
            if framer.done or stop - end > RESPONSE_BUFFER or _event_stream(resp):
                if coding is _AS_IS and stop > end:  # the common case: head and body in one write
                    ct.writelines((head, memoryview(data)[end:stop]))
                else:
                    self._write_head(head, coding is _SNIFF, memoryview(data)[end:stop])
                if framer.done:
                    self._done(stop < len(data))
                return
            # Go's server holds the head until its buffer overflows or the body is complete
            self.coding = _HOLD
            self.sniff = coding is _SNIFF
            self.held_head = head
            self.held_body = bytearray(memoryview(data)[end:stop])
            return
        if isinstance(framer, UntilClose) and end < len(data) and _untyped(head):
            # Go's server guesses a Content-Type from a close-delimited body's first bytes when
            # they come with the head (ReverseProxy flushes an unknown length at once otherwise)
            ctype = detect_content_type(memoryview(data)[end:end + SNIFF_LEN]).encode()
            head = b"%sContent-Type: %s\r\n\r\n" % (head[:-2], ctype)
        if coding is not _AS_IS:
            self.coding = coding
            ct.write(head)
            if end < len(data):
                self._body_coded(data, end)
            return
        if framer.done or end == len(data):
            ct.write(head)
            if framer.done:
                self._done(end < len(data))
            return
        # head and the first body bytes in one write (one syscall)
        stop = framer.feed(data, end)
        ct.writelines((head, memoryview(data)[end:stop]))
        if framer.done:
            self._done(stop < len(data))

    def _body(self, data: bytes, pos: int) -> None:
        if self.coding is not _AS_IS:
            self._body_coded(data, pos)
            return
        framer = self.framer
        end = framer.feed(data, pos)
        ct = self.client_transport
        if pos == 0 and end == len(data):
            ct.write(data)  # type: ignore[union-attr]
        elif end > pos:
            ct.write(memoryview(data)[pos:end])  # type: ignore[union-attr]
        if framer.done:
            self._done(end < len(data))

    def _body_coded(self, data: bytes, pos: int) -> None:
        """Body bytes in the framing the client gets instead of the service's (BodyCoding)."""
        framer = self.framer
        ct = self.client_transport
        assert ct is not None
        coding = self.coding
        if coding is _CHUNK:  # the body ends when the service closes: nothing to find
            if pos < len(data):
                ct.writelines((b"%x\r\n" % (len(data) - pos), memoryview(data)[pos:], b"\r\n"))
            return
        if coding is _HOLD:
            end = framer.feed(data, pos)
            held = self.held_body
            assert held is not None
            held += memoryview(data)[pos:end]
            if framer.done or len(held) > RESPONSE_BUFFER:
                head, self.held_head, self.held_body = self.held_head, b"", None
                self.coding = _AS_IS
                self._write_head(head, self.sniff, held)
                if framer.done:
                    self._done(end < len(data))
            return
        assert type(framer) is ChunkedBody
        out: list[bytes] = []
        end = framer.feed(data, pos, out)
        if out:
            ct.writelines(out)
        if framer.done:
            self._done(end < len(data))

    def _write_head(self, head: bytes, sniff: bool, body: memoryview | bytearray) -> None:
        """The head with the first body bytes; ``sniff``: with the Content-Type Go's server guesses
        from them (it sniffs what it writes first: the whole body or the first 2 KiB and more)."""
        ct = self.client_transport
        assert ct is not None
        if sniff:
            ctype = detect_content_type(memoryview(body)[:SNIFF_LEN])
            ct.writelines((head[:-2], b"Content-Type: %s\r\n\r\n" % ctype.encode(), body))
        elif body:
            ct.writelines((head, body))
        else:
            ct.write(head)

    def _done(self, extra: bool) -> None:
        """The response is complete; ``extra``: the service sent bytes beyond it."""
        if self.coding is not _AS_IS:
            if self.coding is _CHUNK and self.client_transport is not None:
                self.client_transport.write(b"0\r\n\r\n")
            self.coding = _AS_IS
            self.held_head = b""
            self.held_body = None
        if extra:
            self.reusable = False
        if self.out_held is not None:  # answered before the request was all written
            self.reusable = False
            self.take_out_held()
            if self.client is not None:
                self.client.pause_for_limit(False)
        client = self.client
        self.client = None
        self.client_transport = None
        self.state = _IDLE
        self.resume_reading()
        if client is not None:
            client.on_response_end(self)

    def _error(self, why: str, *, timeout: bool = False) -> None:
        client = self.client
        self.abort()
        if client is not None:
            client.on_upstream_error(self, why, timeout=timeout)

    def _timeout(self) -> None:
        self.timer = None
        if self.state == _HEAD:
            self._error("timeout awaiting response headers", timeout=True)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool:
        if self.in_held is not None:  # handle what the bandwidth limit holds first
            self.eof_held = True
            return True
        if self.state == _BODY and isinstance(self.framer, UntilClose):
            self.reusable = False
            self._done(False)
            self.close()
            return False
        if self.state in (_HEAD, _BODY):
            self._error("local service closed the connection" if self.state == _BODY or self.got_bytes
                        else "EOF before any response")
        else:
            self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_limit()
        if self.state in (_HEAD, _BODY):
            if self.state == _BODY and isinstance(self.framer, UntilClose):
                self.reusable = False
                self._done(False)
            else:
                self._error(f"work connection lost: {exc or 'closed'}")
        self._cancel_timer()
        self.state = _CLOSED
        self.member.pool.discard(self)
        self._uncount()

    def pause_writing(self) -> None:
        self.write_paused = True
        client = self.client
        if client is not None:
            client.pause_for_upstream(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        client = self.client
        if client is not None:
            client.pause_for_upstream(False)


def _response_framer(resp: Response, method: str) -> BodyFramer:
    """How the response's body is delimited, as Go's transport reads it: one ``Transfer-Encoding``
    field saying ``chunked`` or none (anything else fails the request), and none at all from an
    HTTP/1.0 service (its field is dropped, the body framed as if it had not been there)."""
    framer = response_body(resp, method)
    codings = resp.get_all("transfer-encoding")
    if codings:
        if resp.minor == 0:
            resp.headers = [h for h in resp.headers if h[0].lower() != "transfer-encoding"]
            resp._index = None
            return response_body(resp, method)
        if len(codings) != 1 or codings[0].lower() != "chunked":
            raise HTTPError(502, f"unsupported transfer encoding: {', '.join(codings)!r}")
    return framer


def _event_stream(resp: Response) -> bool:
    """Go's ReverseProxy flushes ``text/event-stream`` at once, whatever the length."""
    ctype = resp.get("content-type")
    return ctype is not None and ctype.partition(";")[0].strip().lower() == "text/event-stream"


class UpstreamPool:
    """A proxy's idle upstreams (most recently used first out), closed after IDLE_TIMEOUT, and
    the requests waiting for one (first come, first served)."""

    __slots__ = ("_timer", "closed", "idle", "waiters")

    def __init__(self) -> None:
        self.idle: list[Upstream] = []
        self.waiters: dict[ClientConn, None] = {}  # an ordered set
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    def wait(self, client: ClientConn) -> None:
        """``client`` takes the next upstream :meth:`put` here (its own work connection may come first)."""
        self.waiters[client] = None

    def unwait(self, client: ClientConn) -> None:
        self.waiters.pop(client, None)

    def take(self) -> Upstream | None:
        idle = self.idle
        while idle:
            up = idle.pop()
            if up.usable:
                up.reused = True
                return up
            up.abort()
        return None

    def put(self, up: Upstream) -> None:
        if self.closed or not up.usable:
            up.close()
            return
        waiters = self.waiters
        while waiters:
            client = next(iter(waiters))
            del waiters[client]
            up.reused = up.nin > 0  # it has served an exchange: the service may close it any time
            if client.take_upstream(up):
                return
        if len(self.idle) >= MAX_IDLE:
            up.close()
            return
        loop = asyncio.get_running_loop()
        up.idle_since = loop.time()
        self.idle.append(up)
        if self._timer is None:
            self._timer = loop.call_later(IDLE_TIMEOUT / 4, self._sweep)

    def discard(self, up: Upstream) -> None:
        try:
            self.idle.remove(up)
        except ValueError:
            pass

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        limit = loop.time() - IDLE_TIMEOUT
        for up in [u for u in self.idle if u.idle_since <= limit]:
            up.close()
        if self.idle and not self.closed:
            self._timer = loop.call_later(IDLE_TIMEOUT / 4, self._sweep)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.waiters.clear()  # each still has its own work connection coming, or failing
        for up in list(self.idle):
            up.close()
        self.idle.clear()


def _untyped(head: bytes) -> bool:
    """No Content-Type in the response head we send, and no Content-Encoding (Go's server does
    not sniff an encoded body)."""
    lower = head.lower()
    return b"\r\ncontent-type:" not in lower and b"\r\ncontent-encoding:" not in lower
