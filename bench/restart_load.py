"""Webhooks lost while the restart runbook runs in tier platina, with clients at once and the
machine's cores kept busy: prints a table, one row per restart.

    python bench/restart_load.py [--rounds 6] [--clients 3] [--busy 2] [--keep-finished N]

Sets up a main server and two worker servers in tier platina (own sandbox,
.sandbox-bench-restart, servers rsl-N, removed at the end), an active webhook workflow whose
Code node answers with its execution's id, then runs runbooks/restart_n8n.py `--rounds` times.
During each restart `--clients` clients send webhooks one after the other (0.2 s apart, 60 s
timeout each) and `--busy` processes spin on this machine's cores (what a second test line or
any other load does to the servers). `--keep-finished` deploys with that n8n_queue_keep_finished
(0 is n8n's own default: a finished execution is deleted from Redis at once; docs/scaling.md).
A lost webhook is one without its answer: no HTTP 200 with the execution's id.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from sandbox.core import Sandbox  # noqa: E402
from sandbox.n8n_client import N8nClient, n8n_api, webhook_workflow  # noqa: E402

STATE = ROOT / ".sandbox-bench-restart"
ENV = common.sandbox_env(STATE)
CODE = "return [{ json: { execution: $execution.id } }];"


def pyinfra(*args: str) -> None:
    common.pyinfra(ENV, *args)


def restart_round(url: str, path: str, clients: int, busy: int) -> tuple[int, list[str]]:
    """(sent, what each lost webhook got) of one restart runbook run under load."""
    results: list[tuple[bool, str]] = []
    done = threading.Event()

    def client():
        n8n = N8nClient(url)
        while not done.is_set():
            sent = time.strftime("%H:%M:%S")
            try:
                status, body = n8n.request("GET", f"webhook/{path}")
            except Exception as e:  # noqa: BLE001 - a refused, cut or garbled answer is a lost webhook
                status, body = None, repr(e)
            results.append((status == 200 and "execution" in str(body), f"{sent} {status} {str(body)[:80]}"))
            time.sleep(0.2)

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    try:
        for t in threads:
            t.start()
        time.sleep(1)
        pyinfra("runbooks/restart_n8n.py")
        time.sleep(2)
    finally:
        done.set()
        for t in threads:
            t.join(70)
        for p in spinners:
            p.kill()
            p.wait()
    return len(results), [what for ok, what in results if not ok]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--busy", type=int, default=2, help="processes spinning on this machine's cores meanwhile")
    p.add_argument("--keep-finished", type=int, default=None,
                   help="n8n_queue_keep_finished for this run (default: group_data's)")
    a = p.parse_args()
    extra = [] if a.keep_finished is None else ["--data", f"n8n_queue_keep_finished={a.keep_finished}"]
    sbx = Sandbox(state_dir=STATE, prefix="rsl")
    sbx.down(stop_shared_services=False)
    rows = []
    try:
        sbx.up(1, "n8n_servers")
        pyinfra("deploy.py", *extra)
        sbx.up(2, "n8n_workers")
        pyinfra("deploy.py", "--data", "n8n_tier=platina", *extra)
        main_h = next(h for h in sbx.load()["hosts"] if h["group"] == "n8n_servers")
        url = f"https://localhost:{main_h['https_port']}/"
        n8n = N8nClient(url)
        path = f"bench-restart-{uuid.uuid4().hex[:6]}"
        webhook_workflow(n8n, n8n_api(n8n, sbx.secrets()), "bench restart", path, str(uuid.uuid4()), code=CODE)
        for n in range(1, a.rounds + 1):
            sent, lost = restart_round(url, path, a.clients, a.busy)
            rows.append((n, sent, lost))
            print(f"restart {n}: {len(lost)} of {sent} lost {lost[:3]}", flush=True)
    finally:
        sbx.down()
    keep = "group_data's" if a.keep_finished is None else str(a.keep_finished)
    print()
    print(f"| restart (platina, {a.clients} clients, {a.busy} busy loops, n8n_queue_keep_finished {keep}) "
          "| webhooks sent | lost | the first lost one got |")
    print("|---|---:|---:|---|")
    for n, sent, lost in rows:
        print(f"| {n} | {sent} | {len(lost)} | {lost[0] if lost else ''} |")
    total, lost_all = sum(r[1] for r in rows), sum(len(r[2]) for r in rows)
    print(f"| all | {total} | {lost_all} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
