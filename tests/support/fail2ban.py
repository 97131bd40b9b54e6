"""Debian's fail2ban, unpacked (not installed: no service is started) into ~/.cache/aiofrp, to run
``fail2ban-regex`` against real frps logs.

``apt-get download fail2ban`` fetches the package (after one ``apt-get update`` if the package
lists are missing) and ``dpkg -x`` unpacks it; fail2ban is pure Python and runs on the test's
interpreter with the unpacked ``dist-packages`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("AIOFRP_CACHE", Path.home() / ".cache" / "aiofrp"))


class Fail2banUnavailable(RuntimeError):
    pass


def _download(tmp: Path) -> Path:
    for attempt in range(2):
        r = subprocess.run(["apt-get", "download", "fail2ban"], cwd=tmp, capture_output=True, text=True,
                           timeout=300, check=False)
        debs = sorted(tmp.glob("fail2ban_*.deb"))
        if r.returncode == 0 and debs:
            return debs[-1]
        if attempt == 0:
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=300, check=False)
    raise Fail2banUnavailable(f"apt-get download fail2ban failed: {r.stderr.strip()[-500:]}")


def fail2ban_root() -> Path:
    """The unpacked package (``usr/bin/fail2ban-regex``, ``usr/lib/python3/dist-packages``)."""
    done = sorted(CACHE.glob("fail2ban-*/usr/bin/fail2ban-regex"))
    if done:
        return done[-1].parents[2]
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise Fail2banUnavailable("needs apt-get and dpkg (Debian/Ubuntu) to fetch fail2ban")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp_s:
        tmp = Path(tmp_s)
        deb = _download(tmp)
        unpacked = tmp / "root"
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True, capture_output=True, timeout=120)
        version = deb.name.split("_")[1]
        dest = CACHE / f"fail2ban-{version}"
        if not dest.exists():
            unpacked.rename(dest)
    return dest


def fail2ban_regex(log_file: Path, filter_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``fail2ban-regex [args] LOG FILTER`` from the unpacked package."""
    root = fail2ban_root()
    env = dict(os.environ, PYTHONPATH=str(root / "usr/lib/python3/dist-packages"))
    return subprocess.run(
        [sys.executable, str(root / "usr/bin/fail2ban-regex"), *args, str(log_file), str(filter_file)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
