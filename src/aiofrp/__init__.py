"""aiofrp: a pure-Python, wire-compatible implementation of frp."""

__version__ = "0.1.0"
# The frp release whose wire protocol and behaviour we follow; sent as Login.version / LoginResp.version.
FRP_VERSION = "0.65.0"


def version_text() -> str:
    """What ``--version`` prints and the start-up log line says: ``aiofrp 0.1.0 (frp 0.65.0 compatible)``.
    The version on the wire stays :data:`FRP_VERSION`."""
    return f"aiofrp {__version__} (frp {FRP_VERSION} compatible)"
