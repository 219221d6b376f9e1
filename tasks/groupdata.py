"""group_data as pyinfra merges it, for programs that read it outside a pyinfra run (the
sandbox's image builder, the unit tests, the benchmarks): all.py, then each named group's file."""

from __future__ import annotations

import runpy
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "group_data"


class Data(dict):
    """A dict whose keys read as attributes too, like pyinfra's host.data."""

    __getattr__ = dict.__getitem__


def load_file(path: Path) -> dict:
    """One group_data file's settings."""
    return {k: v for k, v in runpy.run_path(str(path)).items() if not k.startswith("__")}


def load(*groups: str) -> Data:
    d = Data()
    for g in ("all", *groups):
        d.update(load_file(DIR / f"{g}.py"))
    return d
