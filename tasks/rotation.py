"""Secret rotation (runbooks/rotate_secrets.py): new values, made once per run for every host."""

from __future__ import annotations

import secrets as _random
from io import StringIO

from pyinfra import logger
from pyinfra.api import FunctionCommand, HiddenValue, operation

from tasks.config import persist_secret

ROTATABLE = {"postgres": "POSTGRES_PASSWORD", "restic": "RESTIC_PASSWORD"}
NEVER = {"N8N_ENCRYPTION_KEY": "n8n encrypts every credential with it: with a new key every credential is lost. "
                               "It is generated once and kept forever (see docs/backup.md)"}
_new: dict[str, str] = {}


def new_values(names: list[str]) -> dict[str, str]:
    """One new value per secret for the whole run (deploy files run once per host)."""
    for n in names:
        _new.setdefault(ROTATABLE[n], _random.token_hex(24))
    return {ROTATABLE[n]: _new[ROTATABLE[n]] for n in names}


def _apply(state, host, values: HiddenValue):
    tmp = "/root/.mottivme-rotate.env"
    host.run_shell_command(f"install -m 600 /dev/null {tmp}", print_input=False)
    try:
        host.put_file(StringIO(values.unmask()), tmp, print_output=False, print_input=False)
        ok, out = host.run_shell_command(f"n8n-rotate-secrets {tmp}", print_output=True, print_input=False)
    finally:
        host.run_shell_command(f"rm -f {tmp}", print_input=False)
    if not ok:
        host.log_styled("rotation failed: " + (out.stderr_lines or ["no output"])[-1], fg="red", log_func=logger.error)
    return ok


@operation()
def apply(values: HiddenValue):
    """Apply and verify new secret values on the host (n8n-rotate-secrets); the old value stays in
    force on failure. ``values`` is the text of a NAME=value file, kept hidden."""
    yield FunctionCommand(_apply, (values,), {})


def _persist(state, host, values: dict):
    if state.failed_hosts:
        names = ", ".join(sorted(h.name for h in state.failed_hosts))
        host.log_styled(f"not writing the new values: rotation failed on {names}; your .env keeps the old ones "
                        "(hosts that did rotate will be set back by the next deploy)", fg="red", log_func=logger.error)
        return False
    for name, value in values.items():
        where = persist_secret(name, value.unmask())
        if where:
            host.log_styled(f"{name}: new value written to {where}", fg="green", log_func=logger.info)
        else:
            host.log_styled(f"{name}: set the new value in your environment; it is not in a .env file this run "
                            "can write", fg="yellow", log_func=logger.warning)
    return True


@operation()
def persist(values: dict):
    """Write the new values back to the operator's .env, only if every host rotated."""
    yield FunctionCommand(_persist, (values,), {})
