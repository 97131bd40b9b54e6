"""Local services for the client plugin tests: unix-socket HTTP and echo servers, a TLS client,
an HTTP CONNECT helper and curl (installed when missing)."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Mapping
from typing import Any, Self

from .configs import block
from .ports import LOCALHOST

__all__ = [
    "BodyDigestServer",
    "TcpEcho",
    "UnixEchoServer",
    "UnixHttpServer",
    "curl",
    "http_connect",
    "make_cert",
    "need_curl",
    "need_tool",
    "plugin_proxy",
    "raw_exchange",
    "tls_roundtrip",
]


class _UnixHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: UnixHttpServer._Server

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = f"unix says hello to {self.path}\n".encode()
        self.server.owner.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class UnixHttpServer:
    """A threaded HTTP/1.1 server on a unix socket (as the Docker API is); records the paths."""

    class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True
        owner: UnixHttpServer

    def __init__(self, path: str) -> None:
        self.path = path
        self.paths: list[str] = []
        self._srv = self._Server(path, _UnixHandler)
        self._srv.owner = self
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class UnixEchoServer:
    """Echo on a unix socket; ``firsts`` keeps the first chunk of each connection (a PROXY header)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.firsts: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(64)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        first = True
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    return
                if first:
                    self.firsts.append(data)
                    first = False
                conn.sendall(data)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def need_tool(name: str) -> str:
    """The path of ``name`` (curl, openssl); installed with apt-get when missing (CI machines are
    Debian, as root); RuntimeError saying so when that fails."""
    path = shutil.which(name)
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-q", name], check=False, capture_output=True, timeout=300)
        path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is needed by the client plugin tests and could not be installed "
                           f"(apt-get install {name})")
    return path


def need_curl() -> str:
    return need_tool("curl")


def curl(*args: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    """Run curl (silent, errors shown, no proxy from the environment) and return the result."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([need_curl(), "-sS", "--max-time", str(int(timeout)), *args], check=False,
                          capture_output=True, text=True, timeout=timeout + 5, env=env)


def http_connect(port: int, target: str, headers: str = "", timeout: float = 5.0) -> tuple[bytes, socket.socket]:
    """Send ``CONNECT target`` to 127.0.0.1:port; return (the answer head, the open socket)."""
    s = socket.create_connection((LOCALHOST, port), timeout=timeout)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{headers}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    return head, s


def tls_roundtrip(port: int, data: bytes, server_name: str = "localhost", timeout: float = 10.0,
                  cafile: str | None = None) -> tuple[bytes, dict[str, Any] | None]:
    """TLS to 127.0.0.1:port (no verification unless ``cafile``), send ``data``, read as much back;
    return (what came back, the server's certificate as Python decodes it when verified)."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        return got, s.getpeercert() if cafile else None


class TcpEcho:
    """A threaded TCP echo on ``host`` (``::1`` for IPv6 destinations); ``peers`` records who connected."""

    def __init__(self, host: str = LOCALHOST) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.peers: list[tuple[str, int]] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            self.peers.append(peer[:2])
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` to 127.0.0.1:port, read until the peer closes (or ``timeout``); return what came.
    A reset counts as a close."""
    got = b""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        s.sendall(data)
        try:
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    return got


def make_cert(directory: str, name: str) -> tuple[str, str]:
    """A self-signed certificate for ``name`` (in its subjectAltName) and its key, as PEM files in
    ``directory``; returns (cert path, key path). The certificate is its own CA for verification."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt_path, key_path = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt_path, key_path


class _DigestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:
        import hashlib

        body = self._body()
        answer = f"{self.headers.get('Transfer-Encoding', 'sized')} {len(body)} {hashlib.sha256(body).hexdigest()}"
        data = answer.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class BodyDigestServer:
    """HTTP/1.1 on 127.0.0.1 answering a POST with "<Transfer-Encoding or sized> <length> <sha256>"
    of the body it received (chunked bodies decoded)."""

    def __init__(self) -> None:
        self._srv = http.server.ThreadingHTTPServer((LOCALHOST, 0), _DigestHandler)
        self._srv.daemon_threads = True
        self.port: int = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def plugin_proxy(name: str, kind: str, plugin: Mapping[str, object], **keys: object) -> str:
    """A ``[[proxies]]`` table (``keys`` as :func:`support.configs.block`) with a ``[proxies.plugin]`` table."""
    text = block("proxies", name=name, type=kind, **keys)
    return text + block("proxies.plugin", **plugin).replace("[[proxies.plugin]]", "[proxies.plugin]")
