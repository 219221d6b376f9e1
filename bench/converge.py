"""Converge benchmark (`make bench`): prints a table.

- fresh server -> n8n ready: wall time of the first `pyinfra inventory.py deploy.py`;
- no-op re-run for 1, 2, 4 and 8 servers (every server already converged);
- the floor: a bare pyinfra deploy that gathers exactly the facts the no-op run gathered
  (recorded by bench/record_facts.py, replayed by bench/facts_only.py), and the no-op run as a
  ratio of it: the project's own cost beyond the facts it must read.

Uses its own sandbox (state .sandbox-bench, servers bch-N) and removes it at the end.
`python bench/converge.py --sizes 1,2` measures fewer sizes (8 fresh n8n servers need about
4 GB of RAM and several minutes of CPU on 2 cores).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.core import Sandbox  # noqa: E402

STATE = ROOT / ".sandbox-bench"
PYINFRA = [sys.executable, "-m", "pyinfra"]
FACTS = STATE / "facts.json"


def run(deploy: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "SSH_", "POSTGRES_"))}
    env.update(SBX_STATE=str(STATE), MOTTIVME_ENV_FILE="/dev/null", MOTTIVME_FACTS_FILE=str(FACTS))
    t0 = time.perf_counter()
    r = subprocess.run([*PYINFRA, "-y", "--parallel", "8", "inventory.py", deploy], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{deploy} failed:\n{r.stderr[-3000:]}")
    return dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1,2,4,8")
    p.add_argument("--repeat", type=int, default=3, help="no-op runs per size (median is reported)")
    a = p.parse_args()
    sizes = sorted(int(x) for x in a.sizes.split(","))
    sbx = Sandbox(state_dir=STATE, prefix="bch")
    sbx.down(stop_shared_services=False)
    rows = []
    try:
        have = 0
        for n in sizes:
            sbx.up(n - have, "n8n_servers")
            t_fresh = run("deploy.py")  # converges the new servers (the others are no-ops)
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


if __name__ == "__main__":
    main()
