"""Integration tier: real sandbox servers (systemd, sshd, Docker inside), a real n8n.

One sandbox (state in .sandbox-test/, servers tst-N) is shared by the whole session: a server
that the deploy turns into an n8n host, the backup vault (which also looks at the n8n server
from the private network, the way another machine would), the stand-in for Supabase's
database, and the monitor.
"""

import os

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


