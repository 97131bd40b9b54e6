"""``[[visitors]]``: one struct per visitor type, sharing :class:`VisitorBaseConfig`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from .base import ConfigStruct, NatTraversalConfig, TaggedStruct, type_tag
from .plugin import AnyVisitorPlugin

VisitorBindPort = Annotated[int, msgspec.Meta(le=65535)]
"""A visitor's local port; negative = no listener (only connections handed over by other visitors)."""


class VisitorTransport(ConfigStruct):
    """A visitor's ``transport`` table."""

    use_encryption: bool = False
    use_compression: bool = False


class VisitorBaseConfig(TaggedStruct):
    """Keys every visitor type has."""

    KIND: ClassVar[str] = "visitor"

    name: str = ""
    enabled: bool = True
    transport: VisitorTransport = msgspec.field(default_factory=VisitorTransport)
    secret_key: str = ""
    server_user: str = ""
    """Owner of the target proxy; "" = this client's own user."""
    server_name: str = ""
    """Name of the target proxy (without the user prefix)."""
    bind_addr: str = "127.0.0.1"
    bind_port: VisitorBindPort = 0
    plugin: AnyVisitorPlugin | None = None


class STCPVisitorConfig(VisitorBaseConfig, tag="stcp"):
    """``type = "stcp"``."""


class SUDPVisitorConfig(VisitorBaseConfig, tag="sudp"):
    """``type = "sudp"``."""


class XTCPVisitorConfig(VisitorBaseConfig, tag="xtcp"):
    """``type = "xtcp"``: P2P, optionally falling back to another (stcp) visitor."""

    protocol: Literal["quic", "kcp"] = "quic"
    keep_tunnel_open: bool = False
    max_retries_an_hour: int = 8
    min_retry_interval: int = 90
    fallback_to: str = ""
    fallback_timeout_ms: int = 1000
    nat_traversal: NatTraversalConfig | None = None


AnyVisitorConfig = STCPVisitorConfig | SUDPVisitorConfig | XTCPVisitorConfig

VISITOR_TYPES: dict[str, type[VisitorBaseConfig]] = {
    type_tag(c): c for c in (STCPVisitorConfig, SUDPVisitorConfig, XTCPVisitorConfig)
}


def new_visitor_config(visitor_type: str, **fields: Any) -> VisitorBaseConfig:
    """Make the visitor struct for ``visitor_type`` (KeyError if frp has no such type)."""
    return VISITOR_TYPES[visitor_type](**fields)
