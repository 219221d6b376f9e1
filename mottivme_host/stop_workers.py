"""Stop a worker server's n8n workers (and their task runners) without losing an execution.

mottivme-host stop-workers

`compose stop` of this worker server's workers, each given drain_seconds + 30 s to finish its
running executions (it takes no new one once told to stop) while its task runner still serves
it; then `compose down` of the stack (the runners; every container removed). Executions still
queued stay in Redis for the other workers. n8n's queue is held still for the moment the
workers are told to stop (queue_hold.py: an execution one fetched just before would be lost
otherwise). Volumes are kept; `compose up -d` (the deploy) starts the workers again. No
container here: nothing to do.
The drain runs it (tasks/workers.py `drain`): the runbooks drain_worker, emergency_deploy and
restore, a deploy that moves n8n's version, and one that leaves a server without workers.
"""

from __future__ import annotations

import argparse

from . import queue_hold, redisconn
from .common import Fail, out_line
from .run import Runner
from .settings import Settings
from .stack import Stack

PROG = "stop-workers"  # as the CLI names it in its FAILED line


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass  # none: the stack, its workers and their stop timeout are the settings'


def main(ns, s: Settings, runner: Runner) -> int:
    if "n8n" in s.services:
        raise Fail("this is an n8n server's main stack, not a worker server's: nothing was stopped "
                   "(n8n-restart restarts its workers)", 2)
    st = Stack(s, runner)
    present = st.compose("ps", "-a", "-q", check=False)  # stopped ones too: `down` removes them
    if present.ok and not present.stdout.strip():
        out_line("no worker is here: nothing to stop")
        return 0
    timeout = s.drain_seconds + 30
    t = runner.now()

    # the workers first, on their own: they finish their running executions while their task
    # runners still serve them (`down` alone stops a worker's runner before the worker: its Code
    # nodes would lose their runner, and the worker would get its signal seconds later)
    if s.workers:
        with redisconn.connected(s) as redis:
            queue_hold.held_stop(st, runner, list(s.workers), redis, PROG,
                                 lambda: st.compose_checked("stop", "-t", str(timeout), *s.workers))
    st.compose_checked("down", "-t", str(timeout))  # then the runners, and every container removed
    out_line(f"workers stopped and removed in {runner.now() - t:.0f}s (each given {timeout}s to finish its running "
             "executions; queued ones wait in Redis)")
    return 0
