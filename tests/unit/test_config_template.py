"""aiofrp.config.template: frp's Go text/template subset, rendered before any parsing."""

from __future__ import annotations

import pytest

from aiofrp.config import (
    ConfigError,
    NumberPair,
    parse_client_config,
    parse_number_range,
    parse_number_range_pair,
    parse_server_config,
    render_template,
)
from aiofrp.config.template import TemplateError, render

ENV = {"FRP_TOKEN": "s3cret", "PORTS": "1000-1002", "EMPTY": ""}


def r(text: str) -> str:
    return render(text, ENV)


class TestRendering:
    @pytest.mark.parametrize(
        "text",
        ["", "plain = 1\n", "a }} b { c", '[[proxies]]\nname = "x"\n', "{ not an action }"],
    )
    def test_plain_text_is_untouched(self, text: str) -> None:
        assert r(text) == text

    def test_env(self) -> None:
        assert r('auth.token = "{{ .Envs.FRP_TOKEN }}"') == 'auth.token = "s3cret"'
        assert r("{{.Envs.FRP_TOKEN}}") == "s3cret"

    def test_unset_env_is_empty(self) -> None:
        assert r("[{{ .Envs.NOT_SET }}][{{ .Envs.EMPTY }}]") == "[][]"

    def test_render_template_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AIOFRP_TEST_VAR", "from-env")
        assert render_template("{{ .Envs.AIOFRP_TEST_VAR }}", "x") == "from-env"
        assert render_template("{{ .Envs.AIOFRP_TEST_VAR }}", "x", {}) == ""

    def test_trim_markers(self) -> None:
        assert r("a  \n\t{{- .Envs.FRP_TOKEN -}}\n\n  b") == "as3cretb"
        assert r("a \n{{- .Envs.FRP_TOKEN }} \nb") == "as3cret \nb"
        assert r("a \n{{ .Envs.FRP_TOKEN -}} \nb") == "a \ns3cretb"

    def test_minus_without_space_is_a_number(self) -> None:
        assert r("a {{-3}} b") == "a -3 b"

    def test_comments(self) -> None:
        assert r("x{{/* a comment */}}y {{- /* trimmed */ -}} z") == "xyz"

    def test_literals_and_parentheses(self) -> None:
        assert r('{{ "a}}b" }} {{ `raw` }} {{ 42 }} {{ true }}') == "a}}b raw 42 true"
        assert r('{{ (parseNumberRange "1-3") }}') == "[1 2 3]"

    def test_variables(self) -> None:
        assert r('{{ $x := "q" }}{{ $x }}{{ $x = "w" }}{{ $x }}') == "qw"


class TestRange:
    def test_number_range_pair_like_frp_e2e(self) -> None:
        text = (
            'serverPort = 7000\n{{- range $_, $v := parseNumberRangePair "6000-6001,6007" "7000-7001,7007" }}\n'
            '[[proxies]]\nname = "tcp-{{ $v.First }}"\ntype = "tcp"\n'
            "localPort = {{ $v.First }}\nremotePort = {{ $v.Second }}\n{{- end }}\n"
        )
        cfg = parse_client_config(text, "frpc", env=ENV)
        got = [(p.name, p.local_port, p.remote_port) for p in cfg.proxies]
        assert got == [("tcp-6000", 6000, 7000), ("tcp-6001", 6001, 7001), ("tcp-6007", 6007, 7007)]

    def test_number_range_forms(self) -> None:
        assert r('{{- range $_, $v := parseNumberRange "1000-1002,1005" }} {{ $v }}{{- end }}') == (
            " 1000 1001 1002 1005"
        )
        assert r('{{ range $i, $v := parseNumberRange "7,9" }}{{ $i }}:{{ $v }},{{ end }}') == "0:7,1:9,"
        assert r('{{ range $v := parseNumberRange "7,9" }}{{ $v }};{{ end }}') == "7;9;"
        assert r('{{ range parseNumberRange "7,9" }}{{ . }};{{ end }}') == "7;9;"
        assert r("{{ range parseNumberRange .Envs.PORTS }}{{ . }} {{ end }}") == "1000 1001 1002 "

    def test_pair_prints_like_go(self) -> None:
        assert r('{{ range $v := parseNumberRangePair "1" "2" }}{{ $v }}{{ end }}') == "{1 2}"

    def test_nested_ranges(self) -> None:
        text = (
            '{{ range $a := parseNumberRange "1-2" }}'
            '{{ range $b := parseNumberRange "5-6" }}{{ $a }}{{ $b }} {{ end }}{{ end }}'
        )
        assert r(text) == "15 16 25 26 "

    def test_variables_are_scoped_to_the_range(self) -> None:
        with pytest.raises(TemplateError, match='undefined variable "\\$v"'):
            r('{{ range $v := parseNumberRange "1" }}{{ end }}{{ $v }}')

    def test_range_else_and_maps(self) -> None:
        assert r("{{ range $k, $v := .Envs }}{{ $k }}={{ $v }};{{ else }}none{{ end }}") == (
            "EMPTY=;FRP_TOKEN=s3cret;PORTS=1000-1002;"
        )
        assert render("{{ range .Envs }}x{{ else }}none{{ end }}", {}) == "none"

    def test_helpers(self) -> None:
        assert parse_number_range(" 1-3, 5 ") == [1, 2, 3, 5]
        assert parse_number_range_pair("1-2", "8,9") == [NumberPair(1, 8), NumberPair(2, 9)]
        with pytest.raises(ValueError, match="not in pairs"):
            parse_number_range_pair("1-3", "1")
        with pytest.raises(ValueError, match="invalid"):
            parse_number_range("3-1")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("a\n{{ foo }}", 'line 2: function "foo" not defined'),
            ('{{ range parseNumberRange "" }}{{ else }}{{ nope 1 }}{{ end }}', 'function "nope" not defined'),
            ("\n\n{{ .Env.X }}", "line 3: can't evaluate field Env in type *config.Values"),
            ('{{ range $v := parseNumberRange "1" }}{{ $v.First }}{{ end }}', "can't evaluate field First"),
            ('{{ range $v := parseNumberRangePair "1" "2" }}{{ $v.Third }}{{ end }}', "field Third"),
            ('{{ parseNumberRangePair "6000-6006,6007" "7000-7006" }}', "not in pairs (8 and 7 numbers)"),
            ('{{ parseNumberRange "a-b" }}', "error calling parseNumberRange: range number is invalid"),
            ("{{ parseNumberRange 1 }}", "expected string; got int64"),
            ('{{ parseNumberRange "1" "2" }}', "wrong number of args for parseNumberRange: want 1 got 2"),
            ("x\ny {{ .Envs.A", 'line 2: unclosed action (missing "}}")'),
            ('{{ range $v := parseNumberRange "1" }}', "range has no {{end}}"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ if true }}x{{ end }}", 'the "if" action is not supported'),
            ("{{ .Envs.PORTS | parseNumberRange }}", "pipelines (|) are not supported"),
            ("{{ }}", "missing value for command"),
            ("{{ $nope }}", 'undefined variable "$nope"'),
            ("{{ # }}", "unexpected '#' in action"),
            ("{{ range $a, $b, $c := .Envs }}{{ end }}", "too many declarations in range"),
        ],
    )
    def test_problem_and_line(self, text: str, message: str) -> None:
        with pytest.raises(TemplateError) as info:
            r(text)
        assert message in str(info.value)

    def test_config_error_names_file_and_line(self) -> None:
        with pytest.raises(ConfigError) as info:
            parse_server_config('bindPort = 7000\n\nauth.token = "{{ env "X" }}"\n', "/etc/frps.toml")
        err = info.value
        assert (err.source, err.path) == ("/etc/frps.toml", "")
        assert str(err) == '/etc/frps.toml: template: line 3: function "env" not defined'

    def test_templates_render_before_format_detection(self) -> None:
        text = '{{ range $v := parseNumberRange "1" }}[common]{{ end }}\nbind_port = {{ .Envs.P }}\n'
        cfg = parse_server_config(text, "frps", env={"P": "7100"}, warnings=[])
        assert cfg.bind_port == 7100


class TestBudgets:
    """Nested ranges multiply: a template that would loop billions of times or render gigabytes is
    refused with the line, in well under a second (found by the atheris campaign)."""

    def test_nested_ranges_over_the_iteration_budget(self) -> None:
        text = (
            '{{ range $a := parseNumberRange "1-1000" }}\n'
            '{{ range $b := parseNumberRange "1-1000" }}{{ range $c := parseNumberRange "1-1000" }}'
            "{{ end }}{{ end }}{{ end }}"
        )
        with pytest.raises(TemplateError, match=r"line 2: range loops run more than 1,000,000 times"):
            r(text)

    def test_integer_range_checked_before_expanding(self) -> None:
        with pytest.raises(TemplateError, match="more than 1,000,000 times"):
            r("{{ range 1000000000000 }}{{ end }}")

    def test_output_budget(self) -> None:
        text = '{{ range $a := parseNumberRange "1-60000" }}' + "x" * 1000 + "{{ end }}"
        with pytest.raises(TemplateError, match="the rendered config exceeds 16 MiB"):
            r(text)

    def test_large_legitimate_config_renders(self) -> None:
        text = (
            '{{ range $i := parseNumberRange "1-65536" }}[[proxies]]\nname = "p{{ $i }}"\n'
            'type = "tcp"\nlocalPort = {{ $i }}\nremotePort = {{ $i }}\n{{ end }}'
        )
        out = r(text)
        assert out.count("[[proxies]]") == 65536
        assert 'name = "p65536"\n' in out

    def test_loader_reports_file_and_line(self) -> None:
        with pytest.raises(ConfigError, match="range loops run more than"):
            parse_client_config(
                '{{ range $a := parseNumberRange "1-1000" }}{{ range $b := parseNumberRange "1-1001" }}'
                "{{ end }}{{ end }}",
                "frpc.toml",
                env={},
            )
