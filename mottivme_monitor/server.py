"""The heartbeat receiver (`serve`): push pings from cron jobs, healthchecks.io style.

    GET|POST /ping/<token>/<name>        record a ping now (value: ?value=N or a numeric POST body)
    GET|POST /ping/<token>/<name>/fail   record an explicit failure (POST body = reason, <= 300 chars)
    GET /healthz                          200 "ok"

Tokens (tokens.py): a heartbeat check with a `sender` takes only that server's own token,
server_token(ping_token, sender), and refuses the master `ping_token` (a server holds its own token
only, so a leaked one fakes no other server's heartbeats); a check without `sender` (an operator's)
takes the master token.

A token that is nobody's -> 403 before the name is looked at (it learns nothing about names); a
name that is not a heartbeat check -> 404; a token that is not this check's -> 403; bad value ->
400. The token never appears in the request log.
"""

from __future__ import annotations

import hmac
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import clock
from .config import Config
from .store import Store
from .tokens import server_token

MAX_BODY = 10_000


class PingHandler(BaseHTTPRequestHandler):
    server_version = "mottivme-monitor"
    sys_version = ""
    cfg: Config                     # set on the subclass made by make_server()
    tokens: dict[str, str]          # sender -> its token, made once by make_server()

    def do_GET(self):
        self._handle(b"")

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return self._answer(413 if length > MAX_BODY else 400, "bad body length")
        self._handle(self.rfile.read(length))

    def do_HEAD(self):
        self._handle(b"", head=True)

    def _handle(self, body: bytes, head: bool = False) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            return self._answer(200, "ok", head)
        if len(parts) not in (3, 4) or parts[0] != "ping" or (len(parts) == 4 and parts[3] != "fail"):
            return self._answer(404, "not found", head)
        token, name = parts[1], parts[2]
        known = (self.cfg.ping_token, *self.tokens.values())
        if not self.cfg.ping_token or not any([self._is(token, t) for t in known]):  # a list: each compared
            return self._answer(403, "forbidden", head)
        check = self.cfg.check(name)
        if check is None or check.type != "heartbeat":
            return self._answer(404, "unknown check", head)
        sender = check.spec["sender"]
        if not self._is(token, self.tokens[sender] if sender else self.cfg.ping_token):
            return self._answer(403, "forbidden: not this check's token (each server pings with its own)", head)
        text = body.decode("utf-8", "replace").strip()
        with Store(self.cfg.db) as store:
            if len(parts) == 4:
                store.add_ping(name, clock.real_now(), failed=True, reason=" ".join(text.split())[:300])
                return self._answer(200, "ok", head)
            raw = urllib.parse.parse_qs(url.query).get("value", [text])[0].strip()
            value = None
            if raw:
                try:
                    value = float(raw)
                except ValueError:
                    return self._answer(400, "value must be a number", head)
            store.add_ping(name, clock.real_now(), value=value)
        self._answer(200, "ok", head)

    @staticmethod
    def _is(token: str, expected: str) -> bool:
        """Constant-time comparison (a timing difference would tell a token's prefix)."""
        return hmac.compare_digest(token.encode(), expected.encode())

    def _answer(self, status: int, text: str, head: bool = False) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, fmt, *args):  # noqa: D401 - keeps the token out of logs
        path = getattr(self, "path", "").split("?")[0]
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "ping":
            parts[2] = "***"
        sys.stderr.write(f"{self.address_string()} {self.command} {'/'.join(parts)} "
                         f"{args[1] if len(args) > 1 else ''}\n")


def make_server(cfg: Config, host: str | None = None, port: int | None = None) -> ThreadingHTTPServer:
    """A ready server (not yet serving); port 0 picks a free port."""
    Store(cfg.db).close()      # create/migrate the database before the first request
    tokens = {s: server_token(cfg.ping_token, s) for s in cfg.senders()} if cfg.ping_token else {}
    handler = type("BoundPingHandler", (PingHandler,), {"cfg": cfg, "tokens": tokens})
    server = ThreadingHTTPServer((cfg.listen_host if host is None else host,
                                  cfg.listen_port if port is None else port), handler)
    server.daemon_threads = True
    return server
