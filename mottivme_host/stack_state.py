"""What an n8n stack runs, for the deploy to compare before it changes anything (tasks/versions.py):
the stack's n8n version and salted fingerprints of the secrets in use, never their values.

    python3 stack_state.py ENV_FILE RESTIC_PASSWORD_FILE SALT
    N8N_VERSION=2.41.1
    N8N_ENCRYPTION_KEY=<fingerprint>
    ...
    STATE=ok

The deploy runs this file's own text with the server's python3 (tasks/facts.StackState), before the
host programs are installed, so it imports nothing of this package: standard library only.
"""

from __future__ import annotations

import hashlib
import sys

# the secrets whose value in use on a server a deploy compares with .env's (never overwrites)
IN_USE = ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RESTIC_PASSWORD")
PBKDF2_ROUNDS = 100_000


def fingerprint(value: str, salt: str) -> str:
    """A value's salted, slow fingerprint (PBKDF2-SHA256): equal values match, and nothing shown
    at any verbosity helps guess one (the deploy's salt is new on every run)."""
    return hashlib.pbkdf2_hmac("sha256", value.encode(), salt.encode(), PBKDF2_ROUNDS).hex()[:32]


def lines(env_file: str, password_file: str, salt: str) -> list[str]:
    env = {}
    with open(env_file) as f:  # KEY=value lines, as mottivme_host.envfile reads them
        for line in f:
            line = line.rstrip("\n")
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                env[k.strip()] = v
    try:
        with open(password_file) as f:
            env["RESTIC_PASSWORD"] = (f.read().splitlines() or [""])[0]
    except OSError:
        pass
    out = ["N8N_VERSION=" + env.get("N8N_VERSION", "")]
    out += [f"{k}={fingerprint(env[k], salt)}" for k in IN_USE if env.get(k)]
    return out + ["STATE=ok"]


if __name__ == "__main__":
    print("\n".join(lines(*sys.argv[1:4])))
