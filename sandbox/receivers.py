"""Real local stand-ins for the monitor's tests, all on 127.0.0.1 ephemeral ports.

- WebhookReceiver: an HTTP server recording every request (WhatsApp/JSON via apprise's
  json:// URL, the phone provider's form POST).
- SmtpReceiver: an aiosmtpd SMTP server recording every message (apprise mailto://).
- Service: a controllable HTTP(S) service (status, JSON body, delay, optional TLS).
- make_certs(): a test CA and a server certificate for 127.0.0.1 with a chosen validity.
- write_config(), cli(), cli_process(), at(): drive the real CLI, in-process or as a new process.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import io
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller

from mottivme_monitor.cli import main as monitor_main

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
T0 = datetime.datetime(2025, 3, 1, 3, 12, tzinfo=datetime.UTC)


def at(minutes: float, start: datetime.datetime = T0) -> str:
    """The ISO time `minutes` after T0 (03:12 UTC), for --now."""
    return (start + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_config(tmp_path: Path, checks: list, channels: dict | None = None, ladder: dict | None = None,
                 **top) -> Path:
    """A monitor config in tmp_path (database and www dir there too)."""
    cfg = {"db": str(tmp_path / "state.sqlite"), "www_dir": str(tmp_path / "www"), "listen": "127.0.0.1:0",
           "ping_token": "test-token", "title": "Test status", "channels": channels or {}, "checks": checks}
    if ladder is not None:
        cfg["ladder"] = ladder
    cfg.update(top)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def cli(config: Path, *args) -> tuple[int, str]:
    """Run the CLI's main() in this process; (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = monitor_main(["--config", str(config), *map(str, args)])
    return code, out.getvalue()


def cli_process(config: Path, *args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m mottivme_monitor` as a new process, the way the systemd unit does."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mottivme_monitor", "--config", str(config), *map(str, args)],
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def dead_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class _Threaded:
    """Serve a ThreadingHTTPServer in a daemon thread; usable as a context manager."""

    httpd: ThreadingHTTPServer

    def _serve(self) -> None:
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# -- webhook receiver ------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True).items()}


class WebhookReceiver(_Threaded):
    """Records requests; answers `status` (200 by default)."""

    def __init__(self, status: int = 200, port: int = 0):
        self.status = status
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append(Request(self.command, self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET = do_PUT = _record

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._serve()

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def paths(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]


# -- SMTP receiver ---------------------------------------------------------------------

@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain", "html"))
        return part.get_content() if part is not None else ""


class _EphemeralController(Controller):
    """aiosmtpd's Controller, bound to port 0: learn the real port before the self-test connect."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpReceiver:
    """A plain (no TLS, no auth) SMTP server on loopback recording messages."""

    def __init__(self):
        self.messages: list[Mail] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                receiver.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))
                return "250 Message accepted for delivery"

        self.controller = _EphemeralController(Handler(), hostname=LOOPBACK, port=0)
        self.controller.start()

    @property
    def port(self) -> int:
        return self.controller.port

    def apprise_url(self, to: str = "ops@example.com", sender: str = "monitor@example.com") -> str:
        """The apprise URL for plain SMTP on loopback (mailto:// is plain, mode=insecure: no STARTTLS)."""
        return f"mailto://{LOOPBACK}:{self.port}?from={sender}&to={to}&mode=insecure"

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# -- controllable service ----------------------------------------------------------------

class Service(_Threaded):
    """An HTTP(S) service the test steers: status, body (bytes, str or JSON object), delay."""

    def __init__(self, status: int = 200, body=b"ok", delay: float = 0.0,
                 certfile: str | None = None, keyfile: str | None = None):
        self.status, self.body, self.delay = status, body, delay
        self.hits = 0
        self.hosts: list[str] = []      # Host headers received
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                service.hits += 1
                service.hosts.append(self.headers.get("Host", ""))
                if service.delay:
                    time.sleep(service.delay)
                body = service.body
                ctype = "text/plain"
                if not isinstance(body, (bytes, str)):
                    body, ctype = json.dumps(body), "application/json"
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(service.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass        # the client gave up (a timeout test)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.tls = certfile is not None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self._serve()

    def url(self, path: str = "/health") -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}{path}"


# -- certificates ------------------------------------------------------------------------

def make_certs(directory: Path, days: float, name: str = "svc", hosts: tuple = ()) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1/localhost (+ `hosts`: names or IP addresses) valid
    from an hour ago for `days` days.

    Returns paths: ca (PEM), cert (PEM, leaf), key (PEM), and not_after (ISO).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + datetime.timedelta(days=days)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                                                        x509.DNSName("localhost"),
                                                        *[_san(h) for h in hosts]]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": str(directory / f"{name}-ca.pem"), "cert": str(directory / f"{name}.pem"),
             "key": str(directory / f"{name}-key.pem")}
    Path(paths["ca"]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(paths["cert"]).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    Path(paths["key"]).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    paths["not_after"] = not_after.isoformat()
    return paths


def _san(name: str):
    """A subjectAltName entry: an IP address as one, else a DNS name."""
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
