"""Answers that frp's web servers (frps dashboard, frpc admin API) write as Go's net/http does."""

from __future__ import annotations

import html

from aiohttp import web


def go_redirect(location: str, status: int = 301) -> web.Response:
    """Go's ``http.Redirect`` to a GET: the status, ``Location`` and a short HTML body linking it."""
    reason = {301: "Moved Permanently", 302: "Found"}.get(status, "")
    return web.Response(status=status, headers={"Location": location},
                        body=f'<a href="{html.escape(location)}">{reason}</a>.\n\n'.encode(),
                        content_type="text/html", charset="utf-8")


__all__ = ["go_redirect"]
