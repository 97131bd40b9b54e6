"""``cli.common.formatter_class``: argparse's width without argparse importing shutil."""

from __future__ import annotations

import argparse
import shutil

import pytest

from aiofrp.cli import common, frpc, frps


@pytest.mark.parametrize("columns", [None, "120", "0", "-3", "wide"])
def test_terminal_width_is_shutils(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert common.terminal_width() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("columns", ["60", "100", "200"])
def test_help_is_argparses(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    for build in (frps.build_parser, frpc.build_parser):
        ours = build()
        stock = build()
        stock.formatter_class = argparse.RawDescriptionHelpFormatter  # sizes itself with shutil
        assert ours.format_help() == stock.format_help()
        assert ours.format_usage() == stock.format_usage()
