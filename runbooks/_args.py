"""Runbook input, checked before anything runs on a host.

Each runbook declares its options once, as a literal dict the console (`mottivme`) reads without
running the runbook:

    OPTIONS = {"snapshot": ("latest", r"latest|[0-9a-f]{8,64}", "latest or a snapshot id")}
    #           name         default   pattern (whole value)       what a value must be

`options(OPTIONS)` returns the values as typed on the command line (`--data name=value`): pyinfra
turns `3e123456` into a float and `01234567` into 1234567 before a runbook sees host.data, so the
values are read back from the command line itself. A `--data` key that is not an option of the
runbook is refused (a misspelled key would otherwise be ignored), except group_data keys and
pyinfra's own connection and global-argument keys (`ssh_...`, `_sudo`, ...), which pyinfra uses
as host data. A value is never echoed whole when refused: a URL's password is masked.
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
import sys
from pathlib import Path

from tasks import groupdata


def given(argv: list[str] | None = None) -> dict[str, str]:
    """The `--data key=value` pairs of a pyinfra command line, as typed (the last one wins)."""
    argv = sys.argv if argv is None else argv
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--data" and i + 1 < len(argv):
            pair, i = argv[i + 1], i + 2
        elif a.startswith("--data="):
            pair, i = a[len("--data="):], i + 1
        else:
            i += 1
            continue
        key, sep, value = pair.partition("=")
        if sep:
            out[key.strip()] = value
    return out


@functools.cache
def _host_data_keys() -> frozenset[str]:
    """Every group_data key (pyinfra takes `--data` for them as host data overrides)."""
    return frozenset(k for f in sorted(groupdata.DIR.glob("*.py")) for k in groupdata.load_file(f))


def options(spec: dict[str, tuple], argv: list[str] | None = None) -> dict[str, str]:
    """The runbook's option values (given, else default), each checked against its pattern; one
    line and exit 2 for an unknown key or a malformed value."""
    values = given(argv)
    allowed = set(spec)
    for key in values:
        if key in allowed or key.startswith(("ssh_", "_")) or key in _host_data_keys():
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        known = ", ".join(sorted(allowed)) or "none"
        refuse(f"--data {key} is not an option of this runbook: {hint}its options: {known}")
    out = {}
    for name, (default, pattern, explain) in spec.items():
        value = values.get(name, default)
        if not re.fullmatch(pattern, value):
            refuse(f"--data {name}={mask(value)!r} is not valid: {explain}")
        out[name] = value
    return out


def mask(value: str) -> str:
    """A value fit to print: the password of a URL in it (scheme://user:password@) hidden."""
    return re.sub(r"(://[^:/@\s]*:)[^@]*@", r"\1***@", value)


def declared(path: Path) -> tuple[str, dict]:
    """A runbook read without running it: its docstring and its literal OPTIONS and RUNS_ON (those it
    has). ValueError names one that is not a literal."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id in ("OPTIONS", "RUNS_ON"):
            try:
                found[target.id] = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(target.id) from None
    return ast.get_docstring(tree) or "", found


def check_command_line(argv: list[str] | None = None) -> None:
    """For inventory.py, before pyinfra connects to any host: the runbook named on pyinfra's
    command line gets its `--data` checked here, once (one line, exit 2), rather than in every
    host's run of the file."""
    argv = sys.argv if argv is None else argv
    root = Path(__file__).resolve().parent
    for arg in argv:
        path = Path(arg)
        if path.suffix == ".py" and path.parent.name == "runbooks" and (root / path.name).is_file():
            spec = declared(root / path.name)[1].get("OPTIONS")
            if spec is not None:
                options(spec, argv)
            return


def refuse(message: str) -> None:
    """Stop the runbook before any operation runs, with one line saying why (exit 2)."""
    print(f"runbook: {message}", file=sys.stderr)
    sys.exit(2)
