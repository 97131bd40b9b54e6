"""Addresses as Go prints them: ``host:port``, with IPv6 hosts in brackets (``[::1]:8080``).

Every address aiofrp logs or reports (``/api/status``, ``frpc status``) goes through here.
"""

from __future__ import annotations


def join_host_port(host: str, port: int | str) -> str:
    """Go's ``net.JoinHostPort``: ``[host]:port`` when ``host`` contains a colon (IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fmt_addr(addr: object) -> str:
    """A socket address tuple (``peername``, ``sockname``; IPv4 or IPv6) as ``host:port``;
    anything else (``None``, a path) as ``str()``."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        if host[:7].lower() == "::ffff:" and "." in host:  # IPv4 client of a dual-stack listener
            host = host[7:]
        return join_host_port(host, addr[1])
    return str(addr)


def split_host_port(addr: str) -> tuple[str, int]:
    """Go's ``net.SplitHostPort`` plus a numeric port: ``host:port`` / ``[ip6]:port`` -> (host, port).
    ValueError with Go's wording (``address x: missing port in address``) when malformed."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"address {addr}: missing port in address")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"address {addr}: missing ']' in address")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {addr}: too many colons in address")
    if not port.isdigit() or not port.isascii() or int(port) > 65535:
        raise ValueError(f"address {addr}: invalid port")
    return host, int(port)
