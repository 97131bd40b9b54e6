"""The server plugin JSON (server/plugin/types.py): request bodies as Go's json.Marshal writes
them, answers decoded with Go encoding/json semantics (frp §7.8)."""

from __future__ import annotations

import pytest

from aiofrp.proto import msg as m
from aiofrp.proto.errors import ProtocolError
from aiofrp.server.plugin.types import (
    NULL,
    LoginContent,
    NewUserConnContent,
    Op,
    UserInfo,
    decode_content,
    decode_user,
    parse_response,
    request_body,
    with_user,
)

USER = UserInfo(user="u", metas={"b": "2", "a": "1"}, run_id="r")


def test_user_info_has_no_omitempty() -> None:
    assert m.go_json(UserInfo()) == b'{"user":"","metas":null,"run_id":""}'
    assert m.go_json(UserInfo.of(m.Login(), "id")) == b'{"user":"","metas":null,"run_id":"id"}'


def test_with_user_puts_user_first_and_the_message_inline() -> None:
    assert with_user(USER, m.CloseProxy(proxy_name="p")) == (
        b'{"user":{"user":"u","metas":{"a":"1","b":"2"},"run_id":"r"},"proxy_name":"p"}'
    )
    # an empty message: only the user (no dangling comma)
    assert with_user(USER, m.Ping()) == b'{"user":{"user":"u","metas":{"a":"1","b":"2"},"run_id":"r"}}'


def test_login_content_and_request_body() -> None:
    content = LoginContent(version="0.65.0", user="u", client_address="1.2.3.4:5")
    assert m.go_json(content) == b'{"version":"0.65.0","user":"u","client_spec":{},"client_address":"1.2.3.4:5"}'
    assert request_body(Op.LOGIN, b"{}") == b'{"version":"0.1.0","op":"Login","content":{}}'


def test_new_user_conn_content() -> None:
    assert m.go_json(NewUserConnContent(UserInfo(), "p", "tcp", "")) == (
        b'{"user":{"user":"","metas":null,"run_id":""},"proxy_name":"p","proxy_type":"tcp","remote_addr":""}'
    )


def test_go_escapes_html_characters() -> None:
    assert m.go_json(m.CloseProxy(proxy_name="<a&b>")) == b'{"proxy_name":"\\u003ca\\u0026b\\u003e"}'


def test_answer_keys_are_case_insensitive_and_unknown_keys_ignored() -> None:
    res = parse_response(b'{"Reject": true, "REJECT_REASON": "no", "extra": 1}', Op.LOGIN)
    assert res.reject and res.reject_reason == "no" and not res.unchange and res.content is None


def test_missing_content_is_a_zero_content() -> None:
    res = parse_response(b'{"unchange": false}', Op.NEW_PROXY)
    assert decode_content(m.NewProxy, res) == m.NewProxy()
    assert decode_user(res) == UserInfo()


def test_null_content_is_refused() -> None:
    res = parse_response(b'{"unchange": false, "Content": null}', Op.NEW_PROXY)
    assert res.content is NULL
    with pytest.raises(ProtocolError, match='"content": null'):
        decode_content(m.NewProxy, res)


def test_rewritten_content_decodes_like_go() -> None:
    res = parse_response(b'{"content": {"user": {"USER": "x", "metas": {"k": "v"}}, "Remote_Port": 7, "proxy_name": "p"}}',
                         Op.NEW_PROXY)
    assert decode_content(m.NewProxy, res) == m.NewProxy(proxy_name="p", remote_port=7)
    assert decode_user(res) == UserInfo(user="x", metas={"k": "v"})


@pytest.mark.parametrize(("body", "why"), [
    (b"not json", "invalid character 'o' in literal null (expecting 'u')"),
    (b"", "unexpected end of JSON input"),
    (b"[]", "json: cannot unmarshal array into Go value of type server.Response"),
    (b'"x"', "json: cannot unmarshal string into Go value of type server.Response"),
    (b'{"reject": 1}', "json: cannot unmarshal number into Go struct field Response.reject of type bool"),
])
def test_bad_answers_in_go_words(body: bytes, why: str) -> None:
    """Go's json.Unmarshal texts, which frps logs (server/plugin/gojson.py)."""
    with pytest.raises(ProtocolError) as exc:
        parse_response(body, Op.NEW_PROXY)
    assert str(exc.value) == why


def test_bad_content_is_refused_whatever_unchange_says() -> None:
    """Go decodes the content into the op's type before it looks at reject/unchange: a content of
    the wrong shape fails the request even with "unchange": true (ours let it through before)."""
    cases = [
        (b'{"unchange": true, "content": [1]}', Op.PING,
         "json: cannot unmarshal array into Go struct field Response.content of type server.PingContent"),
        (b'{"unchange": true, "content": {"remote_port": "x"}}', Op.NEW_PROXY,
         "json: cannot unmarshal string into Go struct field NewProxyContent.content.NewProxy.remote_port of type int"),
        (b'{"reject": true, "reject_reason": "no", "content": {"user": "x"}}', Op.NEW_PROXY,
         "json: cannot unmarshal string into Go struct field NewProxyContent.content.user of type server.UserInfo"),
    ]
    for body, op, why in cases:
        with pytest.raises(ProtocolError) as exc:
            parse_response(body, op)
        assert str(exc.value) == why
    # the same content is fine where the op's type has no such field
    res = parse_response(b'{"content": {"remote_port": "x"}}', Op.PING)
    assert decode_content(m.Ping, res) == m.Ping()
    assert decode_user(parse_response(b'{"content": {"user": {"user": "x"}}}', Op.PING)) == UserInfo(user="x")


def test_frps_without_plugins_imports_no_http_client() -> None:
    """Idle memory: aiohttp and urllib.request are imported only for configured plugins."""
    import subprocess
    import sys

    code = (
        "import sys, aiofrp.cli.frps, aiofrp.server.service\n"
        "from aiofrp.server.plugin import Manager\n"
        "Manager([])\n"
        "print(sorted(m for m in ('aiohttp', 'urllib.request') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out
