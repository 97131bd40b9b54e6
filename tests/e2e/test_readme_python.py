"""README "Using aiofrp from Python": every ``<!-- readme-python: NAME -->`` block run as a user
would run it (``python FILE``, ``python -m pytest FILE``), against our frps and against Go frps
0.65 (a real process each). The only changes: ``x.x.x.x`` becomes 127.0.0.1 and the ports 7000
(frps), 8000 (the local app) and 8080 (frps's vhost) become free ones."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.procs import free_port, wait_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
_MARK = re.compile(r"^(?P<indent>[ \t]*)<!-- readme-python: (?P<name>\S+) -->\n(?P=indent)```\w*\n", re.MULTILINE)


def python_blocks() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for m in _MARK.finditer(text):
        end = text.index(f"\n{m['indent']}```", m.end() - 1)
        out[m["name"]] = textwrap.dedent(text[m.end():end + 1])
    return out


BLOCKS = python_blocks()


class Example:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {7000: free_port(), 8000: free_port(), 8080: free_port()}

    def text(self, name: str) -> str:
        t = BLOCKS[name].replace("x.x.x.x", "127.0.0.1")
        for old, new in self.ports.items():
            t = re.sub(rf"(?<![\d.]){old}(?!\d)", str(new), t)
        return t

    def write(self, name: str) -> Path:
        path = self.workdir / name.rsplit("/", 1)[-1]
        path.write_text(self.text(name))
        return path

    def run(self, *argv: str, timeout: float = 90) -> str:
        proc = subprocess.run([sys.executable, *argv], cwd=self.workdir, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{argv} exited with {proc.returncode}:\n{out}"
        assert "Traceback" not in out, out
        return out


@pytest.fixture(params=["ours", pytest.param("go", marks=pytest.mark.compat)])
def example(request: pytest.FixtureRequest, frp, tmp_path: Path) -> Example:
    """The README's frps (ours or Go's) running, and the example's files in ``tmp_path``."""
    ex = Example(tmp_path)
    text = ex.text("python/frps.toml")
    if request.param == "ours":
        frp.ours_frps(text)
    else:
        frp.go_frps(text)
    wait_port(ex.ports[7000], 20)
    return ex


def test_every_python_block_is_used() -> None:
    used = set(re.findall(r'"(python/[\w.-]+)"', Path(__file__).read_text()))
    assert set(BLOCKS) == used


def test_blocking_expose(example: Example) -> None:
    out = example.run(str(example.write("python/expose.py")))
    assert re.search(r"^tcp://127\.0\.0\.1:6\d{3}$", out, re.MULTILINE), out
    assert "through frps: 200" in out
    assert re.search(r"^refused: .*port not allowed", out, re.MULTILINE), out


def test_aiohttp_app(example: Example) -> None:
    out = example.run(str(example.write("python/aiohttp_app.py")))
    assert f"http://app.example.com:{example.ports[8080]}\n" in out
    assert "200 hello from aiohttp" in out
    assert re.search(r"^frpc: proxy http-\d+-\w+ running", out, re.MULTILINE), out


def test_fastapi_app(example: Example) -> None:
    out = example.run(str(example.write("python/fastapi_app.py")))
    assert f"http://api.example.com:{example.ports[8080]}\n" in out
    assert "200 {'message': 'hello from FastAPI'}" in out
    assert re.search(r"^frpc: proxy http-\d+-\w+ running", out, re.MULTILINE), out
    assert "frpc: closed" in out


def test_embedded_frps_fixture(tmp_path: Path) -> None:
    """The fixture embeds our frps (Go's frps is not a Python object): pytest runs the file."""
    ex = Example(tmp_path)
    out = ex.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(ex.write("python/test_with_frps.py")))
    assert "1 passed" in out


def test_python_m_aiofrp_prints_help(tmp_path: Path) -> None:
    out = Example(tmp_path).run("-m", "aiofrp")
    assert "frps -c frps.toml" in out and "aiofrp.expose(" in out


