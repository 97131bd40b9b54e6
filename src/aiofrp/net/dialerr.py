"""Go's text for a dial or a listen that failed (``net.OpError``), so that log lines and error pages
read as Go frp's: ``dial tcp 127.0.0.1:8080: connect: connection refused``, ``dial tcp 10.0.0.9:22:
i/o timeout``, ``listen tcp 127.0.0.1:7000: bind: address already in use``."""

from __future__ import annotations

import os
import socket
from functools import cache

# getaddrinfo's "no such name" answers (glibc: EAI_NONAME, EAI_NODATA)
_NO_SUCH_HOST = frozenset(e for e in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
                          if e is not None)


@cache
def _resolver() -> str:
    """The first nameserver of /etc/resolv.conf as Go names it in a lookup error (``10.0.0.2:53``)."""
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    host = parts[1].split("%", 1)[0]
                    return f"[{host}]:53" if ":" in host else f"{host}:53"
    except OSError:
        pass
    return "127.0.0.1:53"  # Go's default when resolv.conf has none


def _host_of(addr: str) -> str:
    host = addr.rpartition(":")[0] if ":" in addr else addr
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def lookup_error_text(host: str, exc: socket.gaierror, network: str = "tcp") -> str:
    """Go's text for a dial whose host name did not resolve (a ``net.DNSError`` inside the
    ``OpError``, which then names no address): ``dial tcp: lookup no.invalid on 10.0.0.2:53: no
    such host``."""
    text = exc.strerror or str(exc)
    server = _resolver()
    # net/dns.py (frpc's dnsServer) names its server: "no such host (dnsServer 10.0.0.2:53)"
    head, sep, tail = text.rpartition(" (dnsServer ")
    if sep and tail.endswith(")"):
        return f"dial {network}: lookup {host} on {tail[:-1]}: {head}"
    if exc.errno in _NO_SUCH_HOST:
        reason = "no such host"
    elif exc.errno == getattr(socket, "EAI_AGAIN", None):  # the server did not answer well (SERVFAIL)
        reason = "server misbehaving"
    else:
        reason = text.lower()
    return f"dial {network}: lookup {host} on {server}: {reason}"


def dial_error_text(addr: str, exc: BaseException, network: str = "tcp") -> str:
    """``addr`` is the dialled ``host:port`` as Go joins it (``[::1]:80`` for IPv6)."""
    if isinstance(exc, TimeoutError):
        return f"dial {network} {addr}: i/o timeout"
    if isinstance(exc, socket.gaierror):
        return lookup_error_text(_host_of(addr), exc, network)
    if isinstance(exc, OSError) and exc.errno:
        reason = os.strerror(exc.errno)
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = str(exc) or type(exc).__name__
    return f"dial {network} {addr}: connect: {reason.lower()}"


def listen_error_text(addr: str, exc: BaseException, network: str = "tcp") -> str:
    """Go's text for a listen that failed: ``listen tcp 127.0.0.1:7000: bind: address already in
    use``; an address that does not resolve keeps its own reason."""
    if isinstance(exc, OSError) and exc.errno:
        return f"listen {network} {addr}: bind: {os.strerror(exc.errno).lower()}"
    return f"listen {network} {addr}: {exc}"


__all__ = ["dial_error_text", "listen_error_text", "lookup_error_text"]
