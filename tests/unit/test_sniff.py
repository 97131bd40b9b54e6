"""proto/sniff.py: Go's http.DetectContentType (WHATWG MIME sniffing), case by case."""

from __future__ import annotations

import pytest

from aiofrp.proto.sniff import SNIFF_LEN, detect_content_type

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@pytest.mark.parametrize(("data", "expected"), [
    # nothing, text and binary
    (b"", TEXT),
    (b"boom", TEXT),
    (b"\n\t  hello", TEXT),
    (b"abc\x00def", "application/octet-stream"),
    (b"a\x1b[0m", TEXT),  # ESC is not a binary byte
    (b"\x01\x02\x03", "application/octet-stream"),
    # HTML: after white space, case-insensitive, ended by a space or '>'
    (b"<!DOCTYPE HTML>", HTML),
    (b"  \r\n<html><body>", HTML),
    (b"<HtMl lang=en>", HTML),
    (b"<p>para", HTML),
    (b"<a href=x>", HTML),
    (b"<!-- note -->", HTML),
    (b"<b>", HTML),
    (b"<br/>", TEXT),  # '/' does not end a tag name here
    (b"<ab>", TEXT),
    (b"<html", TEXT),  # no terminating byte yet
    # XML, PDF, PostScript, byte order marks
    (b" <?xml version='1.0'?>", "text/xml; charset=utf-8"),
    (b"%PDF-1.7", "application/pdf"),
    (b"%!PS-Adobe-3.0", "application/postscript"),
    (b"\xfe\xff\x00h", "text/plain; charset=utf-16be"),
    (b"\xff\xfeh\x00", "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbfhi", "text/plain; charset=utf-8"),
    # images
    (b"\x00\x00\x01\x00\x01\x00", "image/x-icon"),
    (b"BM\x00\x00", "image/bmp"),
    (b"GIF87a..", "image/gif"),
    (b"GIF89a..", "image/gif"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"\xff\xd8\xff\xe0", "image/jpeg"),
    # audio and video
    (b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    (b"ID3\x03", "audio/mpeg"),
    (b"OggS\x00\x02", "application/ogg"),
    (b"MThd\x00\x00\x00\x06\x00\x01", "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video/avi"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wave"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
    (b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00iso2", "application/octet-stream"),  # no mp4 brand
    (b"\x1a\x45\xdf\xa3\x01", "video/webm"),
    # fonts and archives
    (b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00\x00\x0b", "font/ttf"),
    (b"OTTO\x00", "font/otf"),
    (b"ttcf\x00", "font/collection"),
    (b"wOFF\x00", "font/woff"),
    (b"wOF2\x00", "font/woff2"),
    (b"\x1f\x8b\x08\x00", "application/x-gzip"),
    (b"PK\x03\x04\x14", "application/zip"),
    (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
])
def test_detect_content_type(data: bytes, expected: str):
    assert detect_content_type(data) == expected
    assert detect_content_type(memoryview(data)) == expected


def test_only_the_first_512_bytes_count():
    assert detect_content_type(b"a" * SNIFF_LEN + b"\x00") == TEXT
    assert detect_content_type(b"a" * (SNIFF_LEN - 1) + b"\x00") == "application/octet-stream"
