"""Content-type sniffing as Go's ``http.DetectContentType`` does it (the WHATWG MIME Sniffing
algorithm, https://mimesniff.spec.whatwg.org/): frps's vhost sets the guessed type on a response
whose local service sent none, as Go's ``net/http`` server does.

Only the first :data:`SNIFF_LEN` bytes are looked at. The answer is always a valid MIME type;
``application/octet-stream`` when nothing matches and the bytes look binary.
"""

from __future__ import annotations

__all__ = ["SNIFF_LEN", "detect_content_type"]

SNIFF_LEN = 512

_WS = b"\t\n\x0c\r "
_BINARY = frozenset(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a"
                    b"\x1c\x1d\x1e\x1f")
_HTML = "text/html; charset=utf-8"

# Tags that make a document HTML when they open it (after white space); case-insensitive, followed
# by a space or ">".
_HTML_TAGS = (
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT", b"<TABLE", b"<A",
    b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
)

# (pattern, mask or None for an exact prefix, skip leading white space, type), in the spec's order.
_SIGNATURES: tuple[tuple[bytes, bytes | None, bool, str], ...] = (
    (b"<?xml", None, True, "text/xml; charset=utf-8"),
    (b"%PDF-", None, False, "application/pdf"),
    (b"%!PS-Adobe-", None, False, "application/postscript"),
    # byte order marks
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", False, "text/plain; charset=utf-8"),
    # images
    (b"\x00\x00\x01\x00", None, False, "image/x-icon"),
    (b"\x00\x00\x02\x00", None, False, "image/x-icon"),
    (b"BM", None, False, "image/bmp"),
    (b"GIF87a", None, False, "image/gif"),
    (b"GIF89a", None, False, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff", False, "image/webp"),
    (b"\x89PNG\r\n\x1a\n", None, False, "image/png"),
    (b"\xff\xd8\xff", None, False, "image/jpeg"),
    # audio and video
    (b"FORM\x00\x00\x00\x00AIFF", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", False, "audio/aiff"),
    (b"ID3", None, False, "audio/mpeg"),
    (b"OggS\x00", None, False, "application/ogg"),
    (b"MThd\x00\x00\x00\x06", None, False, "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", False, "video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", False, "audio/wave"),
    (b"", None, False, "video/mp4"),  # placeholder: the box check below
    (b"\x1a\x45\xdf\xa3", None, False, "video/webm"),
    # fonts
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", False, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", None, False, "font/ttf"),
    (b"OTTO", None, False, "font/otf"),
    (b"ttcf", None, False, "font/collection"),
    (b"wOFF", None, False, "font/woff"),
    (b"wOF2", None, False, "font/woff2"),
    # archives
    (b"\x1f\x8b\x08", None, False, "application/x-gzip"),
    (b"PK\x03\x04", None, False, "application/zip"),
    (b"Rar!\x1a\x07\x00", None, False, "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", None, False, "application/x-rar-compressed"),
    (b"\x00asm", None, False, "application/wasm"),
)


def _is_mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 or data[4:8] != b"ftyp":
        return False
    # the compatible brands (12..16 is the major brand's version)
    return any(st != 12 and data[st:st + 3] == b"mp4" for st in range(8, box, 4))


def _html(data: bytes, start: int) -> bool:
    for tag in _HTML_TAGS:
        end = start + len(tag)
        if len(data) <= end:  # the tag and one terminating byte
            continue
        if data[start:end].upper() == tag and data[end] in b" >":
            return True
    return False


def detect_content_type(data: bytes | memoryview) -> str:
    """The MIME type of a body starting with ``data`` (Go's ``http.DetectContentType``)."""
    data = bytes(data[:SNIFF_LEN])
    first = 0
    n = len(data)
    while first < n and data[first] in _WS:
        first += 1
    if _html(data, first):
        return _HTML
    for pattern, mask, skip_ws, ctype in _SIGNATURES:
        if not pattern:
            if _is_mp4(data):
                return ctype
            continue
        at = first if skip_ws else 0
        if mask is None:
            if data.startswith(pattern, at):
                return ctype
            continue
        if n - at < len(pattern):
            continue
        if all((data[at + i] & m) == p for i, (p, m) in enumerate(zip(pattern, mask, strict=True))):
            return ctype
    if any(b in _BINARY for b in data[first:]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
