"""A small client of frpc's admin API (``webServer``) for tests: any method, Basic auth, http or
https (certificate not checked: the tests' admin servers use self-signed certificates)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from .ports import LOCALHOST

__all__ = ["AdminClient", "Reply"]


class Reply:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


class AdminClient:
    def __init__(self, port: int, user: str = "", password: str = "", *, https: bool = False,
                 host: str = LOCALHOST) -> None:
        self.base = f"{'https' if https else 'http'}://{host}:{port}"
        self.user, self.password = user, password
        self.ctx: ssl.SSLContext | None = None
        if https:
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE
        self.opener = urllib.request.build_opener(
            _NoRedirect(), urllib.request.HTTPSHandler(context=self.ctx) if self.ctx else urllib.request.HTTPHandler())

    def request(self, method: str, path: str, body: bytes | str | None = None, *, auth: bool | tuple[str, str] = True,
                timeout: float = 10.0) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if auth:
            user, pwd = auth if isinstance(auth, tuple) else (self.user, self.password)
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pwd}".encode()).decode())
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return Reply(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), dict(exc.headers))

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def status(self) -> dict[str, dict[str, Any]]:
        """``/api/status`` flattened: proxy name -> its entry."""
        r = self.get("/api/status")
        assert r.status == 200, r
        return {p["name"]: p for items in r.json().values() for p in items}
