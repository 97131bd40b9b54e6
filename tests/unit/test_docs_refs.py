"""The map stays inside the repository and true: every ``§x.y`` cited in code, tests, benchmarks and
docs is a section of docs/protocol.md, every relative link in README.md and docs/*.md names a file
of the repository, every module path (with the names after its colon) that the docs quote exists,
and every class, method and function that docs/architecture.md and docs/connection.md name in
backticks is defined in src/aiofrp."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
PACKAGE = ROOT / "src" / "aiofrp"

# "§5.11", "§1.1-§1.3", "§5.2-5.6", "§2.2–2.3"; not "RFC 9112 §7.1" (another document's section).
_SECTION = r"\d+(?:\.\d+)*"
_REF = re.compile(rf"§\s?(?P<first>{_SECTION})(?:\s?[-–]\s?§?\s?(?P<last>{_SECTION}))?")
_OTHER_DOC = re.compile(r"RFC\s?\d+\s?$")
_HEADING = re.compile(rf"^#{{1,6}}\s+(?P<num>{_SECTION})\.?\s", re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `path/to/module.py` or `path/to/module.py: Class.method, other_function` (a span may wrap lines)
_CODE_PATH = re.compile(r"`(?P<path>[\w.-]+(?:/[\w.-]+)+\.(?:py|md))(?::(?P<names>[^`]*))?`")


def section_refs(text: str) -> list[tuple[int, str]]:
    """(line number, section) for each ``§`` reference to docs/protocol.md in ``text``."""
    out = []
    for match in _REF.finditer(text):
        if _OTHER_DOC.search(text[max(0, match.start() - 12) : match.start()]):
            continue
        line = text.count("\n", 0, match.start()) + 1
        out.append((line, match["first"]))
        if match["last"]:
            last = match["last"]
            if "." not in last and "." in match["first"]:  # "§5.11-13" = §5.11 to §5.13
                last = match["first"].rsplit(".", 1)[0] + "." + last
            out.append((line, last))
    return out


def protocol_sections() -> set[str]:
    return {m["num"] for m in _HEADING.finditer(PROTOCOL.read_text(encoding="utf-8"))}


def cited_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in ("src", "tests", "bench"):
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md") and p.is_file())
    return files


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# -- the extractor itself ------------------------------------------------------------------------


def test_section_refs_parsing() -> None:
    text = "frp §5.11\nspec §1.1-§1.3, §5.2-5.6 and §2.2–2.3\nRFC 9112 §7.1, RFC 5780 §4.4\n§5.11-13"
    assert section_refs(text) == [
        (1, "5.11"),
        (2, "1.1"), (2, "1.3"), (2, "5.2"), (2, "5.6"), (2, "2.2"), (2, "2.3"),
        (4, "5.11"), (4, "5.13"),
    ]


def test_protocol_headings_are_found() -> None:
    sections = protocol_sections()
    for expected in ("0", "1.4.3", "2.1.1", "5.5", "10"):
        assert expected in sections
    assert "4.4" not in sections


# -- the repository ------------------------------------------------------------------------------


def test_every_section_reference_resolves() -> None:
    sections = protocol_sections()
    missing = []
    count = 0
    for path in cited_files():
        for line, section in section_refs(path.read_text(encoding="utf-8")):
            count += 1
            if section not in sections:
                missing.append(f"{path.relative_to(ROOT)}:{line}: §{section}")
    assert count > 50, f"only {count} § references found: is the extractor broken?"
    assert not missing, "sections cited but not in docs/protocol.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    bad = []
    for match in _LINK.finditer(doc.read_text(encoding="utf-8")):
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same file
        resolved = (doc.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            bad.append(target)
    assert not bad, f"{doc.relative_to(ROOT)}: links to files outside the repository or missing: {bad}"


def _module_names(text: str) -> set[str]:
    return set(re.findall(r"\b(?:def|class)\s+(\w+)", text)) | set(re.findall(r"\b(\w+)\s*(?::[^=\n]*)?=", text))


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_quoted_code_paths_and_names_exist(doc: Path) -> None:
    """`server/control.py: Control.get_work_conn` in a doc: the file exists (from the repository
    root or from src/aiofrp) and defines each name after the colon (the last dotted part)."""
    bad = []
    for match in _CODE_PATH.finditer(doc.read_text(encoding="utf-8")):
        rel = match["path"]
        candidates = ((base / rel).resolve() for base in (ROOT, PACKAGE))
        path = next((p for p in candidates if p.is_relative_to(ROOT) and p.is_file()), None)
        if path is None:
            bad.append(rel)
            continue
        if not match["names"] or path.suffix != ".py":
            continue
        defined = _module_names(path.read_text(encoding="utf-8"))
        for name in re.split(r"[,\s]+", match["names"].strip()):
            if name and name.split(".")[-1].strip("()") not in defined:
                bad.append(f"{rel}: {name}")
    assert not bad, f"{doc.relative_to(ROOT)} quotes code that does not exist: {bad}"


# Names the code docs may quote that are not ours.
_FOREIGN_NAMES = {"Any"}
_CODE_DOCS = ("architecture.md", "connection.md")


def _package_sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


_MEMBER = re.compile(r"(_?[A-Z]\w*[a-z]\w*)\.(\w+)")  # Relay.close, TLSTransport._read
_CLASS = re.compile(r"_?[A-Z][A-Za-z0-9]*[a-z]\w*")  # Relay, TLSTransport, _Sniff
_NAME = re.compile(r"_?[A-Z][A-Z0-9_]+|_?[a-z][a-z0-9]*(?:_[a-z0-9]+)+")  # HANDLERS, work_conn_codecs


def undefined_code_names(doc_text: str, sources: dict[Path, str]) -> list[str]:
    """Backticked ``Class``, ``Class.member``, ``CONSTANT`` and ``snake_name`` tokens of a doc that
    src/aiofrp does not define (a member must be defined in a file that defines its class)."""
    classes: dict[str, list[Path]] = {}
    for path, text in sources.items():
        for cls in re.findall(r"^\s*class\s+(\w+)", text, re.MULTILINE):
            classes.setdefault(cls, []).append(path)
    names_by_file = {path: _module_names(text) for path, text in sources.items()}
    every_name = set().union(*names_by_file.values())

    def defined(token: str) -> bool:
        if member := _MEMBER.fullmatch(token):
            cls, name = member.groups()
            return any(name in names_by_file[p] for p in classes.get(cls, []))
        if _CLASS.fullmatch(token):
            return token in classes
        if _NAME.fullmatch(token):
            return token in every_name
        return True  # not a code name: a key, a value, an expression

    tokens = (t.strip() for t in re.findall(r"`([^`\n]+)`", doc_text))
    return [t for t in tokens if t not in _FOREIGN_NAMES and not defined(t)]


def test_code_name_check_catches_inventions() -> None:
    sources = {PACKAGE / "x.py": "class TLSRelay:\n    def close(self): ...\nLIMIT = 1\ndef work_conn_codecs(): ...\n"}
    good = "`TLSRelay`, `TLSRelay.close`, `LIMIT`, `work_conn_codecs`, `Any`, `0x17`, `pool_count + 10`"
    bad = "`TLSRelay.open`, `TLSRelais`, `LIMITS`, `no_such_fn`, `Other.close`"
    assert undefined_code_names(good + bad, sources) == ["TLSRelay.open", "TLSRelais", "LIMITS", "no_such_fn", "Other.close"]


@pytest.mark.parametrize("name", _CODE_DOCS)
def test_code_docs_name_only_existing_code(name: str) -> None:
    bad = undefined_code_names((ROOT / "docs" / name).read_text(encoding="utf-8"), _package_sources())
    assert not bad, f"docs/{name} names code that src/aiofrp does not define: {bad}"
