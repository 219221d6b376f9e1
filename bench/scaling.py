"""Scaling benchmark: prints a table of executions per minute of a small webhook workflow with 0
(tier bronze: the main server alone), 1 and 2 worker servers (tier ouro), in the same run, and
the ratio to the single-server figure; then a table of the webhooks lost while the restart runbook
runs under a steady load (10 a second): tier bronze (n8n alone: the outage n8n's start takes) and
tier platina (webhook processors restarted one at a time behind Caddy: goal 0).

    python bench/scaling.py [--executions 300] [--clients 10]

Each measure fires N webhook calls (the workflow answers at once and runs a small Code node)
from C parallel clients and times until PostgreSQL holds N successful executions.
Own sandbox (.sandbox-bench-scaling, servers scl-N), removed at the end. All sandbox servers
share this machine's cores: the figures show the overhead and the distribution work, not the
gain of real extra machines.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from sandbox.core import Sandbox  # noqa: E402
from sandbox.n8n_client import N8nClient, n8n_api, webhook_workflow  # noqa: E402
from sandbox.seed import ssh  # noqa: E402

STATE = ROOT / ".sandbox-bench-scaling"
ENV = common.sandbox_env(STATE)
CODE = "let x = 0; for (let i = 0; i < 20000; i++) { x += i % 7; }\nreturn [{ json: { x } }];"


def pyinfra(*args: str) -> None:
    common.pyinfra(ENV, *args)


def successes(sbx: Sandbox, main: dict, wf: str) -> int:
    sql = f"select count(*) from execution_entity where \\\"workflowId\\\" = '{wf}' and status = 'success'"
    return int(ssh(sbx, main, f"docker exec $(mottivme-host compose ps -q postgres) psql -U n8n -d n8n -AtqX -c \"{sql}\"").strip())


def measure(sbx: Sandbox, main: dict, n8n: N8nClient, wf: str, path: str, count: int, clients: int) -> float:
    """Executions per minute: `count` calls, until all of them succeeded."""
    before = successes(sbx, main, wf)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda _: n8n.request("GET", f"webhook/{path}")[0], range(count)))
    assert all(c == 200 for c in codes), {c for c in codes}
    while successes(sbx, main, wf) < before + count:
        if time.perf_counter() - t0 > 900:
            raise RuntimeError("executions did not finish within 15 minutes")
        time.sleep(0.5)
    return count / (time.perf_counter() - t0) * 60


def steady_restart(n8n: N8nClient, path: str, limit: str) -> tuple[int, int, float]:
    """(failed, sent, seconds from the first failure to the last) of webhooks fired ten a second
    while runbooks/restart_n8n.py restarts the main server's n8n services."""
    results: list[tuple[float, bool]] = []
    done = threading.Event()

    def fire():
        while not done.is_set():
            t = time.monotonic()
            try:
                ok = n8n.request("GET", f"webhook/{path}")[0] == 200
            except OSError:
                ok = False
            results.append((t, ok))
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))

    th = threading.Thread(target=fire, daemon=True)
    th.start()
    time.sleep(2)
    pyinfra("--limit", limit, "runbooks/restart_n8n.py")
    time.sleep(2)
    done.set()
    th.join(70)
    failed = [t for t, ok in results if not ok]
    return len(failed), len(results), (failed[-1] - failed[0] if failed else 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--executions", type=int, default=300)
    p.add_argument("--clients", type=int, default=10)
    a = p.parse_args()
    sbx = Sandbox(state_dir=STATE, prefix="scl")
    sbx.down(stop_shared_services=False)
    rows, restarts = [], []
    try:
        sbx.up(1, "n8n_servers")
        pyinfra("deploy.py")
        main_h = next(h for h in sbx.load()["hosts"] if h["group"] == "n8n_servers")
        n8n = N8nClient(f"https://localhost:{main_h['https_port']}/")
        wf = webhook_workflow(n8n, n8n_api(n8n, sbx.secrets()), "bench scaling", "bench-scaling",
                              "99999999-9999-4999-8999-999999999901", code=CODE, response_mode="onReceived")
        rows.append(("0 worker servers (bronze: main server alone)", measure(sbx, main_h, n8n, wf, "bench-scaling",
                                                                            a.executions, a.clients)))
        restarts.append(("bronze (n8n alone)", *steady_restart(n8n, "bench-scaling", main_h["name"])))
        for n in (1, 2):
            sbx.up(1, "n8n_workers")
            pyinfra("deploy.py", "--data", "n8n_tier=ouro")
            rows.append((f"{n} worker server{'s' if n > 1 else ''} (ouro: 2 workers each, concurrency 10)",
                         measure(sbx, main_h, n8n, wf, "bench-scaling", a.executions, a.clients)))
        pyinfra("deploy.py", "--data", "n8n_tier=platina")
        restarts.append(("platina (2 webhook processors, then the main process)",
                         *steady_restart(n8n, "bench-scaling", main_h["name"])))
    finally:
        sbx.down()
    base = rows[0][1]
    print()
    print(f"| set-up ({a.executions} executions, {a.clients} clients) | executions/min | ratio to one server |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:.0f} | {rate / base:.2f} |")
    print()
    print("| restart under 10 webhooks/s (runbooks/restart_n8n.py, main server) | webhooks failed | sent | "
          "first to last failure |")
    print("|---|---:|---:|---:|")
    for name, failed, sent, window in restarts:
        print(f"| {name} | {failed} | {sent} | {window:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
