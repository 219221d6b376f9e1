"""The runbooks, read as data (never run) for the console: each file of runbooks/ with its
one-line purpose (the first line of its docstring), its text, and its OPTIONS (a literal dict:
name -> (default, pattern, explanation); a default of False is a flag)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the console script runs from anywhere: the project's modules

from runbooks._args import declared  # noqa: E402  (one reader of a runbook's literals)

RUNBOOKS = ROOT / "runbooks"
# runbooks that are programs of their own (python -m runbooks.NAME), not pyinfra deploy files
PROGRAMS = {"dr_drill", "railway_redeploy"}


@dataclass(frozen=True)
class Runbook:
    name: str  # file name without .py (restore, dr_drill)
    path: Path
    doc: str
    options: dict = field(default_factory=dict)
    runs_on: tuple[str, ...] = ()  # the inventory groups it works on (RUNS_ON); () for a program

    @property
    def command(self) -> str:
        """The console's name for it: dashes, like every other command (dr-drill)."""
        return self.name.replace("_", "-")

    @property
    def summary(self) -> str:
        """The purpose: the docstring's first line, without the usage that may follow it."""
        first = self.doc.strip().splitlines()[0] if self.doc.strip() else ""
        return first.split(": `pyinfra")[0].rstrip(":.")

    @property
    def is_program(self) -> bool:
        return self.name in PROGRAMS


class CatalogError(Exception):
    pass


def read(path: Path) -> Runbook:
    try:
        doc, found = declared(path)
    except ValueError as e:
        raise CatalogError(f"{path.name}: {e} must be a literal (the console reads it without "
                           "running the runbook)") from None
    if "OPTIONS" not in found:
        raise CatalogError(f"{path.name}: no OPTIONS (declare OPTIONS = {{}} when it takes none)")
    if "RUNS_ON" not in found and path.stem not in PROGRAMS:
        raise CatalogError(f"{path.name}: no RUNS_ON (the inventory groups it works on)")
    if not doc:
        raise CatalogError(f"{path.name}: no docstring (its first line is the runbook's purpose)")
    return Runbook(path.stem, path, doc, found["OPTIONS"], tuple(found.get("RUNS_ON", ())))


def runbooks() -> list[Runbook]:
    return [read(p) for p in sorted(RUNBOOKS.glob("*.py")) if not p.name.startswith("_")]
