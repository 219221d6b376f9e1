"""Send this server's disk and memory use to the monitor.

The percent used of the reported file system (settings `reports.disk_path`) and of memory (what
the kernel cannot hand out again: 100 - MemAvailable / MemTotal) are POSTed to the monitor's
heartbeat receiver, which alerts above its thresholds or when the reports stop. Every server the
deploy manages runs it from cron every few minutes: n8n and worker servers, the backup vault, the
monitor. The URLs hold the heartbeat token: they reach curl on stdin (`-K -`), never on a command
line that `ps` shows. Nothing to do (exit 0) when no monitor is configured.
"""

from __future__ import annotations

import os

from .common import Fail, send
from .run import Runner
from .settings import Settings


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


def main(ns, s: Settings, runner: Runner) -> int:
    r = s.reports
    measures = [("disk", used_percent(r.disk_path if r else "/"), r.disk_url if r else ""),
                ("memory", memory_percent(), r.memory_url if r else "")]
    if ns.print:
        for name, percent, _ in measures:
            print(f"{name} {percent} %")
        return 0
    failed = []
    for name, percent, url in measures:
        if not url:
            continue
        res = send(runner, url, r.curl_args, str(percent))
        if not res.ok:
            failed.append(f"{name}: {res.stderr.strip()[:160] or f'curl exit {res.returncode}'}")
    if failed:
        raise Fail(f"the monitor did not take the report ({'; '.join(failed)})")
    return 0
