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
    """all.py, then each group's file that exists (a group without one adds nothing, as in pyinfra)."""
    d = Data(load_file(DIR / "all.py"))
    for g in groups:
        if (DIR / f"{g}.py").exists():
            d.update(load_file(DIR / f"{g}.py"))
    return d


def defined_in(key: str, *groups: str) -> Path:
    """The file whose value of `key` is in effect for these groups: the last that sets it."""
    for g in reversed(("all", *groups)):
        path = DIR / f"{g}.py"
        if path.exists() and key in load_file(path):
            return path
    raise KeyError(f"{key} is set in none of group_data/{{all,{','.join(groups)}}}.py")


def with_literal(text: str, name: str, key: str, value: str | list[str]) -> str:
    """A group_data file's `text` with `key = value` in place of the one top-level assignment of a
    literal it holds (comments, order and every other line kept). ValueError (one line, naming the
    file `name`) when it holds no such assignment, or more than one."""
    import ast
    import json

    found = [n for n in ast.parse(text).body if isinstance(n, ast.Assign) and len(n.targets) == 1
             and isinstance(n.targets[0], ast.Name) and n.targets[0].id == key]
    if len(found) != 1:
        raise ValueError(f"{name}: {key} is assigned {len(found)} times at the top level; set it there by hand")
    node = found[0].value
    try:
        ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{name}: {key} is not a plain value there; set it by hand") from None
    lines = text.splitlines(keepends=True)

    def offset(line: int, col: int) -> int:  # ast's columns count UTF-8 bytes
        return sum(len(x) for x in lines[:line - 1]) + len(lines[line - 1].encode()[:col].decode())

    return text[:offset(node.lineno, node.col_offset)] + json.dumps(value) + text[offset(node.end_lineno,
                                                                                          node.end_col_offset):]


def write_text(path: Path, text: str) -> None:
    """Replace a file's content whole (a reader never sees half of it)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
