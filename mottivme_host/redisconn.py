"""Redis as the host programs reach it: n8n's queue, never its password on a command line.

On the main server, a redis-cli session in the stack's redis container (`RedisCli`: the password
stays in that container's environment). On a worker server, which has no Redis of its own, a
connection to the tunnel's local end (`Resp`: the password read from the stack's .env,
QUEUE_BULL_REDIS_PASSWORD, and sent in AUTH). Both answer `call(*args) -> str`. `connect(s)`
picks the one the settings name (Settings.queue_redis)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager

from . import envfile
from .settings import Settings
from .stack import REDIS_CLI

REPLY_TIMEOUT = 10  # seconds for Redis to answer one command


class RedisDown(Exception):
    """Redis (or its container, or Docker) does not answer."""


def quoted(arg: str) -> str:
    """One argument of a redis-cli line (its parser reads "..." with \\n and \\" escapes)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class RedisCli:
    """One redis-cli session in the stack's redis container, commands on its stdin one line each.
    Each command is followed by `ECHO <marker>`: its answer is the lines before the marker's."""

    def __init__(self, s: Settings):
        self.s = s
        self.proc: subprocess.Popen | None = None
        self.buf = b""

    def _start(self) -> subprocess.Popen:
        argv = [*self.s.compose, *REDIS_CLI]
        try:
            # a session of its own: close() ends compose and the docker exec under it together
            return subprocess.Popen(argv, cwd=self.s.stack_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            raise RedisDown(f"cannot run `{' '.join(argv[:3])} ... exec redis`: {e}") from None

    def close(self) -> None:
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.proc, self.buf = None, b""

    def _line(self, deadline: float) -> str:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                raise RedisDown(f"no answer from Redis in {REPLY_TIMEOUT} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RedisDown("the redis-cli session ended (is the stack's redis running? mottivme-host compose ps)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def call(self, *args: str) -> str:
        if self.proc is None:
            self.proc = self._start()
        marker = f"mottivme-{uuid.uuid4().hex}"
        try:
            self.proc.stdin.write((" ".join(quoted(a) for a in args) + f"\nECHO {marker}\n").encode())
            self.proc.stdin.flush()
            deadline, lines = time.monotonic() + REPLY_TIMEOUT, []
            while (line := self._line(deadline)) != marker:
                lines.append(line)
        except OSError as e:  # the session ended under us (Redis's container stopped, say)
            self.close()
            raise RedisDown(f"the redis-cli session ended ({e.strerror or e}; is the stack's redis running? "
                            "mottivme-host compose ps)") from None
        except RedisDown:
            self.close()
            raise
        return "\n".join(lines).strip()


class Resp:
    """One connection to Redis at host:port speaking its protocol (RESP2), AUTH first; a reply
    becomes text as redis-cli --raw would print it (an array: its elements, one per line)."""

    def __init__(self, host: str, port: int, password: str):
        self.addr, self.password = (host, port), password
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _send(self, args) -> None:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            data = a.encode() if isinstance(a, str) else bytes(a)
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))

    def _read(self, n: int | None = None) -> bytes:
        """A line without its CRLF (n None), or n bytes and the CRLF after them."""
        while (b"\r\n" not in self.buf) if n is None else (len(self.buf) < n + 2):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisDown(f"Redis at {self.addr[0]}:{self.addr[1]} closed the connection")
            self.buf += chunk
        if n is None:
            line, self.buf = self.buf.split(b"\r\n", 1)
            return line
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._read()
        kind, rest = line[:1], line[1:].decode(errors="replace")
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RedisDown(f"Redis answered: {rest[:160]}")
        if kind == b"$":
            return None if int(rest) < 0 else self._read(int(rest)).decode(errors="replace")
        if kind == b"*":
            return [] if int(rest) < 0 else [self._reply() for _ in range(int(rest))]
        raise RedisDown(f"unexpected answer from Redis: {line[:80]!r}")

    def _command(self, *args):
        self._send(args)
        return self._reply()

    def call(self, *args: str) -> str:
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.addr, timeout=REPLY_TIMEOUT)
                if self.password and self._command("AUTH", self.password) != "OK":
                    raise RedisDown("Redis did not accept the password (QUEUE_BULL_REDIS_PASSWORD in the stack's .env)")
            reply = self._command(*args)
        except OSError as e:
            self.close()
            raise RedisDown(f"no answer from Redis at {self.addr[0]}:{self.addr[1]} ({e.strerror or e}; "
                            "is the tunnel up? systemctl status n8n-tunnel)") from None
        except RedisDown:
            self.close()
            raise
        items = reply if isinstance(reply, list) else [reply]
        return "\n".join("" if x is None else str(x) for x in items).strip()


def connect(s: Settings):
    """The settings' way to n8n's Redis (Settings.queue_redis): "container" (the stack's redis
    container), or host:port with the stack's .env QUEUE_BULL_REDIS_PASSWORD. None when this
    server's stack has no queue."""
    where = s.queue_redis
    if not where:
        return None
    if where == "container":
        return RedisCli(s)
    host, _, port = where.rpartition(":")
    env = envfile.read(os.path.join(s.stack_dir, s.env_file))
    return Resp(host, int(port), env.get("QUEUE_BULL_REDIS_PASSWORD", ""))


@contextmanager
def connected(s: Settings):
    """`connect(s)` for a block, closed after it (None when this server's stack has no queue)."""
    redis = connect(s)
    try:
        yield redis
    finally:
        if redis is not None:
            redis.close()
