"""Exceptions raised by the sans-I/O protocol cores."""


class ProtocolError(Exception):
    """The peer violated the wire protocol; the message says what and why.

    The connection the bytes came from cannot be used any further.
    """
