"""The real OpenSSH client against frps's SSH tunnel gateway (``ssh -R ... v0@frps -p PORT cmd``).

:func:`ssh_binary` finds ``ssh``/``ssh-keygen`` or installs Debian's ``openssh-client`` with
apt-get; when it cannot, the test fails saying why (never a silent skip). :func:`keygen` makes an
ed25519 key pair. :class:`SSHTunnel` runs one ``ssh`` process (BatchMode, no host key checks, no
user config) whose stdout/stderr go to files, with waits bounded by deadlines.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import pytest

from .ports import LOCALHOST

__all__ = ["SSHTunnel", "keygen", "ssh_binary", "ssh_run", "ssh_run_with"]


def ssh_binary() -> str:
    """Path of ``ssh``; installs openssh-client with apt-get if needed, else fails the test."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        if shutil.which("apt-get") is None:
            pytest.fail("the ssh gateway tests need the OpenSSH client (ssh, ssh-keygen) and there is no "
                        "apt-get to install it", pytrace=False)
        r = subprocess.run(["apt-get", "install", "-y", "-q", "openssh-client"], capture_output=True, text=True,
                           timeout=600, check=False)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, check=False)
            r = subprocess.run(["apt-get", "install", "-y", "-q", "openssh-client"], capture_output=True,
                               text=True, timeout=600, check=False)
        if r.returncode != 0 or shutil.which("ssh") is None:
            pytest.fail(f"apt-get install openssh-client failed: {r.stderr.strip()[-500:]}", pytrace=False)
    path = shutil.which("ssh")
    assert path is not None
    return path


def keygen(directory: Path, name: str, comment: str = "") -> Path:
    """An unencrypted ed25519 key pair ``directory/name`` (+ ``.pub``); returns the private key path."""
    ssh_binary()
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                   check=True, capture_output=True, timeout=30)
    return key


def _argv(port: int, key: Path, command: str, forward: str | None, user: str = "v0") -> list[str]:
    argv = [
        ssh_binary(), "-F", "/dev/null",
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
        "-i", str(key), "-p", str(port),
    ]
    if forward is not None:
        argv += ["-R", forward]
    argv.append(f"{user}@{LOCALHOST}")
    if command:
        argv.append(command)
    return argv


def ssh_run(port: int, key: Path, command: str, *, local_port: int = 8080, timeout: float = 20.0,
            forward: str | None = "") -> subprocess.CompletedProcess[str]:
    """Run ssh to completion (the gateway closes the session after an error or the usage text)."""
    fwd = f":80:127.0.0.1:{local_port}" if forward == "" else forward
    return subprocess.run(_argv(port, key, command, fwd), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False)


class SSHTunnel:
    """``ssh -R BIND:127.0.0.1:LOCAL v0@127.0.0.1 -p PORT COMMAND`` kept running (BIND: ``:80``)."""

    def __init__(self, workdir: Path, port: int, key: Path, command: str, local_port: int,
                 *, extra: Sequence[str] = (), bind: str = ":80") -> None:
        self.workdir = workdir
        self.out_path = workdir / f"ssh-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        argv = _argv(port, key, command, f"{bind}:127.0.0.1:{local_port}")
        argv[1:1] = list(extra)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True)

    @property
    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def errors(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None and text not in self.output:
                pytest.fail(f"ssh exited (rc={self.proc.returncode}) without printing {text!r}\n"
                            f"stdout: {self.output!r}\nstderr: {self.errors!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"ssh did not print {text!r} within {timeout}s\nstdout: {self.output!r}\n"
                            f"stderr: {self.errors!r}")
            time.sleep(0.05)
        return self.output

    def field(self, name: str) -> str:
        """A ``Name: value`` line of the success block."""
        for line in self.output.splitlines():
            if line.startswith(f"{name}: "):
                return line.split(": ", 1)[1]
        raise AssertionError(f"no {name!r} line in {self.output!r}")

    def wait_exit(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()


def ssh_run_with(port: int, key: Path | None, command: str | None, *, forward: str | None = ":80:127.0.0.1:9",
                 options: Sequence[str] = (), timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Like :func:`ssh_run` with more freedom: no key at all (``key=None``: only what
    ``options`` allow, e.g. ``PreferredAuthentications=password``), no command, no ``-R``
    (``forward=None``), and any extra ``ssh`` arguments (more ``-R``, ``-N``, ``-o ...``)."""
    argv = _argv(port, key or Path("/dev/null"), command or "", forward)
    if key is None:
        i = argv.index("-i")
        del argv[i:i + 2]
    argv[1:1] = list(options)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                          check=False)
