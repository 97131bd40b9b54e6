"""``auth.tokenSource``: file and exec sources, resolved at load time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aiofrp.config import (
    TOKEN_SOURCE_EXEC,
    ConfigError,
    ValueSource,
    load_server_config,
    parse_client_config,
    parse_server_config,
    resolve_value_source,
    token_source,
)
from aiofrp.config.base import FileSource

UNSAFE = {TOKEN_SOURCE_EXEC}


def exec_source(code: str, *extra: str, env: str = "") -> str:
    args = ", ".join(f'"{a}"' for a in ("-c", code, *extra))
    text = f'auth.tokenSource.type = "exec"\nauth.tokenSource.exec.command = "{sys.executable}"\n'
    text += f"auth.tokenSource.exec.args = [{args}]\n"
    return text + (f"auth.tokenSource.exec.env = [{env}]\n" if env else "")


def client_error(text: str, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_client_config(text, "frpc.toml", **kw)  # type: ignore[arg-type]
    return info.value


class TestFileSource:
    def test_file_content_is_trimmed_into_auth_token(self, tmp_path: Path) -> None:
        (tmp_path / "token").write_text("  s3cret\n\n", encoding="utf-8")
        text = f'auth.tokenSource.type = "file"\nauth.tokenSource.file.path = "{tmp_path / "token"}"\n'
        for parse in (parse_client_config, parse_server_config):
            cfg = parse(text)
            assert (cfg.auth.token, cfg.auth.token_source) == ("s3cret", None)

    def test_server_file_load(self, tmp_path: Path) -> None:
        (tmp_path / "token").write_text("abc", encoding="utf-8")
        conf = tmp_path / "frps.yaml"
        conf.write_text(
            f"auth:\n  tokenSource:\n    type: file\n    file:\n      path: {tmp_path / 'token'}\n"
        )
        assert load_server_config(str(conf)).auth.token == "abc"

    def test_missing_file(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope"
        err = client_error(f'auth.tokenSource.type = "file"\nauth.tokenSource.file.path = "{missing}"\n')
        assert (err.source, err.path) == ("frpc.toml", "auth.tokenSource.file.path")
        assert err.reason == f"cannot read token file {str(missing)!r}: No such file or directory"

    def test_not_resolved_on_request(self) -> None:
        text = 'auth.tokenSource.type = "file"\nauth.tokenSource.file.path = "/nonexistent/token"\n'
        cfg = parse_client_config(text, resolve_token_source=False)
        assert cfg.auth.token == "" and cfg.auth.token_source is not None
        assert (
            cfg.auth.token_source.file is not None and cfg.auth.token_source.file.path == "/nonexistent/token"
        )

    def test_token_and_source_are_exclusive(self) -> None:
        err = client_error('auth.token = "x"\n' + exec_source("print(1)"), allow_unsafe=UNSAFE)
        assert err.reason == "cannot specify both auth.token and auth.tokenSource"


class TestExecSource:
    def test_needs_the_unsafe_feature(self) -> None:
        err = client_error(exec_source("print('t')"))
        assert str(err) == 'frpc.toml: auth.tokenSource.exec: unsafe feature "TokenSourceExec" is not enabled'
        # validation refuses it even when the source would not be run now
        assert (
            client_error(exec_source("print('t')"), resolve_token_source=False).path
            == "auth.tokenSource.exec"
        )
        with pytest.raises(ConfigError, match="TokenSourceExec"):
            parse_server_config(exec_source("print('t')"))

    def test_stdout_is_the_token(self) -> None:
        code = "import os, sys; print('  tok-' + sys.argv[1] + '-' + os.environ['EXTRA'] + ' ')"
        text = exec_source(code, "arg", env='{ name = "EXTRA", value = "e" }')
        cfg = parse_client_config(text, allow_unsafe=UNSAFE)
        assert cfg.auth.token == "tok-arg-e" and cfg.auth.token_source is None
        assert parse_server_config(text, allow_unsafe=UNSAFE).auth.token == "tok-arg-e"

    def test_failing_command(self) -> None:
        err = client_error(
            exec_source("import sys; sys.stderr.write('boom'); sys.exit(3)"), allow_unsafe=UNSAFE
        )
        assert err.path == "auth.tokenSource.exec.command"
        assert err.reason == f"command {sys.executable!r} failed with exit status 3: boom"

    def test_missing_command(self) -> None:
        text = 'auth.tokenSource.type = "exec"\nauth.tokenSource.exec.command = "/nonexistent/cmd"\n'
        err = client_error(text, allow_unsafe=UNSAFE)
        assert err.reason == "cannot run command '/nonexistent/cmd': No such file or directory"

    def test_timeout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(token_source, "TOKEN_SOURCE_TIMEOUT", 0.3)
        err = client_error(exec_source("import time; time.sleep(10)"), allow_unsafe=UNSAFE)
        assert err.reason == f"command {sys.executable!r} timed out after 0.3 s"

    def test_default_timeout_is_ten_seconds(self) -> None:
        assert token_source.TOKEN_SOURCE_TIMEOUT == 10.0

    def test_oidc_token_source_exec_also_needs_the_feature(self) -> None:
        text = 'auth.method = "oidc"\nauth.oidc.tokenSource.type = "exec"\nauth.oidc.tokenSource.exec.command = "x"\n'
        assert client_error(text).path == "auth.oidc.tokenSource.exec"
        cfg = parse_client_config(text, allow_unsafe=UNSAFE, refuse_unsupported=False)
        assert cfg.auth.oidc.token_source is not None  # resolved by the OIDC login, not at load time


class TestResolveValueSource:
    def test_direct_use(self, tmp_path: Path) -> None:
        (tmp_path / "s").write_text("v\n")
        vs = ValueSource(type="file", file=FileSource(path=str(tmp_path / "s")))
        assert resolve_value_source(vs, "auth.oidc.tokenSource", "x") == "v"
        with pytest.raises(ConfigError, match="unsupported value source type 'env'"):
            resolve_value_source(ValueSource(type="env"), "p", "x")
