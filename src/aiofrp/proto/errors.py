"""Exceptions raised by the sans-I/O protocol cores."""


class ProtocolError(Exception):
    """The peer violated the wire protocol; the message says what and why.

    The connection the bytes came from cannot be used any further.
    """


class TransportError(ConnectionError):
    """A transport under frp (the websocket framing) broke on the peer's bytes: the connection
    ends as failed, not as the peer hanging up."""
