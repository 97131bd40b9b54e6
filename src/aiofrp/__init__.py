"""aiofrp: a pure-Python, wire-compatible implementation of frp."""

__version__ = "0.1.0"
# The frp release whose wire protocol and behaviour we follow; sent as Login.version / LoginResp.version.
FRP_VERSION = "0.65.0"
