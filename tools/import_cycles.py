#!/usr/bin/env python3
"""Find import cycles between modules of different folders in ``src/aiofrp``.

    python tools/import_cycles.py             # every import: module level, lazy, TYPE_CHECKING
    python tools/import_cycles.py --runtime   # leave out imports under ``if TYPE_CHECKING:``
    python tools/import_cycles.py --folders   # also the folder graph (server -> net -> proto ...)

The import graph is read from the source with :mod:`ast` (nothing is imported). Each strongly
connected component of it that holds modules of more than one folder is a cross-folder cycle: it
is printed with the imports that close it, and the exit status is 1. A lazy import (inside a
function) counts: it still ties the two modules together, it only hides the cycle from Python.
Cycles inside one folder are allowed (a package's modules may know each other).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "aiofrp"


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line``; ``kind`` is "module", "lazy" or "typing"."""

    source: str
    target: str
    line: int
    kind: str


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def folder(self) -> str:
        """The package directory the module's file lives in (``aiofrp.server.vhost``)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def find_modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind: "module", "lazy" (in a function) or "typing"."""

    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, "typing" if kind == "typing" else "lazy")
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), kind)
            else:
                yield from walk(child, kind)

    yield from walk(tree, "module")


def _resolve(mod: Module, node: ast.ImportFrom) -> str:
    """The absolute module a ``from X import ...`` names as X."""
    if node.level == 0:
        return node.module or ""
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(modules: dict[str, Module], *, runtime_only: bool = False) -> list[Edge]:
    """The imports between modules of the package (``from pkg import submodule`` points at the
    submodule, ``from pkg import name`` at ``pkg``)."""
    edges: dict[Edge, None] = {}  # ordered set: one edge per import statement and target
    for mod in modules.values():
        tree = ast.parse(mod.path.read_text(encoding="utf-8"), str(mod.path))
        for node, kind in _imports(tree):
            if runtime_only and kind == "typing":
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(mod, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:  # import a.b.c where only a.b is ours
                    target = target.rpartition(".")[0]
                if target and target != mod.name:
                    edges[Edge(mod.name, target, node.lineno, kind)] = None
    return list(edges)


def strongly_connected(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components of more than one node, each sorted."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ[e.source].append(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def cross_folder_cycles(modules: dict[str, Module], edges: list[Edge]) -> list[tuple[list[str], list[Edge]]]:
    """Each component that spans folders, with the imports inside it that cross a folder boundary."""
    found = []
    for comp in strongly_connected(sorted(modules), edges):
        members = set(comp)
        if len({modules[m].folder for m in comp}) < 2:
            continue
        crossing = [
            e
            for e in edges
            if e.source in members and e.target in members and modules[e.source].folder != modules[e.target].folder
        ]
        found.append((comp, sorted(crossing, key=lambda e: (e.source, e.line, e.target))))
    return found


def folder_cycles(modules: dict[str, Module], edges: list[Edge], depth: int = 2) -> list[list[str]]:
    """Cycles in the graph of top folders (``aiofrp.server``, ``aiofrp.net``, ...)."""

    def top(name: str) -> str:
        return ".".join(modules[name].folder.split(".")[:depth])

    folders = sorted({top(m) for m in modules})
    folder_edges = {Edge(top(e.source), top(e.target), 0, e.kind) for e in edges if top(e.source) != top(e.target)}
    return strongly_connected(folders, sorted(folder_edges, key=lambda e: (e.source, e.target)))


def _rel(name: str, modules: dict[str, Module]) -> str:
    return str(modules[name].path.relative_to(ROOT.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtime", action="store_true", help="leave out imports under `if TYPE_CHECKING:`")
    p.add_argument("--folders", action="store_true", help="also report cycles between the top folders")
    args = p.parse_args(argv)
    modules = find_modules()
    edges = import_graph(modules, runtime_only=args.runtime)
    cycles = cross_folder_cycles(modules, edges)
    print(f"{len(modules)} modules, {len(edges)} imports ({'runtime only' if args.runtime else 'all'})")
    for i, (comp, crossing) in enumerate(cycles, 1):
        folders = sorted({modules[m].folder for m in comp})
        print(f"\ncycle {i}: {len(comp)} modules in {', '.join(folders)}")
        for m in comp:
            print(f"    {m}")
        print("  imports across folders that close it:")
        for e in crossing:
            print(f"    {_rel(e.source, modules)}:{e.line}: {e.source} -> {e.target} ({e.kind})")
    status = 1 if cycles else 0
    if args.folders:
        fcycles = folder_cycles(modules, edges)
        for fc in fcycles:
            print(f"\nfolder cycle: {' <-> '.join(fc)}")
        status = status or (1 if fcycles else 0)
    print(f"\n{len(cycles)} import cycle(s) between modules of different folders")
    return status


if __name__ == "__main__":
    sys.exit(main())
