"""Secret rotation (runbooks/rotate_secrets.py): new values, made once per run for every host."""

from __future__ import annotations

import os
import secrets as _random
import sys

from pyinfra import logger
from pyinfra.api import FunctionCommand, HiddenValue, operation

from tasks.config import persist_secret, rotation_pending_file
from tasks.operations import run_with_secret_file

ROTATABLE = {"postgres": "POSTGRES_PASSWORD", "restic": "RESTIC_PASSWORD"}
NEVER = {"N8N_ENCRYPTION_KEY": "n8n encrypts every credential with it: with a new key every credential is lost. "
                               "It is generated once and kept forever (see docs/backup.md)"}
_new: dict[str, str] = {}


def pending() -> dict[str, str]:
    """New values of a rotation that has not finished (interrupted, or failed on a host)."""
    from dotenv import dotenv_values

    f = rotation_pending_file()
    return {k: v for k, v in dotenv_values(f, interpolate=False).items() if v} if f.is_file() else {}


def _write_pending(values: dict[str, str]) -> None:
    f = rotation_pending_file()
    if not values:
        f.unlink(missing_ok=True)
        return
    f.touch(mode=0o600)
    f.chmod(0o600)
    f.write_text("# new values of a secret rotation that has not finished: runbooks/rotate_secrets.py\n"
                 "# uses them again and removes them once they are in .env. Do not edit.\n"
                 + "".join(f"{k}={v}\n" for k, v in sorted(values.items())))


def new_values(names: list[str]) -> dict[str, str]:
    """One new value per secret for the whole run (deploy files run once per host). They are kept
    in the pending file before any host is touched, so a rotation that is interrupted or fails
    on one host is finished by running it again with the same values: hosts that already have
    them say so, the others get them."""
    if not _new:
        carried = pending()
        _new.update(carried)
        for n in names:
            if ROTATABLE[n] in carried:
                logger.warning(f"{ROTATABLE[n]}: finishing the rotation that did not complete (its new value is "
                               f"in {rotation_pending_file()})")
    for n in names:
        _new.setdefault(ROTATABLE[n], _random.token_hex(24))
    _write_pending(_new)
    return {ROTATABLE[n]: _new[ROTATABLE[n]] for n in names}


def refuse_deploy_if_pending() -> None:
    """deploy.py with a rotation half done would put old values back on hosts that have new ones."""
    waiting = pending()
    names = sorted(k for k, v in waiting.items() if os.environ.get(k) != v)  # set by hand meanwhile: done
    if waiting and not names:
        _write_pending({})
    if names:
        secrets = ",".join(n for n, var in ROTATABLE.items() if var in names)
        print(f"mottivme-infra: a secret rotation has not finished ({', '.join(names)} in {rotation_pending_file()}); "
              f"a deploy now would put the old values back. Finish it first: pyinfra inventory.py "
              f"runbooks/rotate_secrets.py --data secrets={secrets}. Nothing was changed.", file=sys.stderr)
        sys.exit(2)


def _apply(state, host, values: HiddenValue):
    tmp = "/root/.mottivme-rotate.env"
    ok, out = run_with_secret_file(host, tmp, values.unmask(), f"n8n-rotate-secrets {tmp}", print_output=True)
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
        host.log_styled(f"not writing the new values: rotation failed on {names}, where the old value stays in "
                        f"force. Your .env keeps the old ones; the new ones wait in {rotation_pending_file()}. Fix "
                        "the cause and run this runbook again: it uses the same values, so hosts that rotated keep "
                        "them (deploy.py refuses to run until then)", fg="red", log_func=logger.error)
        return False
    left = pending()
    for name, value in values.items():
        where = persist_secret(name, value.unmask())
        if where:
            host.log_styled(f"{name}: new value written to {where}", fg="green", log_func=logger.info)
        else:
            host.log_styled(f"{name}: set the new value in your environment; it is not in a .env file this run "
                            f"can write (until then it is in {rotation_pending_file()})", fg="yellow",
                            log_func=logger.warning)
            continue
        left.pop(name, None)
    _write_pending(left)
    return True


@operation()
def persist(values: dict):
    """Write the new values back to the operator's .env, only if every host rotated."""
    yield FunctionCommand(_persist, (values,), {})
