"""A tiny authoritative DNS server on 127.0.0.1 (UDP) for ``dnsServer``
tests: answers A/AAAA from a table, NXDOMAIN otherwise, and records every question it was asked.
Built on dnspython's message classes (the library frpc itself uses, net/dns.py)."""

from __future__ import annotations

import socket
import threading
from typing import Self

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .ports import LOCALHOST

__all__ = ["DNSServer"]


class DNSServer:
    """``records``: name (without the trailing dot) -> list of IPv4/IPv6 address strings."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.questions: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True, name="dns")
        self._t.start()

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def asked(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.questions)

    def _answer(self, wire: bytes) -> bytes | None:
        try:
            q = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 (a test server: garbage is ignored, as a real one would)
            return None
        resp = dns.message.make_response(q)
        resp.flags |= dns.flags.AA
        for question in q.question:
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            with self._lock:
                self.questions.append((name, rdtype))
            addrs = self.records.get(name)
            if addrs is None:
                resp.set_rcode(dns.rcode.NXDOMAIN)
                continue
            family_ok = [a for a in addrs if (":" in a) == (rdtype == "AAAA")]
            if rdtype in ("A", "AAAA") and family_ok:
                resp.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, family_ok))
        return resp.to_wire()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            out = self._answer(data)
            if out is not None:
                try:
                    self.sock.sendto(out, peer)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
