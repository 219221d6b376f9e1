"""Restart n8n's services, each healthy or ready again before the next, and say how long n8n was down.

n8n-restart [--timeout SECONDS]

Restarts n8n's services: queue-mode workers and webhook processors one at a time (each back to
healthy before the next, so executions go on), then the main process, waiting for
/healthz/readiness through Caddy and saying how long n8n did not answer. If something is not
ready in time, print the last log lines of the failing container and exit 1.

A worker is stopped with n8n's queue held still for the moment of the signal (queue_hold.py: an
execution it fetched just before would be lost otherwise), then waits for its running executions.
A webhook processor is drained first: inside its own network namespace new connections to n8n's
port are refused (Caddy sends the request to another processor: a refused connection is always
retried), and the restart waits until the requests in flight have finished. A stopping n8n
would otherwise go on taking requests while it closes its database, and fail them. The rule goes
with the container's restart, and is taken away if the restart does not happen.
"""

from __future__ import annotations

import argparse
import threading

from . import queue_hold, redisconn
from .common import Fail, out_line, stderr_line
from .run import Runner
from .settings import Settings
from .stack import Stack

PROG = "n8n-restart"
N8N_PORT = 5678  # n8n's port in its container (templates/docker-compose.yml.j2, Caddyfile.j2)
DRAIN_TABLE = "mottivme_drain"  # nftables table in a draining container's network namespace
DRAIN_RULES = f"""table inet {DRAIN_TABLE} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {N8N_PORT} tcp flags & (syn | ack) == syn reject with tcp reset
  }}
}}
"""
DRAIN_INTERVAL = 0.2  # seconds between two counts of the requests in flight
PROBE_INTERVAL = 0.2  # seconds between two readiness probes during the main process's restart
PROBE_TIMEOUT = 2  # curl -m of one probe
LOG_LINES = 25


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=int, default=None, metavar="SECONDS",
                   help="how long each service gets to be healthy / ready again (default: the settings' ready_timeout)")


def main(ns, s: Settings, runner: Runner) -> int:
    timeout = s.ready_timeout if ns.timeout is None else ns.timeout
    st = Stack(s, runner)
    for service in s.pooled:  # a rule left by a run that was killed outright (SIGKILL, a reboot of the CLI's host)
        _undrain(st, runner, service)
    with redisconn.connected(s) as redis:
        for service in [x for x in s.services if x != "n8n"]:
            _restart_one(st, runner, service, timeout, redis)
    if "n8n" in s.services:
        _restart_main(st, runner, timeout)
    return 0



def _restart(st: Stack, *args: str) -> None:
    st.compose_checked("restart", *args)


def _inspect(st: Stack, runner: Runner, service: str, fmt: str) -> str:
    """`docker inspect --format fmt` of the service's container ("" when it has none)."""
    cid = st.container_id(service)
    if not cid:
        return ""
    r = runner.run(["docker", "inspect", "--format", fmt, cid], check=False)
    return r.stdout.strip() if r.ok else ""


def _health(st: Stack, runner: Runner, service: str) -> str:
    return _inspect(st, runner, service, "{{.State.Health.Status}}")


def _netns(st: Stack, runner: Runner, service: str) -> str:
    """The service's network namespace file (Docker's SandboxKey: never the host's own
    namespace, whatever process ids do meanwhile); "" when it has none (not running)."""
    key = _inspect(st, runner, service, "{{.NetworkSettings.SandboxKey}}")
    return key if key.startswith("/") else ""


def _in_ns(netns: str, *argv: str) -> list[str]:
    return ["nsenter", f"--net={netns}", *argv]


def _in_flight(runner: Runner, netns: str) -> int:
    """Connections established to n8n's port in that namespace (/proc/net/tcp*: the local
    address's port in hex, state 01 = established)."""
    r = runner.run(_in_ns(netns, "cat", "/proc/net/tcp", "/proc/net/tcp6"), check=False)
    port = f":{N8N_PORT:04X}"
    return sum(1 for line in r.stdout.splitlines()
               if len(f := line.split()) > 3 and f[1].endswith(port) and f[3] == "01")


def _drain(st: Stack, runner: Runner, service: str) -> None:
    """Refuse new connections to `service` and wait (up to drain_seconds) for the ones in flight
    (nothing when it does not run; a warning when it cannot be drained: restarted as before)."""
    netns = _netns(st, runner, service)
    if not netns:
        return
    t = runner.now()
    r = runner.run(_in_ns(netns, "nft", "-f", "-"), input=DRAIN_RULES, check=False)
    if not r.ok:  # restart it all the same: as before draining, a webhook or two may fail
        err = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        stderr_line(f"{PROG}: WARNING cannot drain {service} ({err}): restarting it without; "
                    "install nftables (the deploy does)")
        return
    n = _in_flight(runner, netns)
    while n and runner.now() - t < st.s.drain_seconds:
        runner.sleep(DRAIN_INTERVAL)
        n = _in_flight(runner, netns)
    left = f", {n} still open after {st.s.drain_seconds}s" if n else ""
    out_line(f"{service} takes no new requests (Caddy sends them to the others): drained in "
             f"{runner.now() - t:.1f}s{left}")


def _undrain(st: Stack, runner: Runner, service: str) -> None:
    """Take the drain rule away if `service`'s namespace has it (its restart did not happen or
    kept the namespace, or an earlier run was cut short); a failure is a warning, never hides
    the run's own error."""
    netns = _netns(st, runner, service)
    if not netns:
        return
    r = runner.run(_in_ns(netns, "nft", "list", "tables"), check=False)
    if f"table inet {DRAIN_TABLE}" not in (line.strip() for line in r.stdout.splitlines()):
        return
    r = runner.run(_in_ns(netns, "nft", "delete", "table", "inet", DRAIN_TABLE), check=False)
    if r.ok:
        out_line(f"{service}: the drain rule is taken away (it takes requests again)")
    else:
        stderr_line(f"{PROG}: WARNING {service} may still refuse requests: `nsenter --net={netns} nft delete "
                    f"table inet {DRAIN_TABLE}` failed; run it by hand")


def _restart_held(st: Stack, runner: Runner, service: str, redis) -> None:
    """A worker's restart with the queue held until it got the signal (queue_hold.held_stop): the
    restart runs beside (a worker with running executions takes its time to stop: the queue is
    not held for that)."""
    queue_hold.held_stop(st, runner, [service], redis, PROG,
                         lambda: _restart(st, "-t", str(st.s.stop_seconds), service))


def _restart_one(st: Stack, runner: Runner, service: str, timeout: int, redis=None) -> None:
    """A worker or webhook processor: a processor behind Caddy is drained first (`_drain`); a
    worker drains itself (stop timeout = drain + 30 s) and is stopped with the queue held
    (`_restart_held`); then it must be healthy again (its compose health check) within `timeout`
    seconds of the restart's start."""
    t = runner.now()
    pooled = service in st.s.pooled
    try:
        if pooled:
            _drain(st, runner, service)
            _restart(st, "-t", str(st.s.stop_seconds), service)
        else:
            _restart_held(st, runner, service, redis)
    finally:  # also when cut short (Ctrl-C, a lost session): the rule never outlives the run
        if pooled:
            _undrain(st, runner, service)
    while True:
        health = _health(st, runner, service)
        if health == "healthy" or runner.now() - t >= timeout:
            break
        runner.sleep(1)
    if health != "healthy":
        stderr_line(f"{PROG}: FAILED {service} is not healthy {timeout}s after its restart ({health}). Last log lines:")
        for line in st.logs(service, LOG_LINES):
            stderr_line(f"  {line}")
        raise Fail(f"{service} is not healthy {timeout}s after its restart", 1)
    out_line(f"{service} restarted and healthy in {int(runner.now() - t)}s")


class _Prober(threading.Thread):
    """Probes readiness every PROBE_INTERVAL seconds, recording (time the probe started, status),
    until a probe started after `restarted` (the time the restart command returned) says 200,
    or the deadline. Time is the runner's (the unit tests' fake clock)."""

    def __init__(self, st: Stack, runner: Runner, deadline: float):
        super().__init__(name="readiness-prober", daemon=True)
        self.st, self.r, self.deadline = st, runner, deadline
        self.lock = threading.Lock()
        self.probes: list[tuple[float, str]] = []
        self.restarted: float | None = None
        self.ready_at: float | None = None
        self.halt = threading.Event()

    def mark_restarted(self, t: float) -> None:
        with self.lock:
            self.restarted = t

    def run(self) -> None:
        while not self.halt.is_set():
            t = self.r.now()
            try:
                code = self.st.http_status(timeout=PROBE_TIMEOUT)
            except Exception:  # curl missing or the like: a failed probe, never a dead thread
                code = "000"
            with self.lock:
                self.probes.append((t, code))
                restarted = self.restarted
            if restarted is not None and t > restarted and code == "200":
                self.ready_at = t
                return
            if self.r.now() >= self.deadline:
                return
            self.r.sleep(PROBE_INTERVAL)

    def outage(self) -> float:
        """First to last failed probe, plus one interval (0.0 when no probe failed)."""
        failed = [t for t, code in self.probes if code != "200"]
        return failed[-1] - failed[0] + PROBE_INTERVAL if failed else 0.0


def _restart_main(st: Stack, runner: Runner, timeout: int) -> None:
    """The main process: its outage is measured by probing readiness while it restarts."""
    before = st.http_status(timeout=PROBE_TIMEOUT)
    t0 = runner.now()
    prober = _Prober(st, runner, deadline=t0 + timeout)
    prober.start()
    try:
        out_line(f"restarting: n8n (readiness before: {before})")
        _restart(st, "n8n")
        prober.mark_restarted(runner.now())
        prober.join()  # it ends by itself: ready, or the deadline
    finally:
        prober.halt.set()
    if prober.ready_at is None:
        last = prober.probes[-1][1] if prober.probes else "000"
        message = f"n8n is not ready {timeout}s after the restart (readiness {last})"
        stderr_line(f"{PROG}: FAILED {message}. Last log lines:")
        for line in st.logs("n8n", LOG_LINES):
            stderr_line(f"  {line}")
        raise Fail(message, 1)
    out_line(f"n8n ready again: unavailable for {prober.outage():.1f}s "
         f"(restart + readiness took {prober.ready_at - t0:.1f}s)")
