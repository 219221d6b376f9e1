"""Integration tier: real sandbox servers (systemd, sshd, Docker inside), a real n8n.

One sandbox (state in .sandbox-test/, servers tst-N) is shared by the whole session: a server
that the deploy turns into an n8n host, the backup vault (which also looks at the n8n server
from the private network, the way another machine would), the stand-in for Supabase's
database, and the monitor.
"""

import os
import threading

import pytest

from sandbox import seed
from sandbox.core import Sandbox
from sandbox.n8n_client import N8nClient
from tests.helpers import STATE, Server, clean_env, run_pyinfra


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # tests that replace a server run after every other test of the shared sandbox
    items.sort(key=lambda item: item.get_closest_marker("replaces_servers") is not None)


@pytest.fixture(scope="session")
def sbx():
    s = Sandbox(state_dir=STATE, prefix="tst")
    # REUSE_SANDBOX=1 (with KEEP_SANDBOX=1 on the run before) skips the fresh servers: for
    # iterating on one test; CI and `make test` always start from fresh servers.
    if not (os.environ.get("REUSE_SANDBOX") and len(s.load()["hosts"]) == 4):
        s.down(stop_shared_services=False)  # whatever an interrupted earlier run left behind
        s.up(1, "n8n_servers")
        s.up(1, "backup_vault")
        s.up(1, "supabase")
        s.up(1, "monitors")
    yield s
    if not os.environ.get("KEEP_SANDBOX"):
        s.down()


@pytest.fixture(scope="session", autouse=True)
def beside(request, tmp_path_factory):
    """Modules marked `beside` bring servers of their own (the Debian 12 tier): their scenario, the
    module's `beside(tmp_dir)`, starts once the shared sandbox is up (its engine and apt proxy) and
    runs in a thread while the other tests do - two cores mostly wait on servers. The module's test
    collects the outcome (`beside_outcome`); the session waits for every scenario before it ends."""
    modules = {item.module for item in request.session.items if item.get_closest_marker("beside")}
    runs = {}
    if modules:
        request.getfixturevalue("sbx")
    for module in sorted(modules, key=lambda m: m.__name__):
        box: dict = {}
        tmp = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1])

        def run(m=module, b=box, d=tmp):
            try:
                m.beside(d)
            except BaseException as e:  # noqa: BLE001 - re-raised by the module's test
                b["error"] = e

        t = threading.Thread(target=run, name=f"beside-{module.__name__}", daemon=True)
        t.start()
        runs[module.__name__] = (t, box)
    yield runs
    for t, _ in runs.values():
        t.join()


@pytest.fixture
def beside_outcome(beside):
    """outcome(__name__): wait for this module's scenario; its failure is this test's failure."""

    def outcome(name: str) -> None:
        t, box = beside[name]
        t.join()
        if "error" in box:
            raise box["error"]

    return outcome


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


