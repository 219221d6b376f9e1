"""A recording stand-in for mottivme_host.run.Runner: the quick tier drives the host programs'
decisions with it (what a restore does when a count mismatches, when the swap fails, ...).

    r = FakeRunner()
    r.on("restic cat config", rc=1, stderr="Fatal: unable to open config file")
    r.on("pg_dump", write=b"dump bytes")            # written to the stdout file the program gives
    r.on(lambda cmd: cmd.startswith("curl"), stdout="200")
    ... program runs ...
    assert r.ran("restic init")

Rules are tried newest first; a rule's `times` limits how often it answers. A command no rule
matches succeeds with no output. `sleep()` advances a fake clock, so waits cost no time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mottivme_host.run import CommandFailed, Result


@dataclass
class Rule:
    match: Callable[[str], bool]
    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    write: bytes | str | None = None
    call: Callable | None = None  # call(argv, kw) -> None | (rc, stdout, stderr)
    times: int | None = None


@dataclass
class Call:
    argv: list[str]
    kw: dict = field(default_factory=dict)

    @property
    def cmd(self) -> str:
        return " ".join(self.argv)


class FakeRunner:
    def __init__(self):
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.clock = 1000.0
        self.sleeps: list[float] = []

    def on(self, match, rc: int = 0, stdout: str = "", stderr: str = "", write=None, call=None, times=None) -> Rule:
        """`match`: a substring of the command line, a compiled regex, or a predicate on it."""
        if isinstance(match, str):
            m = match
            pred = lambda cmd: m in cmd  # noqa: E731
        elif isinstance(match, re.Pattern):
            pred = lambda cmd: bool(match.search(cmd))  # noqa: E731
        else:
            pred = match
        rule = Rule(pred, rc, stdout, stderr, write, call, times)
        self.rules.insert(0, rule)
        return rule

    def run(self, argv, *, input=None, stdin=None, stdout=None, log=None, env=None, check=True, cwd=None,
            timeout=None) -> Result:
        call = Call(list(argv), dict(input=input, stdin=stdin, stdout=stdout, env=env, cwd=cwd))
        self.calls.append(call)
        rc, out, err = 0, "", ""
        for rule in self.rules:
            if rule.times == 0 or not rule.match(call.cmd):
                continue
            if rule.times is not None:
                rule.times -= 1
            rc, out, err = rule.rc, rule.stdout, rule.stderr
            if rule.write is not None and stdout is not None:
                data = rule.write
                if "b" in getattr(stdout, "mode", ""):
                    stdout.write(data if isinstance(data, bytes) else data.encode())
                else:
                    stdout.write(data if isinstance(data, str) else data.decode())
                stdout.flush()
            if rule.call is not None:
                got = rule.call(call.argv, call.kw)
                if got is not None:
                    rc, out, err = got
            break
        if log is not None and err:
            log.write(err if "b" not in getattr(log, "mode", "") else err.encode())
            err = ""
        result = Result(call.argv, rc, "" if stdout is not None else out, err)
        if check and rc != 0:
            raise CommandFailed(result)
        return result

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def now(self) -> float:
        return self.clock

    # --- what was run ----------------------------------------------------------------------
    def commands(self) -> list[str]:
        return [c.cmd for c in self.calls]

    def ran(self, fragment: str) -> bool:
        return any(fragment in c for c in self.commands())

    def index(self, fragment: str) -> int:
        """Position of the first command containing `fragment` (ValueError when none)."""
        for i, c in enumerate(self.commands()):
            if fragment in c:
                return i
        raise ValueError(f"no command with {fragment!r} in:\n" + "\n".join(self.commands()))
