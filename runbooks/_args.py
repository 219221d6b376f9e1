"""Checks of runbook input (`--data key=value`), before anything runs on a host."""

import re
import sys

from pyinfra import host


def arg(name: str, default: str, pattern: str, explain: str) -> str:
    """host.data[name] (from --data) or default; exit with a clear error when it is malformed."""
    value = str(host.data.get(name, default))
    if not re.fullmatch(pattern, value):
        refuse(f"--data {name}={value!r} is not valid: {explain}")
    return value


def refuse(message: str) -> None:
    """Stop the runbook before any operation runs, with one line saying why (exit 2)."""
    print(f"runbook: {message}", file=sys.stderr)
    sys.exit(2)
