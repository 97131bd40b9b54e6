"""A blocking HTTP/2 client over one TCP connection with prior knowledge (the ``h2`` library), for
the tests of frps's cleartext HTTP/2 on the vhost HTTP port."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from support.procs import LOCALHOST

__all__ = ["Answer", "H2Client"]


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: bool = False


def _text(v: str | bytes) -> str:
    return v.decode("latin-1") if isinstance(v, bytes) else v


class H2Client:
    """A blocking HTTP/2 client over one TCP connection (prior knowledge)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOCALHOST, port), timeout=20)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(4 << 20)  # the connection window; streams keep 64 KiB
        self.answers: dict[int, Answer] = {}
        self.uploads: dict[int, bytes] = {}
        self.sock.sendall(self.conn.data_to_send())

    def request(self, method: str, host: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes | None = None) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":scheme", "http"), (":authority", host),
                                     (":path", path), *(headers or [])], end_stream=body is None)
        self.answers[sid] = Answer()
        if body is not None:
            self.uploads[sid] = body
        self._pump_uploads()
        self.sock.sendall(self.conn.data_to_send())
        return sid

    def _pump_uploads(self) -> None:
        for sid, rest in list(self.uploads.items()):
            while rest:
                n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, len(rest))
                if n <= 0:
                    break
                self.conn.send_data(sid, rest[:n])
                rest = rest[n:]
            if rest:
                self.uploads[sid] = rest
            else:
                del self.uploads[sid]
                self.conn.end_stream(sid)

    def wait(self, *sids: int) -> list[Answer]:
        while not all(self.answers[s].ended or self.answers[s].reset for s in sids):
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed by frps")
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    hdrs = {_text(k): _text(v) for k, v in ev.headers or []}
                    a = self.answers[ev.stream_id]
                    a.status = int(hdrs.pop(":status"))
                    a.headers = hdrs
                elif isinstance(ev, h2.events.DataReceived):
                    self.answers[ev.stream_id].body += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.answers[ev.stream_id].ended = True
                elif isinstance(ev, h2.events.StreamReset):
                    self.answers[ev.stream_id].reset = True
            self._pump_uploads()
            self.sock.sendall(self.conn.data_to_send())
        return [self.answers[s] for s in sids]

    def close(self) -> None:
        self.sock.close()
