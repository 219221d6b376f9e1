"""What the benchmarks share: the environment of a run on a bench's own sandbox, and pyinfra in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.variables import VARIABLES  # noqa: E402

PYINFRA = [sys.executable, "-m", "pyinfra"]


def sandbox_env(state: Path, **extra: str) -> dict[str, str]:
    """This shell's environment without any of the project's variables (tasks/variables.py: values a
    production .env exported in the shell never reach a bench), on the sandbox in `state` only."""
    names = {v.name for v in VARIABLES} | {"SBX_STATE"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(SBX_STATE=str(state), MOTTIVME_ENV_FILE="/dev/null", MOTTIVME_TARGET="sandbox", **extra)
    return env


def pyinfra(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`pyinfra -y inventory.py ARGS` from the repository's root; a failure ends the bench (`check`)."""
    r = subprocess.run([*PYINFRA, "-y", "inventory.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"pyinfra {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return r
