"""Integration tier: real sandbox servers (systemd, sshd, Docker inside), a real n8n.

One sandbox (state in .sandbox-test/, servers tst-N) is shared by the tests of a line: a server
that the deploy turns into an n8n host, the backup vault (which also looks at the n8n server
from the private network, the way another machine would), the stand-in for Supabase's
database, and the monitor.

`make test` runs the tier as one line. `pytest -m integration -n 2` (pytest-xdist, tests/helpers.py
LINES) runs two lines at once: the runbooks and scaling tests on one worker with a sandbox of their
own (tests/helpers.py STATE, PREFIX), everything else on the other; a line's tests still run one at
a time, in file order, on servers nobody else touches (why `make test` does not yet: docs/sandbox.md).
"""

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sandbox import seed
from sandbox.core import Sandbox, stop_shared_if_unused
from sandbox.n8n_client import N8nClient
from tests.helpers import PREFIX, ROOT, STATE, Server, clean_env, line_of, run_pyinfra

_STARTED = pytest.StashKey[float]()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # tests that replace a server run after every other test of the shared sandbox
    items.sort(key=lambda item: item.get_closest_marker("replaces_servers") is not None)


def _line_of(item) -> str:
    return line_of(item.nodeid)


def pytest_sessionstart(session):
    session.config.stash[_STARTED] = time.time()


def pytest_sessionfinish(session):
    """After a session that used a test sandbox, the controller (not an xdist worker) stops the
    private engine and the apt proxy if no sandbox server is left anywhere; a line only removes
    its own servers. (A quick-tier run leaves them as they were.)"""
    if hasattr(session.config, "workerinput") or os.environ.get("KEEP_SANDBOX"):
        return
    started = session.config.stash.get(_STARTED, time.time())
    if any(f.stat().st_mtime >= started for f in ROOT.glob(".sandbox-test*/hosts.json")):
        stop_shared_if_unused()


@pytest.fixture(scope="session")
def sbx():
    s = Sandbox(state_dir=STATE, prefix=PREFIX)
    # REUSE_SANDBOX=1 (with KEEP_SANDBOX=1 on the run before) skips the fresh servers: for
    # iterating on one test; CI and `make test` always start from fresh servers.
    if not (os.environ.get("REUSE_SANDBOX") and len(s.load()["hosts"]) == 4):
        s.down(stop_shared_services=False)  # whatever an interrupted earlier run left behind
        s.up_each([("n8n_servers", 1, None), ("backup_vault", 1, None), ("supabase", 1, None), ("monitors", 1, None)])
    yield s
    if not os.environ.get("KEEP_SANDBOX"):
        s.down(stop_shared_services=False)  # the other line may still run: pytest_sessionfinish


class Beside:
    """Modules marked `beside` bring servers of their own (the Debian 12 tier): their scenario, the
    module's `beside(tmp_dir)`, runs in a thread while the other tests of the line do - two cores
    mostly wait on servers. It starts before the first test of its line (its xdist group) in this
    process sets anything up (sandboxes set up what they share one at a time: sandbox/core.py);
    the module's test collects the outcome (`beside_outcome`); the session waits for every
    scenario before it ends."""

    def __init__(self, session):
        self.modules = {}  # module name -> (module, line)
        for item in session.items:
            if item.get_closest_marker("beside"):
                self.modules[item.module.__name__] = (item.module, _line_of(item))
        self.runs: dict = {}

    def start(self, name: str) -> None:
        if name in self.runs:
            return
        module = self.modules[name][0]
        box: dict = {}
        tmp = Path(tempfile.mkdtemp(prefix=f"mottivme-{name.rsplit('.', 1)[-1]}-"))

        def run():
            try:
                module.beside(tmp)
            except BaseException as e:  # noqa: BLE001 - re-raised by the module's test
                box["error"] = e
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        t = threading.Thread(target=run, name=f"beside-{name}", daemon=True)
        t.start()
        self.runs[name] = (t, box)

    def start_line(self, line: str) -> None:
        for name, (_, module_line) in sorted(self.modules.items()):
            if module_line == line:
                self.start(name)

    def outcome(self, name: str) -> None:
        self.start(name)
        t, box = self.runs[name]
        t.join()
        if "error" in box:
            raise box["error"]


_BESIDE = pytest.StashKey[Beside]()


def _beside_of(session) -> Beside:
    if _BESIDE not in session.stash:
        session.stash[_BESIDE] = Beside(session)
    return session.stash[_BESIDE]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture of the line's first test (the line's own sandbox and first deploy take
    minutes): its beside scenarios start now."""
    if "tests/integration" in str(item.fspath):
        _beside_of(item.session).start_line(_line_of(item))


@pytest.fixture(scope="session")
def beside(request):
    b = _beside_of(request.session)
    yield b
    for t, _ in b.runs.values():
        t.join()


@pytest.fixture
def beside_outcome(beside):
    """outcome(__name__): wait for this module's scenario; its failure is this test's failure."""

    return beside.outcome


@pytest.fixture(scope="session")
def sandbox_env(sbx, tmp_path_factory):
    """Environment of a user who targets the sandbox (its secrets come from .sandbox-test)."""
    return clean_env(SBX_STATE=str(STATE), MOTTIVME_ENV_FILE=str(tmp_path_factory.mktemp("env") / "none.env"))


@pytest.fixture(scope="session")
def n8n_server(sbx):
    return Server(sbx, next(h for h in sbx.load()["hosts"] if h["group"] == "n8n_servers"))


@pytest.fixture(scope="session")
def probe(sbx):
    """Another machine on the private network (the backup vault): looks at the n8n server from outside."""
    return Server(sbx, next(h for h in sbx.load()["hosts"] if h["group"] == "backup_vault"))


@pytest.fixture(scope="session")
def vault(probe):
    return probe


@pytest.fixture(scope="session")
def supabase_host(sbx):
    return Server(sbx, next(h for h in sbx.load()["hosts"] if h["group"] == "supabase"))


@pytest.fixture(scope="session")
def monitor(sbx):
    return Server(sbx, next(h for h in sbx.load()["hosts"] if h["group"] == "monitors"))


@pytest.fixture(scope="session")
def first_deploy(sandbox_env, n8n_server):
    """`pyinfra -y inventory.py deploy.py` on the fresh server, as `make demo` runs it."""
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, f"first deploy failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    return r


@pytest.fixture(scope="session")
def seeded(sbx, sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "sandbox/supabase.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-3000:]
    seed.seed_supabase(sbx, 3000)
    seed.seed_n8n(sbx, 3)


@pytest.fixture
def n8n(n8n_server, first_deploy):
    return N8nClient(n8n_server.url)


