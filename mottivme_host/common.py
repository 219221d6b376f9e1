"""What every host program shares: its log, its one-line failure, the lock, timings."""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import os
import re
import signal
import socket
import sys
import tempfile
from contextlib import contextmanager


class Fail(Exception):
    """End the program: `<program>: FAILED <step>: <message>` on stderr and in the log, exit `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message, self.code = message, code


class Log:
    """Lines to the program's log file (`YYYY-MM-DD HH:MM:SS [pid] <prefix>message`) and, with
    `say`, to stdout too. stdout may be a closed SSH channel: writing there never fails the run."""

    def __init__(self, path: str, prefix: str = "", out=None):
        self.path, self.prefix = path, prefix
        self.out = out if out is not None else sys.stdout
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.file = open(path, "a", buffering=1)
        self.start = self.file.tell()  # where this run's lines begin

    def log(self, message: str) -> None:
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.file.write(f"{stamp} [{os.getpid()}] {self.prefix}{message}\n")

    def say(self, message: str) -> None:
        self.log(message)
        out_line(message, self.out)

    def this_run(self) -> str:
        """What this run has written to the log so far (other programs' lines included)."""
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.start)
                return f.read()
        except OSError:
            return ""


def out_line(message: str, file=None) -> None:
    """Print one line; stdout may be a closed SSH channel (a runbook cut short): that never fails
    the program."""
    try:
        print(message, file=file or sys.stdout, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        pass


def stderr_line(message: str) -> None:
    out_line(message, sys.stderr)


def on_terminal() -> bool:
    """stderr is a terminal: a person watches (progress lines are for them)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _curl_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def curl_config(url: str, body: str | None = None) -> str:
    """A curl config (`curl -K -`, on stdin) naming `url` and, for a POST, its body: a URL with a
    token, or a reason, never goes in argv (where `ps` shows it)."""
    return f"url = {_curl_quoted(url)}\n" + (f"data-binary = {_curl_quoted(body)}\n" if body is not None else "")


URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def without_urls(text: str) -> str:
    """A reason with every URL in it (a connection string holds its password) replaced by <url>."""
    return URL_IN_TEXT.sub("<url>", text)


def send(runner, url: str, curl_args=(), body: str | None = None):
    """GET `url`, or POST `body` to it, with curl; the Result. The URL (it holds a heartbeat
    token) and the body (every URL in it replaced: a connection string holds its password) reach
    curl on stdin, never argv; curl's output, which may name the URL, is dropped."""
    argv = ["curl", "-fsS", "-m", "10", "--retry", "2", *curl_args, *(["-X", "POST"] if body is not None else [])]
    body = without_urls(body) if body is not None else None
    return runner.run([*argv, "-o", "/dev/null", "-K", "-"], input=curl_config(url, body), check=False)


def write_private(path: str, text: str) -> None:
    """Write `text` to `path` atomically, 0600 from the first byte (mkstemp, then renamed over it)."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def report_job(s, runner, job: str, error: str | None = None) -> bool:
    """Tell the monitor how a scheduled job ended (settings `reports.jobs`: job -> heartbeat URL):
    GET the URL when it succeeded, POST the one-line reason to URL/fail when it did not. Best
    effort (False: not told, or nobody to tell); the URL holds a token: curl reads it on stdin."""
    r = s.reports
    url = dict(r.jobs).get(job, "") if r is not None else ""
    if not url:
        return False
    try:
        if error is None:
            return send(runner, url, r.curl_args).ok
        return send(runner, url + "/fail", r.curl_args, " ".join(error.split())[:300]).ok
    except OSError:
        return False


def sha256(path: str) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Lock:
    """flock on a file: one holder at a time (the same lock file as cron's jobs and the restore)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self, timeout: float, sleep, now) -> bool:
        deadline = now() + timeout
        while not self.try_acquire():
            if now() >= deadline:
                return False
            sleep(1)
        return True


class Laps:
    """The time of each phase, printed as a table at the end (`  phase      12.3 s`)."""

    def __init__(self, now, on_lap=None):
        self.now, self.t, self.rows, self.on_lap = now, now(), [], on_lap

    def lap(self, label: str) -> float:
        t = self.now()
        took, self.t = t - self.t, t
        self.rows.append((label, took))
        if self.on_lap is not None:  # progress as it goes (the table comes at the end)
            self.on_lap(f"{label} ({took:.1f} s)")
        return took

    def lines(self) -> list[str]:
        return [f"  {label:<46} {took:7.1f} s" for label, took in self.rows]


@contextmanager
def interrupts_deferred():
    """A step that must not be cut in two (a database this run makes, which its clean-up drops
    after): Ctrl-C, a lost SSH session or a kill during it is acted on once it is done
    (KeyboardInterrupt then). Start its commands in a session of their own (Runner.run's
    `new_session`): a terminal's signal would end them half done otherwise, and `docker exec`
    would leave their work going on inside the container, after the clean-up. Main thread only."""
    got: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for sig, handler in before.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if got:
        raise KeyboardInterrupt


def ignore_interrupts() -> None:
    """From here on Ctrl-C, a lost SSH session or a kill do not stop the program (it always ends
    on a running n8n); the commands it starts inherit that."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def hostname() -> str:
    return socket.gethostname()


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def weekday() -> int:
    """1 = Monday ... 7 = Sunday (date +%u)."""
    return _dt.date.today().isoweekday()
