"""A local OIDC provider for tests: discovery, JWKS and a client-credentials token endpoint.

:class:`MockOIDC` serves, on 127.0.0.1 over HTTP or HTTPS (a test CA of its own, :class:`TestCA`):

* ``GET /.well-known/openid-configuration`` (``issuer``, ``jwks_uri``, ``token_endpoint``,
  ``id_token_signing_alg_values_supported``);
* ``GET /jwks`` (the public keys, RS256, each with its ``kid``);
* ``POST /token``: ``grant_type=client_credentials`` with the client id/secret in HTTP Basic auth or
  in the form; answers a signed JWT access token (``iss`` = the issuer, ``sub`` = the client's
  subject, ``aud`` = the ``audience`` parameter or the client id, ``exp`` = now + ``lifetime``) and
  ``expires_in``; a wrong secret gets 401 ``{"error": "invalid_client"}``.

Every request is recorded (:attr:`MockOIDC.requests`: method, path, headers, form). Knobs for bad
providers: :attr:`MockOIDC.mode` per path (``"garbage"`` JSON, ``"500"``, ``"slow"`` = sleep
:attr:`MockOIDC.delay` first, ``"down"`` = close the connection), :meth:`rotate` (a new signing key;
the old one leaves the JWKS unless ``keep_old``), :attr:`MockOIDC.unpublished` (sign with a key the
JWKS does not list), :attr:`MockOIDC.claims_override` (e.g. an ``exp`` in the past).

:class:`ForwardProxy` is an HTTP proxy (CONNECT and absolute-form requests) that records what it
forwarded, for ``auth.oidc.proxyURL``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

LOCALHOST = "127.0.0.1"


class TestCA:
    """A CA and a server certificate for 127.0.0.1/localhost, written under ``directory``."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aiofrp test CA")])
        ca = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(LOCALHOST))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.cert_file = directory / "server.pem"
        self.key_file = directory / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) of an HTTP Basic ``Authorization`` header, URL-unescaped as oauth2 sends them."""
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)


class _Key:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        d.update(kid=self.kid, use="sig", alg="RS256")
        return d


class MockOIDC:
    """See the module docstring. ``start()``/``stop()`` or a context manager."""

    def __init__(self, *, ca: TestCA | None = None, clients: dict[str, str] | None = None,
                 lifetime: int = 300, issuer_suffix: str = "") -> None:
        self.ca = ca
        self.clients = dict(clients or {"frpc": "s3cret"})  # client id -> secret
        self.subjects: dict[str, str] = {}  # client id -> sub (default: the client id)
        self.lifetime = lifetime
        self.send_expires_in = True
        self.issuer_suffix = issuer_suffix
        self.issuer_override: str | None = None  # the "iss" claim, when it should not be the issuer
        self.discovery_issuer: str | None = None  # the discovery document's "issuer", ditto
        self.claims_override: dict[str, Any] = {}
        self.mode: dict[str, str] = {}  # path -> "garbage" | "500" | "slow" | "down"
        self.delay = 0.0
        self.keys = [_Key("k1")]
        self.signing = self.keys[0]
        self.unpublished: _Key | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._handle(self, "GET")

            def do_POST(self) -> None:
                owner._handle(self, "POST")

        self._server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self._server.daemon_threads = True
        if self.ca is not None:
            self._server.socket = self.ca.server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read and change -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{LOCALHOST}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url + self.issuer_suffix

    @property
    def token_url(self) -> str:
        """Any path under the issuer that ends with ``/token`` is the token endpoint."""
        return self.issuer + ("/protocol/openid-connect/token" if self.issuer_suffix else "/token")

    def of(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def token_requests(self) -> list[Request]:
        return self.of("/token")

    @property
    def jwks_requests(self) -> list[Request]:
        return self.of("/jwks")

    @property
    def discovery_requests(self) -> list[Request]:
        return self.of("/.well-known/openid-configuration")

    def rotate(self, *, keep_old: bool = False) -> None:
        """A new signing key (``kid`` k2, k3, ...); the old keys leave the JWKS unless ``keep_old``."""
        key = _Key(f"k{len(self.keys) + 1}")
        self.keys = [*self.keys, key] if keep_old else [key]
        self.signing = key

    def mint(self, **claims: Any) -> str:
        """A token as the token endpoint would sign it now, with ``claims`` replacing the defaults."""
        now = int(time.time())
        body = {"iss": self.issuer_override or self.issuer, "sub": "frpc", "aud": "frpc",
                "iat": now, "exp": now + self.lifetime, **claims}
        key = self.unpublished or self.signing
        return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": key.kid})

    # -- serving ----------------------------------------------------------------------------------

    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        path = urllib.parse.urlsplit(h.path).path
        if self.issuer_suffix and path.startswith(self.issuer_suffix + "/"):
            path = path[len(self.issuer_suffix):]
        if path.endswith("/token"):
            path = "/token"
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)) if method == "POST" else {}
        with self._lock:
            self.requests.append(Request(method, path, {k.lower(): v for k, v in h.headers.items()}, form))
        mode = self.mode.get(path, "")
        if mode == "down":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "500":
            return self._send(h, 500, b"internal error", "text/plain")
        if mode == "garbage":
            return self._send(h, 200, b'{"issuer": "x", "keys": [ garbage', "application/json")
        if path == "/.well-known/openid-configuration" and method == "GET":
            doc = {
                "issuer": self.discovery_issuer if self.discovery_issuer is not None else self.issuer,
                "jwks_uri": self.issuer + "/jwks",
                "token_endpoint": self.token_url,
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
            }
            return self._json(h, 200, doc)
        if path == "/jwks" and method == "GET":
            return self._json(h, 200, {"keys": [k.jwk() for k in self.keys]})
        if path == "/token" and method == "POST":
            return self._token(h, form)
        return self._send(h, 404, b"not found", "text/plain")

    def _token(self, h: http.server.BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        req = self.requests[-1]
        creds = req.basic_auth() or (form.get("client_id", ""), form.get("client_secret", ""))
        client_id, secret = creds
        if form.get("grant_type") != "client_credentials":
            return self._json(h, 400, {"error": "unsupported_grant_type"})
        if client_id not in self.clients or self.clients[client_id] != secret:
            return self._json(h, 401, {"error": "invalid_client", "error_description": "bad client credentials"})
        claims = {"sub": self.subjects.get(client_id, client_id), "aud": form.get("audience") or client_id}
        if form.get("scope"):
            claims["scope"] = form["scope"]
        claims.update(self.claims_override)
        body: dict[str, Any] = {"access_token": self.mint(**claims), "token_type": "Bearer"}
        if self.send_expires_in:
            body["expires_in"] = self.lifetime
        return self._json(h, 200, body)

    def _json(self, h: http.server.BaseHTTPRequestHandler, status: int, doc: object) -> None:
        self._send(h, status, json.dumps(doc).encode(), "application/json")

    def _send(self, h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass


class ForwardProxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels and absolute-form requests; records the targets."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self.targets: list[str] = []  # "CONNECT 127.0.0.1:1234" / "POST http://..."
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        try:
            socket.create_connection((LOCALHOST, self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = line.split(" ", 2)
            self.targets.append(f"{method} {target}")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up = socket.create_connection((host, int(port)), timeout=10)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head.split(b"\r\n\r\n", 1)[1]
            else:
                u = urllib.parse.urlsplit(target)
                up = socket.create_connection((u.hostname, u.port or 80), timeout=10)
                origin = (u.path or "/") + (f"?{u.query}" if u.query else "")
                rest = head.replace(target.encode(), origin.encode(), 1)
            if rest:
                up.sendall(rest)
            self._pipe(conn, up)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def one(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=one, args=(b, a), daemon=True)
        t.start()
        one(a, b)
        t.join(10)
        b.close()


# -- frp configs ------------------------------------------------------------------------------------


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def frps_oidc(bind_port: int, idp: MockOIDC, *, audience: str = "", scopes: list[str] | None = None,
              extra: str = "") -> str:
    """frps TOML with ``auth.method = "oidc"`` against ``idp``."""
    text = (f'bindAddr = "{LOCALHOST}"\nbindPort = {bind_port}\nauth.method = "oidc"\n'
            f'auth.oidc.issuer = "{idp.issuer}"\n')
    if audience:
        text += f'auth.oidc.audience = "{audience}"\n'
    if scopes:
        text += f"auth.additionalScopes = {_toml_list(scopes)}\n"
    return text + extra


def frpc_oidc(server_port: int, idp: MockOIDC, *proxies: str, client_id: str = "frpc", secret: str = "s3cret",
              audience: str = "", scopes: list[str] | None = None, extra: str = "") -> str:
    """frpc TOML with the client-credentials grant against ``idp`` (``loginFailExit = false``)."""
    text = (f'serverAddr = "{LOCALHOST}"\nserverPort = {server_port}\nloginFailExit = false\n'
            f'auth.method = "oidc"\nauth.oidc.clientID = "{client_id}"\nauth.oidc.clientSecret = "{secret}"\n'
            f'auth.oidc.tokenEndpointURL = "{idp.token_url}"\n')
    if audience:
        text += f'auth.oidc.audience = "{audience}"\n'
    if scopes:
        text += f"auth.additionalScopes = {_toml_list(scopes)}\n"
    return text + extra + "".join(proxies)


class Socks5Proxy:
    """A SOCKS5 proxy on 127.0.0.1 (no authentication, CONNECT to IPv4 or a host name); records
    ``(host, port)`` of every CONNECT, with host names as the client sent them (``socks5h``)."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOCALHOST, 0))
        self.port = self.sock.getsockname()[1]
        self.targets: list[tuple[str, int]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"socks5://{LOCALHOST}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        try:
            socket.create_connection((LOCALHOST, self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            ver, nmethods = self._read(conn, 2)
            self._read(conn, nmethods)
            conn.sendall(b"\x05\x00")
            _, cmd, _, atyp = self._read(conn, 4)
            if atyp == 1:
                host = socket.inet_ntoa(self._read(conn, 4))
            elif atyp == 3:
                host = self._read(conn, self._read(conn, 1)[0]).decode()
            else:
                return
            port = int.from_bytes(self._read(conn, 2), "big")
            self.targets.append((host, port))
            if ver != 5 or cmd != 1:
                return
            up = socket.create_connection((host, port), timeout=10)
            conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(LOCALHOST) + b"\x00\x00")
            ForwardProxy._pipe(conn, up)
        except OSError:
            pass
        finally:
            conn.close()
