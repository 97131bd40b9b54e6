"""The import graph of src/aiofrp has no cycle between modules of different folders
(``tools/import_cycles.py``; run it to see the cycles and the imports that close them)."""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

import import_cycles as ic  # tools/ is not a package


def test_no_cross_folder_cycle() -> None:
    """Not even through imports made for type checking only, or lazily inside a function."""
    modules = ic.find_modules()
    assert "aiofrp.proto.msg" in modules and "aiofrp.server.vhost" in modules
    cycles = ic.cross_folder_cycles(modules, ic.import_graph(modules))
    assert [comp for comp, _ in cycles] == [], "import cycles across folders (see python tools/import_cycles.py)"


def test_folders_depend_one_way() -> None:
    """proto <- net <- server, client <- cli; config stands apart (architecture.md)."""
    modules = ic.find_modules()
    assert ic.folder_cycles(modules, ic.import_graph(modules)) == []


def _package(root: Path, files: dict[str, str]) -> dict[str, ic.Module]:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ic.find_modules(root, "pkg")


def test_checker_finds_cycles_across_folders_only(tmp_path: Path) -> None:
    modules = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/x.py": "from ..b import y\n",  # a.x -> b.y ...
            "a/z.py": "from . import w\n",  # a.z <-> a.w: one folder, allowed
            "a/w.py": "from .z import thing\n",
            "b/__init__.py": "",
            "b/y.py": "def f():\n    from pkg.a.x import g\n",  # ... b.y -> a.x, lazily
            "c/__init__.py": "",
            "c/u.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import z\n",
            "c/v.py": "import pkg.c.u\n",
        },
    )
    edges = ic.import_graph(modules)
    kinds = {(e.source, e.target): e.kind for e in edges}
    assert kinds[("pkg.a.x", "pkg.b.y")] == "module"
    assert kinds[("pkg.b.y", "pkg.a.x")] == "lazy"
    assert kinds[("pkg.a.z", "pkg.a.w")] == "module"
    assert kinds[("pkg.c.u", "pkg.a.z")] == "typing"
    assert kinds[("pkg.c.v", "pkg.c.u")] == "module"
    cycles = ic.cross_folder_cycles(modules, edges)
    assert [comp for comp, _ in cycles] == [["pkg.a.x", "pkg.b.y"]]
    assert [(e.source, e.target, e.line) for e in cycles[0][1]] == [("pkg.a.x", "pkg.b.y", 1), ("pkg.b.y", "pkg.a.x", 2)]
    assert ic.cross_folder_cycles(modules, ic.import_graph(modules, runtime_only=True)) == cycles
    assert ic.folder_cycles(modules, edges) == [["pkg.a", "pkg.b"]]


def test_checker_counts_type_checking_imports_unless_runtime_only(tmp_path: Path) -> None:
    modules = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/x.py": "from pkg.b.y import Y\n",
            "b/__init__.py": "",
            "b/y.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.a.x import X\nelse:\n    X = None\n",
        },
    )
    assert len(ic.cross_folder_cycles(modules, ic.import_graph(modules))) == 1
    assert ic.cross_folder_cycles(modules, ic.import_graph(modules, runtime_only=True)) == []
