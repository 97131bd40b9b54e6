"""The asyncio side of :mod:`aiofrp.proto.http2`'s server connection, shared by its two users: the
https2* client plugins' HTTP/2 front (``client/plugins/http/h2.py``) and frps's cleartext HTTP/2 on
the vhost HTTP port (``server/vhost/h2c.py``). Bytes in go to the sans-I/O connection; its output
leaves once per turn of the event loop, so the frames of every stream that answered meanwhile go
out in one transport write (one TLS write, one mux frame, one syscall) instead of one each.
"""

from __future__ import annotations

import asyncio
import logging

from ..proto import http2 as p2

log = logging.getLogger("aiofrp.net.http2")


class H2ServerProtocol(p2.ServerConnection, asyncio.Protocol):
    """An HTTP/2 server connection on a transport; subclasses implement the stream hooks."""

    label = "http2"  # who the connection is, for the log line of a connection error

    def __init__(self, *, max_streams: int, stream_window: int, conn_window: int) -> None:
        super().__init__(max_streams=max_streams, stream_window=stream_window, conn_window=conn_window)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.flush_scheduled = False
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        try:
            self.receive_data(data)
        except p2.ProtocolError as exc:
            log.debug("%s: bad HTTP/2 input: %s", self.label, exc)
            self._close()
            return
        if self.terminated:  # the peer's GOAWAY, or ours
            self._close()
            return
        self._flush()

    def eof_received(self) -> bool:
        self._close()
        return False

    def _flush(self) -> None:
        """Send the output at the end of this loop turn."""
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.closed:
            self.transport.write(self.data_to_send())

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush_now()  # a GOAWAY or the last frames first
            self.closed = True
            self.transport.close()

    def _respond(self, sid: int, status: int) -> None:
        """An answer without a body (an error status) on stream ``sid``."""
        self.send_headers(sid, [(b":status", b"%d" % status), (b"content-length", b"0")], end_stream=True)
        self._flush()
