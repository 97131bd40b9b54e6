"""Server manage plugins on their error and edge paths: Go frps 0.65.0 and ours side by side, the
same Go frpc 0.65.0 against each, each frps with its own mock plugin (frp §7.8; Go:
pkg/plugin/server/http.go, manager.go).

Compared, and the same on both sides:

* Bad answers to NewProxy (status 500/404, not JSON, empty, cut, trailing bytes, an array, a
  value of the wrong type anywhere, also in a ``content`` next to ``"unchange": true`` or
  ``"reject": true``, which Go decodes all the same): the proxy is refused with ``send NewProxy
  request to plugin error`` in frpc's log and ``/api/status``, and frps logs Go's own
  ``encoding/json`` text (``json: cannot unmarshal string into Go struct field
  NewProxyContent.content.NewProxy.remote_port of type int``). Unknown keys are ignored, keys
  match case-insensitively, invalid UTF-8 and lone surrogates become U+FFFD.
* Login: an answer ``null`` (or ``"unchange": false`` without ``content``) replaces the Login
  with a zero one, which then fails the token check; a bad content next to ``"unchange": true``
  refuses the login.
* NewUserConn: a bad content refuses the user connection (Go logs it at INFO level); two plugins:
  the second gets the content as the first rewrote it. CloseProxy: a bad answer is logged only,
  the port is freed.
* Requests that cannot be made: a ``path`` without its leading ``/`` (Go's ``url.Parse`` error),
  an address nobody listens on (``connect: connection refused``), a plugin that hangs up
  (``EOF``); the headers Go sends; ``https://`` with ``tlsVerify = false``; a slow plugin (Go has
  no timeout: 2 s are waited for).
* Ping and NewWorkConn rejections: what Go frpc logs (``pong message contains error: ...``,
  ``StartWorkConn contains error: ...``) and that the client logs in again after a refused ping.

Kept different on purpose (README, "Server manage plugins"): a rejection without
``reject_reason`` (Go sends an empty error: Go frpc logs ``login to server success, get run id
[]`` and spins, or ``start proxy success`` for a proxy frps refused; ours says ``rejected by
plugin [name]``); ``"content": null`` with ``"unchange": false`` (Go frps panics and exits); our
30 s bound per request. Not compared: TLS error texts (OpenSSL's checks run in another order than
Go's x509), and what a refused user connection sees when it had sent bytes already (Go closes a
socket with unread data: a reset; racy against the plugin's answer).
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from support.plugin_server import HANG_UP, SLOW, MockPlugin, Raw, fixed, reject, rewrite
from support.procs import EchoServer, free_port, frpc_config, frps_config, tcp_proxy, wait_port
from support.waits import poll

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

TOKEN = "plugin-audit-token"
SIDES = ("go", "ours")


def _frps(frp, side: str, extra: str):
    port = free_port()
    text = frps_config(port, token=TOKEN, extra=extra)
    frps = frp.go_frps(text) if side == "go" else frp.ours_frps(text)
    wait_port(port, 10)
    return frps, port


def _status(web: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/status", timeout=5) as resp:
        return json.loads(resp.read())


def _plugin_errors(log: str, op: str) -> dict[str, tuple[str, str]]:
    """reqid -> (level letter, error text) of frps's ``send <op> request to plugin`` lines."""
    rx = re.compile(rf"\[([IWE])\] \[[^\]]+\] \[reqid: ([0-9a-f]+)\] send {op} request to plugin \[\w+\] "
                    r"error: (.*)$", re.MULTILINE)
    return {m[2]: (m[1], m[3]) for m in rx.finditer(log)}


# -- NewProxy: bad answers ------------------------------------------------------------------------

SYNTAX = "send NewProxy request to plugin error"
NEW_PROXY_CASES: dict[str, tuple[Raw, str, str | None]] = {
    # name: (answer, frpc's error ("" = started), frps's logged reason (None: no error line))
    "s500": (Raw(b"internal", 500, "text/plain"), SYNTAX, "do http request error code: 500"),
    "s404": (Raw(b"404 page not found", 404, "text/plain"), SYNTAX, "do http request error code: 404"),
    "html": (Raw(b"<html>x</html>", 200, "text/html"), SYNTAX, "invalid character '<' looking for beginning of value"),
    "empty": (Raw(b""), SYNTAX, "unexpected end of JSON input"),
    "cut": (Raw(b'{"reject": false'), SYNTAX, "unexpected end of JSON input"),
    "tru": (Raw(b'{"reject": tru}'), SYNTAX, "invalid character '}' in literal true (expecting 'e')"),
    "trailing": (Raw(b'{"unchange": true} x'), SYNTAX, "invalid character 'x' after top-level value"),
    "keycolon": (Raw(b'{"reject" true}'), SYNTAX, "invalid character 't' after object key"),
    "array": (Raw(b"[]"), SYNTAX, "json: cannot unmarshal array into Go value of type server.Response"),
    "rejstr": (Raw(b'{"reject": "yes"}'), SYNTAX,
               "json: cannot unmarshal string into Go struct field Response.reject of type bool"),
    "cstr": (Raw(b'{"unchange": false, "content": "x"}'), SYNTAX,
             "json: cannot unmarshal string into Go struct field Response.content of type server.NewProxyContent"),
    "keptbad": (Raw(b'{"unchange": true, "content": 7}'), SYNTAX,
                "json: cannot unmarshal number into Go struct field Response.content of type server.NewProxyContent"),
    "rejbad": (Raw(b'{"reject": true, "reject_reason": "no", "content": [1]}'), SYNTAX,
               "json: cannot unmarshal array into Go struct field Response.content of type server.NewProxyContent"),
    "portstr": (Raw(b'{"unchange": true, "content": {"remote_port": "80"}}'), SYNTAX,
                ("json: cannot unmarshal string into Go struct field NewProxyContent.content.NewProxy.remote_port "
                "of type int")),
    "portflt": (Raw(b'{"unchange": true, "content": {"remote_port": 80.0}}'), SYNTAX,
                ("json: cannot unmarshal number 80.0 into Go struct field NewProxyContent.content.NewProxy.remote_port "
                "of type int")),
    "porthuge": (Raw(b'{"unchange": true, "content": {"Remote_Port": 99999999999999999999}}'), SYNTAX,
                 ("json: cannot unmarshal number 99999999999999999999 into Go struct field "
                 "NewProxyContent.content.NewProxy.remote_port of type int")),
    "userstr": (Raw(b'{"unchange": true, "content": {"user": "bob"}}'), SYNTAX,
                ("json: cannot unmarshal string into Go struct field NewProxyContent.content.user of type "
                "server.UserInfo")),
    "usermeta": (Raw(b'{"unchange": true, "content": {"user": {"metas": {"a": 1}}}}'), SYNTAX,
                 "json: cannot unmarshal number into Go struct field UserInfo.content.user.metas of type string"),
    "domains": (Raw(b'{"unchange": true, "content": {"custom_domains": "x.com"}}'), SYNTAX,
                ("json: cannot unmarshal string into Go struct field NewProxyContent.content.NewProxy.custom_domains "
                "of type []string")),
    "firsterr": (Raw(b'{"unchange": true, "content": {"group": true, "sk": 1}, "reject": 2}'), SYNTAX,
                 ("json: cannot unmarshal bool into Go struct field NewProxyContent.content.NewProxy.group of type "
                 "string")),
    "extra": (Raw(b'{"unchange": true, "foo": [1], "content": {"bar": {"x": 1}, "proxy_name": null}}'), "", None),
    "upper": (Raw(b'{"REJECT": true, "Reject_Reason": "upper case keys"}'), "upper case keys", None),
    "badutf8": (Raw(b'{"reject": true, "reject_reason": "a\xffb"}'), "a\ufffdb", None),
    "surrogate": (Raw(b'{"reject": true, "reject_reason": "c\\ud800d"}'), "c\ufffdd", None),
}


def _new_proxy_run(frp, side: str, echo: EchoServer) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
    with MockPlugin(f"p{side}") as plugin:
        plugin.rules["NewProxy"] = lambda c: NEW_PROXY_CASES[c["proxy_name"].removeprefix("u.")][0]
        frps, port = _frps(frp, side, plugin.toml("NewProxy"))
        web = free_port()
        frpc = frp.go_frpc(frpc_config(
            port, *(tcp_proxy(name, echo.port) for name in NEW_PROXY_CASES), token=TOKEN, user="u",
            extra=f'webServer.addr = "127.0.0.1"\nwebServer.port = {web}\n',
        ))
        n = len(NEW_PROXY_CASES)
        poll(lambda: len(re.findall(r"start error|start proxy success", frpc.log_text())) >= n, 20,
             "every proxy answered")
        status = {p["name"].removeprefix("u."): p for p in _status(web)["tcp"]}
        log = frps.log_text()
        errors = _plugin_errors(log, "NewProxy")
        by_case = {c.content["proxy_name"].removeprefix("u."): errors.get(c.headers["X-Frp-Reqid"], ("", ""))
                   for c in plugin.calls_of("NewProxy")}
        return by_case, status


def test_bad_new_proxy_answers(frp, echo_server: EchoServer) -> None:
    go_errors, go_status = _new_proxy_run(frp, "go", echo_server)
    our_errors, our_status = _new_proxy_run(frp, "ours", echo_server)
    for name, (_answer, frpc_error, reason) in NEW_PROXY_CASES.items():
        for side, errors, status in (("go", go_errors, go_status), ("ours", our_errors, our_status)):
            assert status[name]["err"] == frpc_error, (side, name, status[name])
            assert status[name]["status"] == ("running" if not frpc_error else "start error"), (side, name)
            assert errors[name] == (("W", reason) if reason else ("", "")), (side, name)


# -- Login ----------------------------------------------------------------------------------------

LOGIN_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any], str, str | None]] = {
    # user: (answer rule, frpc's login error, frps's logged plugin error)
    "nullbody": (fixed(Raw(b"null")), "token in login doesn't match token from configuration", None),
    "nocontent": (fixed({"unchange": False}), "token in login doesn't match token from configuration", None),
    "keptbad": (fixed({"unchange": True, "content": {"pool_count": "1"}}), "send Login request to plugin error",
                "json: cannot unmarshal string into Go struct field LoginContent.content.Login.pool_count of type int"),
    "rewrite": (rewrite(lambda c: c.update(user="renamed", metas={"tier": "gold"})), "", None),
}


def _login_run(frp, side: str) -> tuple[dict[str, str], dict[str, tuple[str, str]], list[dict[str, Any]]]:
    with MockPlugin(f"l{side}") as plugin:
        plugin.rules["Login"] = lambda c: LOGIN_CASES[c["user"]][0](c)
        frps, port = _frps(frp, side, plugin.toml("Login", "NewProxy"))
        frpcs = {user: frp.go_frpc(frpc_config(port, *([tcp_proxy("t", free_port())] if user == "rewrite" else []),
                                               token=TOKEN, user=user))
                 for user in LOGIN_CASES}

        def outcomes() -> dict[str, str] | None:
            out = {}
            for user, frpc in frpcs.items():
                m = re.search(r"connect to server error: (.*)$|login to server success", frpc.log_text(), re.MULTILINE)
                if m is None:
                    return None
                out[user] = m[1] or ""
            return out

        result = poll(outcomes, 20, "every frpc logged in or was refused")
        errors = _plugin_errors(frps.log_text(), "Login")
        by_case = {c.content["user"]: errors.get(c.headers["X-Frp-Reqid"], ("", "")) for c in plugin.calls_of("Login")}
        # what the rewritten Login became: the user in the NewProxy request of that client's proxy
        frpcs["rewrite"].wait_for_proxies("rewrite.t", timeout=15)
        return result, by_case, [c.content["user"] for c in plugin.calls_of("NewProxy")]


def test_login_edge_answers(frp) -> None:
    results = {side: _login_run(frp, side) for side in SIDES}
    for side, (frpc_errors, plugin_errors, new_proxy_users) in results.items():
        for user, (_rule, frpc_error, reason) in LOGIN_CASES.items():
            assert frpc_errors[user] == frpc_error, (side, user)
            assert plugin_errors[user] == (("W", reason) if reason else ("", "")), (side, user)
        # frps goes on with the rewritten user and metas (the proxy keeps the name frpc gave it)
        assert new_proxy_users[0]["user"] == "renamed" and new_proxy_users[0]["metas"] == {"tier": "gold"}, side


# -- NewUserConn chain, CloseProxy ----------------------------------------------------------------


def _user_conn_run(frp, side: str, echo: EchoServer) -> dict[str, Any]:
    with MockPlugin(f"a{side}") as first, MockPlugin(f"b{side}") as second:
        first.rules["NewUserConn"] = rewrite(lambda c: c.update(proxy_name="from-first", remote_addr="1.2.3.4:5"))
        second.rules["NewUserConn"] = lambda c: (
            {"unchange": True, "content": "x"} if c["proxy_name"] == "from-first" else {"unchange": True})
        second.rules["CloseProxy"] = fixed({"unchange": True, "content": [1]})
        frps, port = _frps(frp, side, first.toml("NewUserConn") + second.toml("NewUserConn", "CloseProxy"))
        remote = free_port()
        frpc = frp.go_frpc(frpc_config(port, tcp_proxy("t", echo.port, remote), token=TOKEN, user="u"))
        frpc.wait_for_proxies("u.t", timeout=15)
        with socket.create_connection(("127.0.0.1", remote), timeout=10) as user:  # sends nothing: no reset
            user.settimeout(10)
            seen = user.recv(100)
        rejected = frps.wait_for_log(r"\[u\.t\] the user conn \[127\.0\.0\.1:\d+\] was rejected, err:(.*)$", 10)[1]
        [call] = second.calls_of("NewUserConn")
        plugin_error = _plugin_errors(frps.log_text(), "NewUserConn").get(call.headers["X-Frp-Reqid"])
        frpc.stop()
        poll(lambda: second.calls_of("CloseProxy"), 10, "CloseProxy told")
        [close] = second.calls_of("CloseProxy")
        close_error = poll(lambda: _plugin_errors(frps.log_text(), "CloseProxy").get(close.headers["X-Frp-Reqid"]),
                           10, "CloseProxy error logged")
        # the port is free again: another client gets it
        again = frp.go_frpc(frpc_config(port, tcp_proxy("t", echo.port, remote), token=TOKEN, user="u"))
        again.wait_for_proxies("u.t", timeout=15)
        return {"seen": seen, "rejected": rejected, "plugin_error": plugin_error, "close_error": close_error,
                "second_got": {k: v for k, v in call.content.items() if k != "user"}}


def test_new_user_conn_chain_and_close_proxy(frp, echo_server: EchoServer) -> None:
    for side in SIDES:
        got = _user_conn_run(frp, side, echo_server)
        assert got["seen"] == b"", side
        assert got["rejected"] == "send NewUserConn request to plugin error", side
        assert got["plugin_error"] == ("I", ("json: cannot unmarshal string into Go struct field "
                                             "Response.content of type server.NewUserConnContent")), side
        assert got["second_got"] == {"proxy_name": "from-first", "proxy_type": "tcp", "remote_addr": "1.2.3.4:5"}, side
        assert got["close_error"] == ("W", ("json: cannot unmarshal array into Go struct field "
                                            "Response.content of type server.CloseProxyContent")), side


# -- requests that cannot be made; headers; https; a slow plugin -----------------------------------


def _transport_run(frp, side: str) -> dict[str, Any]:
    gone = free_port()
    with MockPlugin(f"h{side}") as hangup, MockPlugin(f"t{side}", tls=True) as tls:
        hangup.rules["CloseProxy"] = fixed(HANG_UP)
        tls.rules["Login"] = fixed(SLOW)
        tls.delay = 2.0
        extra = (
            f'\n[[httpPlugins]]\nname = "noslash"\naddr = "127.0.0.1:{hangup.port}"\npath = "handler"\n'
            'ops = ["CloseProxy"]\n'
            f'\n[[httpPlugins]]\nname = "gone"\naddr = "http://127.0.0.1:{gone}"\npath = "/h"\nops = ["CloseProxy"]\n'
            + hangup.toml("CloseProxy") + tls.toml("Login")
        )
        frps, port = _frps(frp, side, extra)
        frpc = frp.go_frpc(frpc_config(port, tcp_proxy("t", free_port()), token=TOKEN, user="u"))
        frpc.wait_for_proxies("u.t", timeout=20)
        [login] = tls.calls_of("Login")
        waited = time.monotonic() - login.at
        frpc.stop()
        close_error = re.compile(r"send CloseProxy request to plugin \[(\w+)\] error: (.*)$", re.MULTILINE)
        errors = poll(lambda: len(close_error.findall(frps.log_text())) == 3 and close_error.findall(frps.log_text()),
                      10, "three CloseProxy errors")
        masked = {name.removesuffix(side): re.sub(r":\d+", ":PORT", text) for name, text in errors}
        headers = {k: v for k, v in login.headers.items() if k not in ("Host", "X-Frp-Reqid")}
        return {"errors": masked, "headers": headers, "waited": waited, "path": hangup.calls[0].path}


def test_requests_that_fail_and_headers(frp) -> None:
    for side in SIDES:
        got = _transport_run(frp, side)
        assert got["errors"] == {
            "noslash": 'parse "http://127.0.0.1:PORThandler?op=CloseProxy&version=0.1.0": '
                       'invalid port ":PORThandler" after host',
            "gone": 'Post "http://127.0.0.1:PORT/h?op=CloseProxy&version=0.1.0": dial tcp 127.0.0.1:PORT: '
                    "connect: connection refused",
            "h": 'Post "http://127.0.0.1:PORT/handler?op=CloseProxy&version=0.1.0": EOF',
        }, side
        assert got["path"] == "/handler", side
        assert got["headers"] == {"User-Agent": "Go-http-client/1.1", "Content-Length": got["headers"]["Content-Length"],
                                  "Content-Type": "application/json", "Accept-Encoding": "gzip"}, side
        assert got["waited"] >= 1.9, side  # no timeout short of the plugin's 2 s


# -- Ping and NewWorkConn rejections --------------------------------------------------------------


def test_ping_and_work_conn_rejections(frp, echo_server: EchoServer) -> None:
    for side in SIDES:
        with MockPlugin(f"r{side}") as plugin:
            plugin.rules["Ping"] = reject("no ping")
            plugin.rules["NewWorkConn"] = reject("no work")
            frps, port = _frps(frp, side, plugin.toml("Ping", "NewWorkConn"))
            frpc = frp.go_frpc(frpc_config(
                port, tcp_proxy("t", echo_server.port), token=TOKEN, user="u",
                extra="transport.poolCount = 1\ntransport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 90\n",
            ))
            run_id = frpc.wait_login(15)
            frpc.wait_for_log(r"StartWorkConn contains error: no work", 15)
            frpc.wait_for_log(r"pong message contains error: no ping", 15)
            frps.wait_for_log(rf"\[{run_id}\] received invalid ping: no ping", 10)
            # Go frpc closes its control on a pong error and logs in again (the same run id)
            frps.wait_for_log(rf"\[{run_id}\] client exit success", 10)
            frpc.wait_login(15, since=frpc.log_text().index("pong message contains error") + 1)
