"""Runbook benchmark: prints a table.

- restart unavailability (runbooks/restart_n8n.py) vs n8n's own start-to-ready time, same run;
- emergency deploy forward (2.41.1 -> 2.41.0) and back, and an automatic rollback (a version
  that migrates the database and crashes: rollback + database restore);
- DR drill RTO for a fresh server (destroyed -> rebuilt -> restored -> ready).

Own sandbox (.sandbox-bench-runbooks, servers rbk-N), removed at the end.
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from sandbox import seed  # noqa: E402
from sandbox.core import Sandbox  # noqa: E402

STATE = ROOT / ".sandbox-bench-runbooks"
ENV = common.sandbox_env(STATE)


def pyinfra(*args: str, check: bool = True) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = common.pyinfra(ENV, *args, check=check)
    return time.perf_counter() - t0, r.stdout + r.stderr


def main() -> None:
    sbx = Sandbox(state_dir=STATE, prefix="rbk")
    sbx.down(stop_shared_services=False)
    rows = []
    try:
        for group in ("n8n_servers", "backup_vault", "supabase"):
            sbx.up(1, group)
        pyinfra("deploy.py", "sandbox/supabase.py")
        h = next(x for x in sbx.load()["hosts"] if x["group"] == "n8n_servers")
        # n8n's own start-to-ready: `start` of a stopped container until readiness answers 200
        ready = ("until [ \"$(curl -sk -o /dev/null -w '%{http_code}' https://localhost/healthz/readiness)\" = 200 ]; "
                 "do sleep 0.2; done")
        seed.ssh(sbx, h, "mottivme-host compose stop n8n >/dev/null 2>&1")
        t0 = time.perf_counter()
        seed.ssh(sbx, h, f"mottivme-host compose start n8n >/dev/null 2>&1; {ready}")
        start_to_ready = time.perf_counter() - t0
        _, out = pyinfra("runbooks/restart_n8n.py")
        down = float(re.search(r"unavailable for ([0-9.]+)s", out).group(1))
        rows.append(("restart: n8n unavailable (runbooks/restart_n8n.py)", down, f"n8n start-to-ready {start_to_ready:.1f} s"))
        t, _ = pyinfra("runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.0")
        rows.append(("emergency deploy 2.41.1 -> 2.41.0 (backup, switch, ready, smoke)", t, ""))
        t, _ = pyinfra("runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.1")
        rows.append(("emergency deploy 2.41.0 -> 2.41.1", t, ""))
        seed.build_failing_n8n_image(sbx, h)
        t, out = pyinfra("runbooks/emergency_deploy.py", "--data", f"n8n_version={seed.FAILING_N8N_VERSION}",
                         "--data", "timeout=30", check=False)
        assert "rolled back to 2.41.1" in out, out[-2000:]
        rows.append(("automatic rollback incl. database restore (30 s readiness timeout)", t, ""))
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "runbooks.dr_drill", "--report-dir", d],
                               cwd=ROOT, env=ENV, capture_output=True, text=True)
            report = next(Path(d).glob("dr-drill-*.md")).read_text()
        m = re.search(r"\| RTO[^|]*\| ([0-9.]+) s \|", report)
        rows.append(("DR drill RTO: server destroyed -> rebuilt, restored, ready", float(m.group(1)) if m else float("nan"),
                     "drill " + ("passed" if r.returncode == 0 else "FAILED")))
    finally:
        sbx.down()
    print()
    print("| measure | seconds | reference |")
    print("|---|---:|---|")
    for name, secs, ref in rows:
        print(f"| {name} | {secs:.1f} | {ref} |")


if __name__ == "__main__":
    main()
