"""Send this server's disk usage to the monitor.

The percent used of the reported file system (settings `reports.disk_path`) is POSTed to the
monitor's heartbeat receiver, which alerts above its threshold or when the reports stop. Run by
cron every few minutes. The URL holds the heartbeat token: it reaches curl on stdin (`-K -`),
never on a command line that `ps` shows. Nothing to do (exit 0) when no monitor is configured.
"""

from __future__ import annotations

import os

from .common import Fail, curl_config
from .run import Runner
from .settings import Settings


def add_arguments(p) -> None:
    p.add_argument("--print", action="store_true", help="print the percentage instead of sending it")


def used_percent(path: str) -> int:
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    avail_to_root = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - avail_to_root
    # df's Use%: used / (used + available to unprivileged users), rounded up
    denominator = used + avail
    return 0 if denominator == 0 else -(-used * 100 // denominator)


def main(ns, s: Settings, runner: Runner) -> int:
    r = s.reports
    percent = used_percent(r.disk_path if r else "/")
    if ns.print:
        print(percent)
        return 0
    if not (r and r.disk_url):
        return 0
    res = runner.run(["curl", "-fsS", "-m", "10", "--retry", "2", *r.curl_args, "-X", "POST",
                      "--data-binary", str(percent), "-o", "/dev/null", "-K", "-"], input=curl_config(r.disk_url),
                     check=False)
    if not res.ok:
        raise Fail(f"the monitor did not take the disk report ({res.stderr.strip()[:160] or f'curl exit {res.returncode}'})")
    return 0
