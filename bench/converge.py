"""Converge benchmark (`make bench`): prints a table.

- fresh server -> n8n ready: wall time of the first `pyinfra inventory.py deploy.py`;
- no-op re-run for 1, 2, 4 and 8 servers (every server already converged);
- the floor: a bare pyinfra deploy that gathers exactly the facts the no-op run gathered
  (recorded by bench/record_facts.py, replayed by bench/facts_only.py), and the no-op run as a
  ratio of it: the project's own cost beyond the facts it must read.
- `--profile N`: after the table, the fresh run's N slowest operations (time from pyinfra's
  "Starting operation" line to the next one's, the whole deploy on the new servers at once).

Uses its own sandbox (state .sandbox-bench, servers bch-N) and removes it at the end.
`python bench/converge.py --sizes 1,2` measures fewer sizes (8 fresh n8n servers need about
4 GB of RAM and several minutes of CPU on 2 cores).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from sandbox.core import Sandbox  # noqa: E402

STATE = ROOT / ".sandbox-bench"
FACTS = STATE / "facts.json"


def run(deploy: str, steps: list | None = None) -> float:
    """Wall time of one pyinfra run; with `steps`, appends (seconds, operation) for each of its
    operations, timed by when its output lines arrive."""
    env = common.sandbox_env(STATE, MOTTIVME_FACTS_FILE=str(FACTS), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([*common.PYINFRA, "-y", "--parallel", "8", "inventory.py", deploy], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, started = [], None
    for line in p.stdout:
        out.append(line)
        now = time.perf_counter() - t0
        name = line.partition("Starting operation: ")[2].strip()
        if name:
            if started and steps is not None:
                steps.append((now - started[0], started[1]))
            started = (now, name)
    dt = time.perf_counter() - t0
    if started and steps is not None:
        steps.append((dt - started[0], started[1]))
    if p.wait() != 0:
        sys.exit(f"{deploy} failed:\n{''.join(out)[-3000:]}")
    return dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1,2,4,8")
    p.add_argument("--repeat", type=int, default=3, help="no-op runs per size (median is reported)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print the fresh run's N slowest operations")
    a = p.parse_args()
    sizes = sorted(int(x) for x in a.sizes.split(","))
    sbx = Sandbox(state_dir=STATE, prefix="bch")
    sbx.down(stop_shared_services=False)
    rows, steps = [], []
    try:
        have = 0
        for n in sizes:
            sbx.up(n - have, "n8n_servers")
            t_fresh = run("deploy.py", steps if n == sizes[0] else None)  # converges the new servers (the others are no-ops)
            have = n
            run("bench/record_facts.py")  # a no-op run that writes down the facts it gathers
            noop = sorted(run("deploy.py") for _ in range(a.repeat))[a.repeat // 2]
            floor = sorted(run("bench/facts_only.py") for _ in range(a.repeat))[a.repeat // 2]
            rows.append((n, t_fresh if n == sizes[0] else None, noop, floor))
            print(f"  measured {n} server(s)", file=sys.stderr)
    finally:
        sbx.down()
    print()
    print("| servers | fresh -> n8n ready (s) | no-op re-run (s) | facts-only floor (s) | no-op / floor |")
    print("|---:|---:|---:|---:|---:|")
    for n, fresh, noop, floor in rows:
        f = f"{fresh:.1f}" if fresh is not None else "-"
        print(f"| {n} | {f} | {noop:.1f} | {floor:.1f} | {noop / floor:.2f} |")
    if a.profile:
        print()
        print(f"| fresh run, slowest operations ({sizes[0]} server(s)) | s |")
        print("|---|---:|")
        for seconds, name in sorted(steps, reverse=True)[:a.profile]:
            cell = name.replace("|", "/")  # pyinfra's "deploy | operation": one table cell
            print(f"| {cell} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
