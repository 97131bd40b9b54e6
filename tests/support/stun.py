"""A local STUN responder for xtcp tests (frp's default STUN server is public; tests never use it).

:class:`StunServer` binds UDP sockets on loopback: the primary ``host:port`` and an alternate
port ``host:alt_port`` (plus both ports on ``alt_host`` when given, e.g. 127.0.0.2). Every Binding
request is answered with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS (the sender's address),
RESPONSE-ORIGIN/SOURCE-ADDRESS, and OTHER-ADDRESS/CHANGED-ADDRESS = ``(alt_host or host):alt_port``
— what both our frpc and Go frpc need to see two mapped addresses. CHANGE-REQUEST is honoured
by answering from the socket with the other port and/or the other IP; a change of IP without
``alt_host`` is not answered (like a server without a second address).

``silent=True`` binds the same sockets but never answers (STUN discovery then times out).
Point frpc at it with ``natHoleStunServer = "127.0.0.1:<port>"``.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Self

import pytest

from aiofrp.proto import stun


class StunServer:
    def __init__(self, host: str = "127.0.0.1", *, alt_host: str | None = None, silent: bool = False) -> None:
        self.host = host
        self.alt_host = alt_host
        self.silent = silent
        self.port = 0
        self.alt_port = 0
        self.requests = 0
        self.change_requests = 0
        self._socks: dict[tuple[str, int], socket.socket] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        hosts = [self.host] + ([self.alt_host] if self.alt_host else [])
        for _ in range(20):  # find two ports that are free on every host
            socks: dict[tuple[str, int], socket.socket] = {}
            try:
                first = self._bind(self.host, 0)
                port = first.getsockname()[1]
                socks[(self.host, port)] = first
                second = self._bind(self.host, 0)
                alt_port = second.getsockname()[1]
                socks[(self.host, alt_port)] = second
                for h in hosts[1:]:
                    for p in (port, alt_port):
                        socks[(h, p)] = self._bind(h, p)
            except OSError:
                for s in socks.values():
                    s.close()
                continue
            self._socks, self.port, self.alt_port = socks, port, alt_port
            break
        else:
            raise OSError("no free UDP port pair for the STUN responder")
        # registered here, before the thread runs: a thread that started late (a loaded machine)
        # must not register sockets that stop() already closed
        sel = self._sel = selectors.DefaultSelector()
        for key, s in self._socks.items():
            sel.register(s, selectors.EVENT_READ, key)
        self._thread = threading.Thread(target=self._serve, args=(sel,), name="stun-responder", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, port))
        s.setblocking(False)
        return s

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)  # it sees the flag within one 0.1 s select
        if self._sel is not None:
            self._sel.close()
        for s in self._socks.values():
            s.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, sel: selectors.BaseSelector) -> None:
        while not self._stop.is_set():
            for skey, _ in sel.select(0.1):
                local = skey.data
                try:
                    data, peer = skey.fileobj.recvfrom(2048)  # type: ignore[union-attr]
                except OSError:
                    continue
                self._answer(local, data, peer)

    def _answer(self, local: tuple[str, int], data: bytes, peer: tuple[str, int]) -> None:
        try:
            req = stun.parse(data)
            flags = req.change_flags()
        except stun.StunError:
            return
        if req.msg_type != stun.BINDING_REQUEST:
            return
        self.requests += 1
        if flags:
            self.change_requests += 1
        if self.silent:
            return
        ip, port = local
        if flags & stun.CHANGE_PORT:
            port = self.alt_port if port == self.port else self.port
        if flags & stun.CHANGE_IP:
            if not self.alt_host:
                return
            ip = self.alt_host if ip == self.host else self.host
        sender = self._socks.get((ip, port))
        if sender is None:
            return
        resp = stun.binding_response(req, peer, other=(self.alt_host or self.host, self.alt_port), origin=(ip, port),
                                     software="aiofrp-test-stun")
        try:
            sender.sendto(resp.encode(fingerprint=True), peer)
        except OSError:
            pass


@pytest.fixture(scope="module")
def stun_server():
    """A :class:`StunServer` on loopback for the tests of one module."""
    with StunServer() as s:
        yield s
