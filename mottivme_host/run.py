"""The seam through which every external command runs (docker, restic, curl, ...).

Programs call `runner.run([...])`; tests pass a recording fake (FakeRunner in tests/helpers.py) that
answers per command and records what was asked, so every decision can be driven from the quick
tier. Commands are argv lists, never shell strings: no value is ever interpreted by a shell.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# `docker run` options that say how, not what: left out of a failure's one line (the program and
# its arguments are what an operator needs; the full command is in the log's context)
_DOCKER_RUN_PAIRS = {"-e", "-v", "--network", "--name", "-w", "--user"}
_DOCKER_RUN_FLAGS = {"--rm", "-i", "-t", "-d"}


def shown(argv: list[str]) -> str:
    """A command for a one-line message: `docker run … IMAGE PROGRAM ARGS` (its options elided)."""
    if argv[:2] != ["docker", "run"]:
        return " ".join(argv)[:160]
    rest, i = argv[2:], 0
    while i < len(rest) and rest[i].startswith("-"):
        i += 2 if rest[i] in _DOCKER_RUN_PAIRS else 1
    return ("docker run … " + " ".join(rest[i:]))[:160]


class CommandFailed(Exception):
    def __init__(self, result: Result):
        self.result = result
        super().__init__(f"`{shown(result.argv)}` exited {result.returncode}")


class Runner:
    """Runs commands for real. `stdin`/`stdout` may be open files (a dump streamed to disk, a
    dump fed to pg_restore); otherwise output is captured as text. `log` (an open file) gets
    stderr when given, so the program's own log has the details."""

    def run(self, argv: list[str], *, input: str | None = None, stdin=None, stdout=None, log=None,
            env: dict | None = None, check: bool = True, cwd: str | None = None,
            timeout: float | None = None, started=None, new_session: bool = False) -> Result:
        """`started(process)`, when given, is called with the running process (its `terminate()`
        and `kill()`): for a command another thread may have to stop. `new_session`: the command
        runs in a session of its own (a terminal's Ctrl-C or hang-up does not reach it)."""
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        out = stdout if stdout is not None else subprocess.PIPE
        err = log if log is not None else subprocess.PIPE
        if started is None:
            p = subprocess.run(argv, input=input, stdin=stdin, text=True, cwd=cwd, env=full_env, timeout=timeout,
                               stdout=out, stderr=err, start_new_session=new_session)
            got_out, got_err = p.stdout, p.stderr
        else:
            with subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else stdin, text=True, cwd=cwd,
                                  env=full_env, stdout=out, stderr=err, start_new_session=new_session) as p:
                started(p)
                try:
                    got_out, got_err = p.communicate(input, timeout=timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    raise
        r = Result(list(argv), p.returncode, got_out if stdout is None else "",
                   got_err if log is None else "")
        if check and not r.ok:
            raise CommandFailed(r)
        return r

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> float:
        return time.monotonic()
