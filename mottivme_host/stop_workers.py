"""Stop a worker server's n8n workers (and their task runners) without losing an execution.

mottivme-host stop-workers [--keep-stack]

`compose stop` of this worker server's workers, each given stop_seconds (drain + 30 s) to finish its
running executions (it takes no new one once told to stop) while its task runner still serves
it; then `compose down` of the stack (the runners; every container removed). Executions still
queued stay in Redis for the other workers. n8n's queue is held still for the moment the
workers are told to stop (queue_hold.py: an execution one fetched just before would be lost
otherwise). Volumes are kept; `compose up -d` (the deploy) starts the workers again. No
container here: nothing to do.
The drain runs it (tasks/workers.py `drain`): the runbooks drain_worker, emergency_deploy and
restore, a deploy that moves n8n's version, and one that leaves a server without workers.

--keep-stack: only the queue workers that run now are stopped, held the same way, on the main
server's stack as on a worker server's; the rest of the stack keeps running and every container
stays. The deploy runs it just before it applies a new configuration (`compose up -d`, which
then re-creates the workers, or starts them again): without it, `compose up -d` would re-create
them unheld. Nothing running, nothing said.
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
    # the stack, its workers and their stop timeout are the settings'
    p.add_argument("--keep-stack", action="store_true",
                   help="stop only the queue workers that run now (held), on any stack; nothing removed")


def main(ns, s: Settings, runner: Runner) -> int:
    if ns.keep_stack:
        return before_apply(s, runner)
    if "n8n" in s.services:
        raise Fail("this is an n8n server's main stack, not a worker server's: nothing was stopped "
                   "(n8n-restart restarts its workers)", 2)
    st = Stack(s, runner)
    present = st.compose("ps", "-a", "-q", check=False)  # stopped ones too: `down` removes them
    if present.ok and not present.stdout.strip():
        out_line("no worker is here: nothing to stop")
        return 0
    t = runner.now()
    # the workers first, on their own: they finish their running executions while their task
    # runners still serve them (`down` alone stops a worker's runner before the worker: its Code
    # nodes would lose their runner, and the worker would get its signal seconds later)
    if s.workers:
        _held_stop(s, st, runner, list(s.workers))
    st.compose_checked("down", "-t", str(s.stop_seconds))  # then the runners, and every container removed
    out_line(f"workers stopped and removed in {runner.now() - t:.0f}s (each given {s.stop_seconds}s to finish its "
             "running executions; queued ones wait in Redis)")
    return 0


def _held_stop(s: Settings, st: Stack, runner: Runner, workers: list[str]) -> None:
    """`compose stop` of `workers`, n8n's queue held while they are told to stop."""
    with redisconn.connected(s) as redis:
        queue_hold.held_stop(st, runner, workers, redis, PROG,
                             lambda: st.compose_checked("stop", "-t", str(s.stop_seconds), *workers))


def before_apply(s: Settings, runner: Runner) -> int:
    """--keep-stack: the running queue workers stopped held; the rest of the stack as it is."""
    if not s.workers:
        return 0
    st = Stack(s, runner)
    workers = list(queue_hold.running(st, runner, s.workers))  # not one the compose file no longer names
    if not workers:
        return 0
    t = runner.now()
    _held_stop(s, st, runner, workers)
    out_line(f"{', '.join(workers)} stopped in {runner.now() - t:.0f}s before the new configuration is applied (each "
             f"given {s.stop_seconds}s to finish its running executions; queued ones wait in Redis)")
    return 0
