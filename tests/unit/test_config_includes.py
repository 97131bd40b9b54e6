"""frpc ``includes``: extra files holding only [[proxies]]/[[visitors]], relative to the main file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiofrp.config import ConfigError, STCPVisitorConfig, load_client_config, parse_client_config

MAIN = 'serverPort = 7000\nincludes = ["conf.d/*.toml", "extra/*.json"]\n\n[[proxies]]\nname = "main"\ntype = "tcp"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path, **kw: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_client_config(str(path), **kw)  # type: ignore[arg-type]
    return info.value


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path / "frpc.toml", MAIN)
    write(tmp_path / "conf.d" / "b.toml", '[[proxies]]\nname = "b"\ntype = "udp"\nlocalPort = 53\n')
    write(
        tmp_path / "conf.d" / "a.toml",
        '[[proxies]]\nname = "a-{{ .Envs.SUFFIX }}"\ntype = "tcp"\n\n'
        '[[visitors]]\nname = "v"\ntype = "stcp"\nserverName = "x"\nbindPort = 9000\n',
    )
    write(tmp_path / "conf.d" / "ignored.ini", "[common]\n")
    write(tmp_path / "conf.d" / "sub" / "c.toml", "not = read")
    proxies = {"proxies": [{"name": "j", "type": "tcp", "localPort": 1}]}
    write(tmp_path / "extra" / "j.json", json.dumps(proxies))
    return tmp_path


class TestIncludes:
    def test_included_proxies_and_visitors_are_appended(self, tree: Path) -> None:
        cfg = load_client_config(str(tree / "frpc.toml"), env={"SUFFIX": "x"})
        assert [p.name for p in cfg.proxies] == ["main", "a-x", "b", "j"]  # files in name order
        assert [v.name for v in cfg.visitors] == ["v"] and isinstance(cfg.visitors[0], STCPVisitorConfig)
        assert cfg.includes == ["conf.d/*.toml", "extra/*.json"]

    def test_relative_to_the_main_file_not_the_cwd(self, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir("/")
        assert len(load_client_config(str(tree / "frpc.toml"), env={}).proxies) == 4

    def test_from_the_cwd_when_not_beside_the_main_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Go resolves a relative include from the current directory: a config written for that
        (the directory only there) loads too; beside the main file wins when both exist."""
        write(tmp_path / "etc" / "frpc.toml", 'includes = ["inc/*.toml"]\n')
        write(tmp_path / "inc" / "a.toml", '[[proxies]]\nname = "from-cwd"\ntype = "tcp"\nlocalPort = 1\n')
        monkeypatch.chdir(tmp_path)
        assert [p.name for p in load_client_config("etc/frpc.toml").proxies] == ["from-cwd"]
        write(tmp_path / "etc" / "inc" / "b.toml", '[[proxies]]\nname = "beside"\ntype = "tcp"\nlocalPort = 1\n')
        assert [p.name for p in load_client_config("etc/frpc.toml").proxies] == ["beside"]
        monkeypatch.chdir("/")
        assert [p.name for p in load_client_config(str(tmp_path / "etc" / "frpc.toml")).proxies] == ["beside"]

    def test_absolute_pattern(self, tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        other = tmp_path_factory.mktemp("other")
        write(other / "x.yaml", "proxies:\n  - name: y\n    type: tcp\n")
        write(tree / "frpc.toml", f'includes = ["{other}/*.yaml"]\n')
        assert [p.name for p in load_client_config(str(tree / "frpc.toml")).proxies] == ["y"]

    def test_parse_without_include_dir_does_not_follow(self, tree: Path) -> None:
        assert [p.name for p in parse_client_config(MAIN).proxies] == ["main"]
        cfg = parse_client_config(MAIN, include_dir=str(tree), env={})
        assert len(cfg.proxies) == 4

    def test_no_match_is_fine_missing_directory_is_not(self, tmp_path: Path) -> None:
        write(tmp_path / "d" / "readme.txt", "")
        write(tmp_path / "frpc.toml", 'includes = ["d/*.toml"]\n')
        assert load_client_config(str(tmp_path / "frpc.toml")).proxies == []
        write(tmp_path / "frpc.toml", 'includes = ["nope/*.toml"]\n')
        err = error(tmp_path / "frpc.toml")
        assert err.path == "includes[0]" and "does not exist" in err.reason

    def test_included_file_may_only_hold_proxies_and_visitors(self, tree: Path) -> None:
        bad = write(tree / "conf.d" / "c.toml", 'serverPort = 7001\n[[proxies]]\nname = "c"\ntype = "tcp"\n')
        err = error(tree / "frpc.toml", env={})
        assert (
            str(err) == f"{bad}: serverPort: an included file may only contain [[proxies]] and [[visitors]]"
        )

    def test_duplicate_across_files_names_both(self, tree: Path) -> None:
        dup = write(tree / "conf.d" / "c.toml", '[[proxies]]\nname = "main"\ntype = "tcp"\n')
        err = error(tree / "frpc.toml", env={})
        assert err.source == str(dup) and err.path == "proxies[0].name"
        assert (
            err.reason == f'duplicate proxy name "main" (also defined in {tree / "frpc.toml"} as proxies[0])'
        )

    def test_duplicate_between_included_files(self, tree: Path) -> None:
        write(tree / "conf.d" / "c.toml", '[[proxies]]\nname = "b"\ntype = "tcp"\n')
        err = error(tree / "frpc.toml", env={})
        assert err.source.endswith("c.toml") and "b.toml" in err.reason

    def test_duplicate_visitor(self, tree: Path) -> None:
        write(
            tree / "conf.d" / "c.toml",
            '[[visitors]]\nname = "v"\ntype = "sudp"\nserverName = "s"\nbindPort = 1\n',
        )
        assert 'duplicate visitor name "v"' in error(tree / "frpc.toml", env={}).reason

    def test_errors_inside_an_included_file_name_it(self, tree: Path) -> None:
        bad = write(tree / "conf.d" / "c.toml", '[[proxies]]\nname = "c"\ntype = "tcp"\nlocalPort = 70000\n')
        err = error(tree / "frpc.toml", env={})
        assert (err.source, err.path) == (str(bad), "proxies[0].localPort")
        write(tree / "conf.d" / "c.toml", '[[proxies]]\nname = "c"\ntype = "http"\n')
        assert error(tree / "frpc.toml", env={}).source == str(bad)
        write(tree / "conf.d" / "c.toml", "[[proxies]]\nname = '{{ nope }}'\n")
        assert (
            str(error(tree / "frpc.toml", env={})) == f'{bad}: template: line 2: function "nope" not defined'
        )


class TestLegacyIncludes:
    def test_legacy_main_includes_ini_sections(self, tmp_path: Path) -> None:
        write(tmp_path / "frpc.ini", "[common]\nincludes = confd/*.ini\n[main]\nlocal_port = 1\n")
        write(
            tmp_path / "confd" / "a.ini",
            "[web]\ntype = http\nsubdomain = w\n[range:r]\nlocal_port = 1-2\nremote_port = 3-4\n",
        )
        write(
            tmp_path / "confd" / "v.ini",
            "[v]\nrole = visitor\ntype = stcp\nserver_name = main\nbind_port = 9\n",
        )
        cfg = load_client_config(str(tmp_path / "frpc.ini"), warnings=[])
        assert [p.name for p in cfg.proxies] == ["main", "web", "r_0", "r_1"]
        assert [v.name for v in cfg.visitors] == ["v"]

    def test_legacy_include_errors(self, tmp_path: Path) -> None:
        write(tmp_path / "frpc.ini", "[common]\nincludes = confd/*.ini\n[main]\nlocal_port = 1\n")
        bad = write(tmp_path / "confd" / "a.ini", "[common]\nserver_port = 1\n")
        assert str(error(tmp_path / "frpc.ini", warnings=[])) == (
            f"{bad}: [common]: an included file may only hold proxy and visitor sections"
        )
        write(tmp_path / "confd" / "a.ini", "[x]\nlocal_port = 99999\n")
        assert str(error(tmp_path / "frpc.ini", warnings=[])).startswith(
            f"{bad}: [x] local_port: port number"
        )
        write(tmp_path / "confd" / "a.ini", "[main]\nlocal_port = 2\n")
        assert 'duplicate proxy name "main"' in str(error(tmp_path / "frpc.ini", warnings=[]))
