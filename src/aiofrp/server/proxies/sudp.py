"""sudp proxy: on frps exactly an stcp proxy (visitor checks, work connection, byte copy); the
UDPPacket messages inside are spoken by the visitor frpc and the provider frpc only (frp §5.9)."""

from __future__ import annotations

from . import register
from .stcp import STCPProxy


@register("sudp")
class SUDPProxy(STCPProxy):
    """Secret udp proxy."""
