import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.variables import VARIABLES  # noqa: E402

# Variables the project reads from the environment (tasks/variables.py); tests start from none of
# them, nor from the sandbox's own.
PROJECT_VARS = [v.name for v in VARIABLES] + ["SBX_STATE"]

GOOD_SECRETS = {
    "N8N_ENCRYPTION_KEY": "0123456789abcdef" * 4,
    "POSTGRES_PASSWORD": "pg-password-0123456789",
    "N8N_OWNER_EMAIL": "owner@example.test",
    "N8N_OWNER_PASSWORD": "Owner-pass-123",
    "N8N_HOST": "n8n.example.test",
    "RESTIC_PASSWORD": "restic-password-0123456789",
}


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_VARS}
    env.update(extra)
    return env


def run_pyinfra(args, env, timeout=900, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run the pyinfra CLI exactly as a user does, from the repository root."""
    return subprocess.run([str(ROOT / ".venv" / "bin" / "pyinfra"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tmp_env_file(tmp_path):
    """An empty .env in a temp dir, so the user's own .env is never read by a test."""
    f = tmp_path / "empty.env"
    f.write_text("")
    return f
