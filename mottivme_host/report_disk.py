"""Send this server's disk, memory and CPU use (and, in queue mode, n8n's waiting executions) to
the monitor.

The percent used of the reported file system (settings `reports.disk_path`), of memory (what
the kernel cannot hand out again: 100 - MemAvailable / MemTotal) and of CPU time (busy since the
last report, from /proc/stat: "consistently over 80 %" is SOP 05's reason to move up a plan, a
moment's peak is not; the first report after a boot has nothing to compare with and skips it), and on an n8n server in queue mode the executions waiting in Redis for a
worker (Bull's `bull:jobs:wait` list), are POSTed to the monitor's heartbeat receiver, which
warns above its thresholds or when the reports stop. Every server the deploy manages runs it
from cron every few minutes: n8n and worker servers, the backup vault, the monitor. The URLs
hold the heartbeat token: they reach curl on stdin (`-K -`), never on a command line that `ps`
shows. Nothing to do (exit 0) when no monitor is configured.
"""

from __future__ import annotations

import os
import subprocess
import time

from .common import Fail, send
from .run import Runner
from .settings import Reports, Settings
from .stack import BULL_QUEUE, REDIS_CLI, Stack

# Bull's list of the executions no worker has taken yet
WAITING = BULL_QUEUE + "wait"
QUEUE_TIMEOUT = 30  # seconds: a hung Docker must not hold the other reports (cron starts the next run)


def add_arguments(p) -> None:
    p.add_argument("--print", action="store_true", help="print the percentages instead of sending them")


def used_percent(path: str) -> int:
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    avail_to_root = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - avail_to_root
    # df's Use%: used / (used + available to unprivileged users), rounded up
    denominator = used + avail
    return 0 if denominator == 0 else -(-used * 100 // denominator)


def memory_percent(meminfo: str = "/proc/meminfo") -> int:
    """Percent of memory in use as `free` counts it (100 - available), rounded up."""
    values = {}
    with open(meminfo) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.split():
                values[key] = int(rest.split()[0])
    total, avail = values.get("MemTotal", 0), values.get("MemAvailable", 0)
    return 0 if total <= 0 else -(-(total - avail) * 100 // total)


def cpu_times(stat: str = "/proc/stat") -> tuple[int, int]:
    """(total, idle) jiffies of all CPUs; idle counts I/O wait (nothing to run)."""
    with open(stat) as f:
        fields = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(fields), fields[3] + fields[4]


def busy_percent(before: tuple[int, int], after: tuple[int, int]) -> int | None:
    """Percent of CPU time busy between two samples, rounded up (None: no time passed)."""
    total, idle = after[0] - before[0], after[1] - before[1]
    if total <= 0 or idle < 0:
        return None
    return -(-(total - idle) * 100 // total)


def cpu_since_last(sample_file: str, stat: str = "/proc/stat") -> int | None:
    """CPU busy since the last report, whose totals `sample_file` keeps; None without a usable one
    (the first report, a reboot, an unreadable file): this report skips CPU (the monitor allows
    three intervals) rather than send a moment's peak. A sample that cannot be saved is not an
    error: the disk report that pages must go out whatever happens here."""
    now = cpu_times(stat)
    try:
        with open(sample_file) as f:
            before = tuple(int(v) for v in f.read().split()[:2])
    except (OSError, ValueError):
        before = ()
    try:
        os.makedirs(os.path.dirname(sample_file) or ".", exist_ok=True)
        with open(sample_file, "w") as f:
            f.write(f"{now[0]} {now[1]}\n")
    except OSError:
        pass
    return busy_percent(before, now) if len(before) == 2 else None


def cpu_now(stat: str = "/proc/stat", sleep=time.sleep) -> int:
    """CPU busy over one second now (`--print`: leaves the reports' sample alone)."""
    before = cpu_times(stat)
    sleep(1)
    return busy_percent(before, cpu_times(stat)) or 0


def waiting_executions(s: Settings, runner: Runner) -> int:
    """The executions waiting in Redis for a worker (the password stays in Redis's container:
    redis-cli reads it from its environment)."""
    try:
        res = Stack(s, runner).compose(*REDIS_CLI, "--raw", "LLEN", WAITING, check=False, timeout=QUEUE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Fail(f"cannot read n8n's queue from Redis: no answer in {QUEUE_TIMEOUT} s "
                   "(is Docker answering? docker ps)") from None
    out = res.stdout.strip()
    if not res.ok or not out.isdigit():
        raise Fail(f"cannot read n8n's queue from Redis: {(res.stderr or res.stdout).strip()[:160]} "
                   "(is the stack's redis running? mottivme-host compose ps)")
    return int(out)


def main(ns, s: Settings, runner: Runner) -> int:
    r = s.reports or Reports()
    wanted = [("disk", lambda: used_percent(r.disk_path), "%", r.disk_url),
              ("memory", memory_percent, "%", r.memory_url),
              ("cpu", cpu_now if ns.print else lambda: cpu_since_last(r.cpu_sample), "%", r.cpu_url),
              ("queue", lambda: waiting_executions(s, runner), "waiting", r.queue_url)]
    measures, unread = [], []
    for name, measure, unit, url in wanted:
        if url or (ns.print and name != "queue"):
            try:
                value = measure()
            except (Fail, OSError) as e:  # the others are still sent; this report stops, which the monitor sees
                unread.append(str(e) if isinstance(e, Fail) else f"{name}: {e}")
                continue
            if value is not None:
                measures.append((name, value, unit, url))
    if ns.print:
        for name, value, unit, _ in measures:
            print(f"{name} {value} {unit}")
        if unread:
            raise Fail("; ".join(unread))
        return 0
    failed = []
    for name, value, _, url in measures:
        res = send(runner, url, r.curl_args, str(value))
        if not res.ok:
            failed.append(f"{name}: {res.stderr.strip()[:160] or f'curl exit {res.returncode}'}")
    problems = ([f"the monitor did not take the report ({'; '.join(failed)})"] if failed else []) + unread
    if problems:
        raise Fail("; ".join(problems))
    return 0
