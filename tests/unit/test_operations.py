"""Operations of tasks/operations.py driven as pyinfra plans them: their generator (`_inner`) run
against a host whose facts are given, the commands it would run read back."""

from __future__ import annotations

import pytest
from pyinfra.facts.files import FindInFile

from tasks import operations
from tasks.facts import ComposeServices

MODULE = "/usr/local/lib/mottivme/mottivme_host/stop_workers.py"


class FactsHost:
    def __init__(self, facts: dict):
        self.facts = facts

    def get_fact(self, cls, **kw):
        return self.facts[cls]


def planned(monkeypatch, services: dict, keep_stack_lines) -> list:
    monkeypatch.setattr(operations, "host", FactsHost({ComposeServices: services, FindInFile: keep_stack_lines}))
    return list(operations.workers_stopped_before_apply._inner(project="n8n", command_module=MODULE))


def test_running_workers_are_stopped_by_the_host_program_with_its_output_shown(monkeypatch):
    (cmd,) = planned(monkeypatch, {"n8n": "running", "n8n-worker-1": "running", "n8n-worker-1-runners": "running"},
                     ['    p.add_argument("--keep-stack", action="store_true",'])
    assert cmd.function is operations._run_and_report
    assert cmd.args[0] == "mottivme-host stop-workers --keep-stack"


@pytest.mark.parametrize("services", [
    {"n8n": "running", "caddy": "running"},  # no worker in this stack
    {"n8n": "running", "n8n-worker-1": "exited"},  # a worker stopped already
    {"n8n-worker-1-runners": "running"},  # a runner is not a worker
    {},  # a fresh server
], ids=["no worker", "stopped", "runner only", "nothing"])
def test_no_worker_running_is_nothing_to_do(monkeypatch, services):
    assert planned(monkeypatch, services, ['"--keep-stack"']) == []


@pytest.mark.parametrize("lines", [[], None], ids=["older host programs", "none installed"])
def test_host_programs_without_the_option_leave_the_workers_to_compose_up(monkeypatch, lines):
    assert planned(monkeypatch, {"n8n-worker-1": "running"}, lines) == []
