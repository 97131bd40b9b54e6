"""The server side of HTTP/2 (RFC 9113) as the ``https2*`` client plugins need it, sans-I/O: frames
in, hooks called, frames out. Header compression is the ``hpack`` library's.

It replaces the ``h2`` library there, which spent about half of frpc's CPU per proxied request in
its general machinery (an event object per frame, a state machine per stream, eager ``repr`` of
every frame, validation as generator chains). Only what a server that answers requests needs is
here: no push, no priorities (PRIORITY frames and fields are read and ignored, as Go's server does
by default), no client side.

What is checked, as RFC 9113 asks of a server (and Go's ``http2.Server`` does):

* connection errors (GOAWAY, then the caller closes): a bad preface, a frame over our
  SETTINGS_MAX_FRAME_SIZE, frames on stream 0 or an idle stream that may not be there, an even
  stream id, CONTINUATION out of sequence, a header block HPACK cannot decode, bad SETTINGS values,
  flow-control overflow of the connection window;
* stream errors (RST_STREAM, the connection goes on): a malformed request (pseudo-header fields
  missing, repeated, unknown or after regular fields; names that are not lower-case tokens; values
  with control characters other than HTAB; connection-specific fields; ``te`` other than
  ``trailers``; a body longer or shorter than its ``content-length``), DATA or HEADERS after the
  client ended the stream, a stream window overflow; over SETTINGS_MAX_CONCURRENT_STREAMS a new
  stream is refused (REFUSED_STREAM).

Frames for a stream we already closed or reset are dropped (their DATA still counts against and is
credited back to the connection window).
"""

from __future__ import annotations

import re
import struct
from typing import cast

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x9
# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 1, 2, 3, 4, 5

DEFAULT_WINDOW = 65535
DEFAULT_FRAME_SIZE = 16384
MAX_WINDOW = (1 << 31) - 1
MAX_HEADER_LIST = 1 << 16  # decoded; what h2 allowed before (hpack's default)
MAX_HEADER_BLOCK = 1 << 20  # compressed, across CONTINUATION frames

_HEAD = struct.Struct(">BHBBL")  # 24-bit length as 8 + 16, type, flags, stream id (R bit masked)
_SETTING = struct.Struct(">HL")
_U32 = struct.Struct(">L")
_GOAWAY = struct.Struct(">LL")

REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")  # a token, lower case (RFC 9113 §8.2.1)
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but HTAB


class ProtocolError(Exception):
    """A connection error: GOAWAY with ``code`` was queued; the caller closes the connection."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


class Stream:
    """One request stream's protocol state (subclassed by the caller for its own fields)."""

    __slots__ = ("cl", "id", "in_unacked", "in_window", "local_closed", "out_window", "received", "remote_closed")

    def __init__(self, sid: int, out_window: int, in_window: int) -> None:
        self.id = sid
        self.out_window = out_window  # what we may still send on it
        self.in_window = in_window  # what the peer may still send on it
        self.in_unacked = 0  # consumed by the caller, not yet credited back
        self.remote_closed = False
        self.local_closed = False
        self.cl = -1  # the request's content-length, -1 when none
        self.received = 0  # request body bytes so far (for the content-length check)


class ServerConnection:
    """An HTTP/2 server connection's framing, flow control and HPACK state.

    Subclasses implement the hooks: :meth:`new_stream` (make the :class:`Stream`),
    :meth:`on_request`, :meth:`on_data`, :meth:`on_end`, :meth:`on_reset`, :meth:`on_window`
    and :meth:`on_goaway`. Output accumulates until :meth:`data_to_send`.
    """

    def __init__(self, *, max_streams: int, stream_window: int, conn_window: int) -> None:
        self.max_streams = max_streams
        self.stream_window = stream_window  # our SETTINGS_INITIAL_WINDOW_SIZE
        self.conn_window_max = conn_window
        self.in_conn_window = DEFAULT_WINDOW
        self.in_conn_unacked = 0
        self.out_conn_window = DEFAULT_WINDOW
        self.peer_stream_window = DEFAULT_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self.max_outbound_frame_size = DEFAULT_FRAME_SIZE
        self.streams: dict[int, Stream] = {}
        self.last_sid = 0  # the highest stream id the peer opened
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = MAX_HEADER_LIST
        self.encoder = hpack.Encoder()
        self.out = bytearray()
        self._buf = b""
        self._preface = False
        self._cont: tuple[int, int, bytearray] | None = None  # (stream, HEADERS flags, block so far)
        self.terminated = False

    # -- hooks ----------------------------------------------------------------------------------

    def new_stream(self, sid: int) -> Stream:
        return Stream(sid, self.peer_stream_window, self.stream_window)

    def on_request(self, st: Stream, headers: list[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    def on_data(self, st: Stream, data: bytes, flow: int) -> None:
        """Body bytes; ``flow`` (the frame's length, padding included) is credited back by
        :meth:`acknowledge` once consumed."""
        raise NotImplementedError

    def on_end(self, st: Stream) -> None:
        """The client ended its side of the stream."""

    def on_reset(self, st: Stream) -> None:
        """The stream is gone (reset by either side): stop working on it."""

    def on_window(self, sid: int) -> None:
        """Send window opened: on ``sid``, or on every stream when 0."""

    def on_goaway(self) -> None:
        """The client sent GOAWAY."""

    # -- setup and output -----------------------------------------------------------------------

    def initiate(self) -> None:
        """Our SETTINGS and the connection window (as the h2 library sent them for us before)."""
        settings = b"".join(_SETTING.pack(k, v) for k, v in (
            (HEADER_TABLE_SIZE, 4096), (ENABLE_PUSH, 0), (INITIAL_WINDOW_SIZE, self.stream_window),
            (MAX_FRAME_SIZE, DEFAULT_FRAME_SIZE), (MAX_CONCURRENT_STREAMS, self.max_streams)))
        self.out += frame(SETTINGS, 0, 0, settings)
        grow = self.conn_window_max - DEFAULT_WINDOW
        if grow > 0:
            self.out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(grow))
            self.in_conn_window += grow

    def data_to_send(self) -> bytes:
        if not self.out:
            return b""
        data = bytes(self.out)
        self.out.clear()
        return data

    def _goaway(self, code: int, detail: str) -> ProtocolError:
        if not self.terminated:
            self.terminated = True
            self.out += frame(GOAWAY, 0, 0, _GOAWAY.pack(self.last_sid, code))
        return ProtocolError(code, detail)

    def reset_stream(self, sid: int, code: int) -> None:
        st = self.streams.pop(sid, None)
        if st is not None:
            self.out += frame(RST_STREAM, 0, sid, _U32.pack(code))
            self.on_reset(st)

    def _close_local(self, st: Stream) -> None:
        st.local_closed = True
        if st.remote_closed:
            self.streams.pop(st.id, None)

    def send_headers(self, sid: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        st = self.streams.get(sid)
        if st is None or st.local_closed:
            return
        block = self.encoder.encode(headers)
        limit = self.max_outbound_frame_size
        flags = END_STREAM if end_stream else 0
        if len(block) <= limit:
            self.out += frame(HEADERS, flags | END_HEADERS, sid, block)
        else:
            parts = [block[i:i + limit] for i in range(0, len(block), limit)]
            self.out += frame(HEADERS, flags, sid, parts[0])
            for i, part in enumerate(parts[1:], 2):
                self.out += frame(CONTINUATION, END_HEADERS if i == len(parts) else 0, sid, part)
        if end_stream:
            self._close_local(st)

    def local_flow_control_window(self, sid: int) -> int:
        st = self.streams.get(sid)
        return 0 if st is None else min(st.out_window, self.out_conn_window)

    def send_data(self, sid: int, data: bytes | memoryview, *, end_stream: bool = False) -> None:
        """``data`` (within the windows and one frame: the caller checks) on ``sid``."""
        st = self.streams.get(sid)
        if st is None or st.local_closed:
            return
        n = len(data)
        st.out_window -= n
        self.out_conn_window -= n
        out = self.out
        out += _HEAD.pack(n >> 16, n & 0xFFFF, DATA, END_STREAM if end_stream else 0, sid)
        out += data
        if end_stream:
            self._close_local(st)

    def end_stream(self, sid: int) -> None:
        self.send_data(sid, b"", end_stream=True)

    def acknowledge(self, sid: int, n: int) -> None:
        """``n`` flow-controlled bytes of ``sid`` were consumed: credit them back, per stream and
        for the connection, with a WINDOW_UPDATE once a quarter of the window is owed or, when the
        peer has less than a quarter left to send, at once (bytes held by stalled streams must not
        keep the connection window shut for the others)."""
        self.in_conn_unacked += n
        quarter = self.conn_window_max >> 2
        if self.in_conn_unacked and (self.in_conn_unacked >= quarter or self.in_conn_window < quarter):
            inc, self.in_conn_unacked = self.in_conn_unacked, 0
            self.in_conn_window += inc
            self.out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(inc))
        st = self.streams.get(sid)
        if st is not None and not st.remote_closed:
            st.in_unacked += n
            quarter = self.stream_window >> 2
            if st.in_unacked and (st.in_unacked >= quarter or st.in_window < quarter):
                inc, st.in_unacked = st.in_unacked, 0
                st.in_window += inc
                self.out += frame(WINDOW_UPDATE, 0, sid, _U32.pack(inc))

    # -- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Process ``data``; raises :class:`ProtocolError` (GOAWAY queued) on a connection error."""
        if self.terminated:
            return
        buf: bytes | memoryview = (self._buf + bytes(data)) if self._buf else memoryview(data)
        pos = 0
        if not self._preface:
            if len(buf) < len(PREFACE):
                if bytes(buf) != PREFACE[:len(buf)]:
                    raise self._goaway(PROTOCOL_ERROR, "invalid HTTP/2 preface")
                self._buf = bytes(buf)
                return
            if bytes(buf[:len(PREFACE)]) != PREFACE:
                raise self._goaway(PROTOCOL_ERROR, "invalid HTTP/2 preface")
            self._preface = True
            pos = len(PREFACE)
        end = len(buf)
        unpack = _HEAD.unpack_from
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = hi << 16 | lo
            if length > DEFAULT_FRAME_SIZE:
                raise self._goaway(FRAME_SIZE_ERROR, f"frame of {length} bytes")
            if end - pos - 9 < length:
                break
            start = pos + 9
            pos = start + length
            self._frame(ftype, flags, sid & 0x7FFFFFFF, buf[start:pos])
            if self.terminated:
                return
        self._buf = bytes(buf[pos:]) if pos < end else b""

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes | memoryview) -> None:
        if self._cont is not None and (ftype != CONTINUATION or sid != self._cont[0]):
            raise self._goaway(PROTOCOL_ERROR, "expected a CONTINUATION frame")
        if ftype == DATA:
            self._data(flags, sid, payload)
        elif ftype == HEADERS:
            self._headers(flags, sid, payload)
        elif ftype == WINDOW_UPDATE:
            self._window_update(sid, payload)
        elif ftype == SETTINGS:
            self._settings(flags, sid, payload)
        elif ftype == RST_STREAM:
            if len(payload) != 4:
                raise self._goaway(FRAME_SIZE_ERROR, "RST_STREAM of a wrong size")
            if sid == 0:
                raise self._goaway(PROTOCOL_ERROR, "RST_STREAM on stream 0")
            if sid > self.last_sid:
                raise self._goaway(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
            st = self.streams.pop(sid, None)
            if st is not None:
                self.on_reset(st)
        elif ftype == PING:
            if len(payload) != 8:
                raise self._goaway(FRAME_SIZE_ERROR, "PING of a wrong size")
            if sid != 0:
                raise self._goaway(PROTOCOL_ERROR, "PING on a stream")
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, bytes(payload))
        elif ftype == PRIORITY:
            if sid == 0:
                raise self._goaway(PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                self.reset_stream(sid, FRAME_SIZE_ERROR)
        elif ftype == CONTINUATION:
            if self._cont is None:
                raise self._goaway(PROTOCOL_ERROR, "unexpected CONTINUATION frame")
            cont = self._cont
            cont[2].extend(payload)
            if len(cont[2]) > MAX_HEADER_BLOCK:
                raise self._goaway(PROTOCOL_ERROR, "header block too large")
            if flags & END_HEADERS:
                self._cont = None
                self._header_block(cont[0], cont[1], bytes(cont[2]))
        elif ftype == GOAWAY:
            if sid != 0:
                raise self._goaway(PROTOCOL_ERROR, "GOAWAY on a stream")
            self.on_goaway()
        elif ftype == PUSH_PROMISE:
            raise self._goaway(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        # other types: ignored (RFC 9113 §4.1)

    def _unpad(self, flags: int, payload: bytes | memoryview) -> bytes | memoryview:
        if flags & PADDED:
            if not payload:
                raise self._goaway(PROTOCOL_ERROR, "padded frame without a pad length")
            pad = payload[0]
            if pad >= len(payload):
                raise self._goaway(PROTOCOL_ERROR, "padding longer than the frame")
            return payload[1:len(payload) - pad]
        return payload

    def _data(self, flags: int, sid: int, payload: bytes | memoryview) -> None:
        if sid == 0:
            raise self._goaway(PROTOCOL_ERROR, "DATA on stream 0")
        if sid > self.last_sid:
            raise self._goaway(PROTOCOL_ERROR, "DATA on an idle stream")
        flow = len(payload)
        if flow > self.in_conn_window:
            raise self._goaway(FLOW_CONTROL_ERROR, "connection window exceeded")
        self.in_conn_window -= flow
        st = self.streams.get(sid)
        if st is None or st.remote_closed:
            self.acknowledge(0, flow)  # not ours any more: the connection gets its credit back
            if st is not None:
                self.reset_stream(sid, STREAM_CLOSED)
            return
        if flow > st.in_window:
            self.acknowledge(0, flow)
            self.reset_stream(sid, FLOW_CONTROL_ERROR)
            return
        st.in_window -= flow
        # a copy: a view would keep the whole read buffer it lies in alive while the body waits
        # for the upstream (1-byte frames could pin a buffer each)
        data = bytes(self._unpad(flags, payload))
        st.received += len(data)
        ended = bool(flags & END_STREAM)
        if st.cl >= 0 and (st.received > st.cl or (ended and st.received != st.cl)):
            self.acknowledge(0, flow)
            self.reset_stream(sid, PROTOCOL_ERROR)
            return
        if ended:
            st.remote_closed = True
        self.on_data(st, data, flow)
        if ended:
            self._remote_ended(st)

    def _remote_ended(self, st: Stream) -> None:
        if st.local_closed:
            self.streams.pop(st.id, None)
        self.on_end(st)

    def _headers(self, flags: int, sid: int, payload: bytes | memoryview) -> None:
        if sid == 0 or not sid & 1:
            raise self._goaway(PROTOCOL_ERROR, f"HEADERS on stream {sid}")
        block = self._unpad(flags, payload)
        if flags & PRIORITY_FLAG:
            if len(block) < 5:
                raise self._goaway(FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            block = block[5:]
        if flags & END_HEADERS:
            self._header_block(sid, flags, bytes(block))
        else:
            self._cont = (sid, flags, bytearray(block))

    def _header_block(self, sid: int, flags: int, block: bytes) -> None:
        try:
            headers = cast("list[tuple[bytes, bytes]]", self.decoder.decode(block, raw=True))
        except hpack.HPACKError as exc:
            raise self._goaway(COMPRESSION_ERROR, f"header block: {exc}") from None
        ended = bool(flags & END_STREAM)
        st = self.streams.get(sid)
        if st is not None:  # trailers
            if st.remote_closed:
                self.reset_stream(sid, STREAM_CLOSED)
            elif not ended or any(k[:1] == b":" for k, _ in headers) or (st.cl >= 0 and st.received != st.cl):
                self.reset_stream(sid, PROTOCOL_ERROR)
            else:
                st.remote_closed = True
                self._remote_ended(st)
            return
        if sid <= self.last_sid:
            return  # a stream we closed or reset already
        self.last_sid = sid
        if len(self.streams) >= self.max_streams:
            self.out += frame(RST_STREAM, 0, sid, _U32.pack(REFUSED_STREAM))
            return
        cl = _check_request(headers)
        if cl is None:
            self.out += frame(RST_STREAM, 0, sid, _U32.pack(PROTOCOL_ERROR))
            return
        st = self.new_stream(sid)
        st.cl = cl
        st.remote_closed = ended
        if ended and cl > 0:
            self.out += frame(RST_STREAM, 0, sid, _U32.pack(PROTOCOL_ERROR))
            return
        self.streams[sid] = st
        self.on_request(st, headers)

    def _window_update(self, sid: int, payload: bytes | memoryview) -> None:
        if len(payload) != 4:
            raise self._goaway(FRAME_SIZE_ERROR, "WINDOW_UPDATE of a wrong size")
        inc = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if sid == 0:
            if inc == 0:
                raise self._goaway(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.out_conn_window += inc
            if self.out_conn_window > MAX_WINDOW:
                raise self._goaway(FLOW_CONTROL_ERROR, "connection window over 2^31-1")
            self.on_window(0)
            return
        if sid > self.last_sid and sid & 1:
            raise self._goaway(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
        st = self.streams.get(sid)
        if st is None:
            return
        if inc == 0:
            self.reset_stream(sid, PROTOCOL_ERROR)
            return
        st.out_window += inc
        if st.out_window > MAX_WINDOW:
            self.reset_stream(sid, FLOW_CONTROL_ERROR)
            return
        self.on_window(sid)

    def _settings(self, flags: int, sid: int, payload: bytes | memoryview) -> None:
        if sid != 0:
            raise self._goaway(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise self._goaway(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise self._goaway(FRAME_SIZE_ERROR, "SETTINGS of a wrong size")
        for i in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, i)
            if key == HEADER_TABLE_SIZE:
                self.encoder.header_table_size = value
            elif key == ENABLE_PUSH:
                if value > 1:
                    raise self._goaway(PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH over 1")
            elif key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise self._goaway(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
                delta = value - self.peer_stream_window
                self.peer_stream_window = value
                for st in self.streams.values():
                    st.out_window += delta
                    if st.out_window > MAX_WINDOW:
                        raise self._goaway(FLOW_CONTROL_ERROR, "a stream window over 2^31-1")
            elif key == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME_SIZE <= value <= (1 << 24) - 1:
                    raise self._goaway(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
                self.max_outbound_frame_size = value
        self.out += frame(SETTINGS, ACK, 0)
        self.on_window(0)


def _check_request(headers: list[tuple[bytes, bytes]]) -> int | None:
    """A request's header list as RFC 9113 §8.2-8.3 requires of it: its content-length (-1 when
    none), or None when it is malformed."""
    seen: set[bytes] = set()
    regular = False
    cl = -1
    name_ok = _NAME.fullmatch
    bad_value = _BAD_VALUE.search
    for name, value in headers:
        if name[:1] == b":":
            if regular or name not in REQUEST_PSEUDO or name in seen:
                return None
            seen.add(name)
        else:
            regular = True
            if name_ok(name) is None or name in CONNECTION_SPECIFIC:
                return None
            if name == b"te" and value != b"trailers":
                return None
            if name == b"content-length":
                if not value.isdigit() or (cl >= 0 and int(value) != cl):
                    return None
                cl = int(value)
        if bad_value(value) is not None:
            return None
    if b":method" not in seen:
        return None
    method = next(v for k, v in headers if k == b":method")
    if method == b"CONNECT":
        return cl if b":scheme" not in seen and b":path" not in seen and b":authority" in seen else None
    if b":scheme" not in seen or b":path" not in seen:
        return None
    if not next(v for k, v in headers if k == b":path"):
        return None
    return cl
