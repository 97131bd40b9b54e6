"""Answers that frp's web servers (frps dashboard, frpc admin API) write as Go's net/http and
gorilla/mux do: a path that is not clean is redirected before any route (or auth) runs, ``/``
redirects with net/http's small HTML body, and the UI's file server redirects ``.../index.html``
and directories as ``http.FileServer`` does."""

from __future__ import annotations

import html
import posixpath

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL


async def go_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: the headers Go's net/http writes. No ``Server`` (aiohttp
    adds its name and version), and ``X-Content-Type-Options: nosniff`` on what ``http.Error``
    writes (the 401 challenge, ``404 page not found``)."""
    response.headers.popall(hdrs.SERVER, None)
    if response.status in (401, 404) and response.content_type == "text/plain":
        response.headers.setdefault("X-Content-Type-Options", "nosniff")


def go_redirect(location: str, status: int = 301, method: str = "GET") -> web.Response:
    """Go's ``http.Redirect``: the status and ``Location``; to a GET also a short HTML body linking
    it (``text/html; charset=utf-8``, which a HEAD gets too, without the body)."""
    if method not in ("GET", "HEAD"):
        return web.Response(status=status, headers={"Location": location})
    reason = {301: "Moved Permanently", 302: "Found"}.get(status, "")
    return web.Response(status=status, headers={"Location": location},
                        body=f'<a href="{html.escape(location)}">{reason}</a>.\n\n'.encode(),
                        content_type="text/html", charset="utf-8")


def clean_path(path: str) -> str:
    """gorilla/mux's cleanPath: Go's ``path.Clean`` (no ``.``/``..`` segments, no doubled
    slashes) keeping a trailing slash."""
    if not path.startswith("/"):
        path = "/" + path
    # posixpath keeps exactly two leading slashes (POSIX allows them a meaning); Go's Clean does not
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def unclean_redirect(request: web.Request) -> web.Response | None:
    """The 301 gorilla/mux answers, to any method and before routing (so without auth), for a path
    that is not clean (``//``, ``/api/../api/status``): ``Location`` the clean path, query kept, no
    body. None for a clean path."""
    path = request.path
    cleaned = clean_path(path)
    if cleaned == path:
        return None
    return web.Response(status=301, headers={"Location": str(URL.build(path=cleaned,
                                                                       query_string=request.query_string))})


def file_server_redirect(request: web.Request, is_dir: bool | None) -> web.Response | None:
    """``http.FileServer``'s redirects: ``.../index.html`` -> ``./`` (whether or not it exists),
    a directory without its trailing slash -> ``name/``, a file with one -> ``../name``
    (``is_dir``: what the request names, None if nothing); relative, query kept, no body."""
    path = request.path
    if path.endswith("/index.html"):
        target = "./"
    elif is_dir is None:
        return None
    elif is_dir and not path.endswith("/"):
        target = posixpath.basename(path) + "/"
    elif not is_dir and path.endswith("/"):
        target = "../" + posixpath.basename(path.rstrip("/"))
    else:
        return None
    if request.query_string:
        target += "?" + request.query_string
    return web.Response(status=301, headers={"Location": target})


def go_router(max_body: int, too_large: str) -> Middleware:
    """aiohttp middleware, the outermost (auth runs inside it): Go's router around the routes.
    gorilla/mux's 301 for a path that is not clean; for what no route serves 404 ``404 page not
    found`` and 405 empty, whatever the credentials (Go matches routes before its auth middleware).
    A body over ``max_body`` gets 413 ``too_large`` (aiofrp's limit; Go reads any size)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        redirect = unclean_redirect(request)
        if redirect is not None:
            return redirect
        if (request.content_length or 0) > max_body:
            return web.Response(status=413, text=too_large)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.Response(status=404, text="404 page not found\n")
        except web.HTTPMethodNotAllowed:
            return web.Response(status=405)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=too_large)

    return middleware


__all__ = ["clean_path", "file_server_redirect", "go_redirect", "go_router", "unclean_redirect"]
