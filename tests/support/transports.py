"""Helpers for the transport tests (kcp, quic, websocket, wss): config keys per transport, a TLS
terminator (what sits in front of Go frps for ``wss``), and a lossy UDP relay (KCP under loss
where the machine has no netem)."""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

from .ports import LOCALHOST, free_port

TRANSPORTS = ("kcp", "quic", "websocket", "wss")


def server_ports() -> tuple[int, int]:
    """(bindPort, quicBindPort); kcpBindPort is bindPort's number (UDP), as in frp's e2e tests
    (:func:`free_port` checks TCP and UDP)."""
    return free_port(), free_port()


def frps_keys(bind: int, quic: int) -> dict[str, Any]:
    return {"kcpBindPort": bind, "quicBindPort": quic}


def frpc_keys(protocol: str, bind: int, quic: int, *, tls: bool = True) -> tuple[int, dict[str, Any]]:
    """(serverPort, frpc keys) for ``protocol``."""
    port = quic if protocol == "quic" else bind
    return port, {"transport.protocol": protocol, "transport.tls.enable": tls}


def tls_files(tmp: Path) -> tuple[str, str]:
    """A self-signed certificate and key written under ``tmp``."""
    from aiofrp.net.tls import self_signed_pair

    cert, key = self_signed_pair()
    c, k = tmp / "term.crt", tmp / "term.key"
    c.write_bytes(cert)
    k.write_bytes(key)
    return str(c), str(k)


class TLSTerminator:
    """Loopback TLS server forwarding the plaintext to ``target_port`` (nginx in front of Go frps
    for ``wss``). Threads; :meth:`close` ends everything."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._dir = tempfile.TemporaryDirectory()
        cert, key = tls_files(Path(self._dir.name))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._ls = socket.socket()
        self._ls.bind((LOCALHOST, 0))
        self._ls.listen(64)
        self.port = self._ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
            up = socket.create_connection((LOCALHOST, self.target_port), timeout=5)
            up.settimeout(None)
        except OSError:
            conn.close()
            return
        with self._lock:
            self.connections += 1
            self._socks += [tls, up]
        threading.Thread(target=self._pump, args=(tls, up), daemon=True).start()
        self._pump(up, tls)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._ls.close()
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.close()
        self._dir.cleanup()


class LossyUDPRelay:
    """Forwards UDP between one client and ``target_port``, dropping each datagram with
    probability ``loss`` in both directions (seeded: runs are repeatable). Counts what it dropped."""

    def __init__(self, target_port: int, loss: float, seed: int = 1) -> None:
        self.target = (LOCALHOST, target_port)
        self.loss = loss
        self.rnd = random.Random(seed)
        self.dropped = 0
        self.forwarded = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.bind((LOCALHOST, 0))
        self.up.connect(self.target)
        for sock in (self.sock, self.up):  # bursts of a KCP window must not overflow the relay
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.client: tuple[str, int] | None = None
        self._stop = False
        threading.Thread(target=self._down, daemon=True).start()
        threading.Thread(target=self._up, daemon=True).start()

    def _keep(self) -> bool:
        if self.rnd.random() < self.loss:
            self.dropped += 1
            return False
        self.forwarded += 1
        return True

    def _down(self) -> None:  # client -> server
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            self.client = addr
            if self._keep():
                with contextlib.suppress(OSError):
                    self.up.send(data)

    def _up(self) -> None:  # server -> client
        while not self._stop:
            try:
                data = self.up.recv(65536)
            except OSError:
                if self._stop:
                    return
                continue
            if self.client is not None and self._keep():
                with contextlib.suppress(OSError):
                    self.sock.sendto(data, self.client)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.up.close()
