"""Go's text for a dial or a listen that failed (``net.OpError``), so that log lines and error pages
read as Go frp's: ``dial tcp 127.0.0.1:8080: connect: connection refused``, ``dial tcp 10.0.0.9:22:
i/o timeout``, ``listen tcp 127.0.0.1:7000: bind: address already in use``."""

from __future__ import annotations

import os


def dial_error_text(addr: str, exc: BaseException, network: str = "tcp") -> str:
    """``addr`` is the dialled ``host:port`` as Go joins it (``[::1]:80`` for IPv6)."""
    if isinstance(exc, TimeoutError):
        return f"dial {network} {addr}: i/o timeout"
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


__all__ = ["dial_error_text", "listen_error_text"]
