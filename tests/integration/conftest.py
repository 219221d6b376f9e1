"""Integration tier: real sandbox servers (systemd, sshd, Docker inside), a real n8n.

One sandbox (state in .sandbox-test/, servers tst-N) is shared by the whole session: a server
that the deploy turns into an n8n host, the backup vault (which also looks at the n8n server
from the private network, the way another machine would), the stand-in for Supabase's
database, and the monitor.
"""

import json
import os
import ssl
import urllib.request
from http.cookiejar import CookieJar

import pytest

from sandbox import seed
from sandbox.core import Sandbox
from tests.conftest import ROOT, clean_env, run_pyinfra

STATE = ROOT / ".sandbox-test"


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


def secrets_of(sbx) -> dict:
    out = {}
    for line in (sbx.state_dir / "secrets.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


class Server:
    """A sandbox server by name; its record is read afresh (the DR drill replaces a server)."""

    def __init__(self, sbx, record):
        self.sbx, self.name = sbx, record["name"]

    @property
    def h(self) -> dict:
        return next(h for h in self.sbx.load()["hosts"] if h["name"] == self.name)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.h['https_port']}/"

    def sh(self, command: str, check: bool = True) -> str:
        import subprocess

        r = subprocess.run(self.sbx.ssh_args(self.h) + [command], capture_output=True, text=True, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: `{command}` exit {r.returncode}: {r.stderr}{r.stdout}")
        return r.stdout


def interrupt_runbook(server: Server, env: dict, args: list[str], reached: str, script: str) -> None:
    """Run `pyinfra -y inventory.py ARGS` as an engineer would, press Ctrl-C (SIGINT) once the shell
    test `reached` succeeds on the server, then wait until the server's `script` has ended."""
    import signal
    import subprocess
    import time

    p = subprocess.Popen([str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory.py", *args], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while server.sh(f"{reached} && echo reached || true", check=False).strip() != "reached":
        assert time.time() < deadline and p.poll() is None, f"{args[0]} never got to the point to interrupt"
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    deadline = time.time() + 300
    while server.sh(f"pgrep -f '[{script[0]}]{script[1:]}' || true").strip():
        assert time.time() < deadline, f"{script} never ended"
        time.sleep(1)


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


class N8nClient:
    """n8n's REST API through the sandbox's HTTPS port (Caddy, local CA)."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.ctx = ssl._create_unverified_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx),
                                                  urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with self.opener.open(req, timeout=60) as r:
                raw = r.read().decode()
                return r.status, (json.loads(raw) if raw.startswith(("{", "[")) else raw)
        except urllib.error.HTTPError as e:
            raw = e.read().decode()
            return e.code, (json.loads(raw) if raw.startswith(("{", "[")) else raw)


@pytest.fixture
def n8n(n8n_server, first_deploy):
    return N8nClient(n8n_server.url)


def n8n_api(n8n: N8nClient, sbx) -> dict:
    """Headers for n8n's public API: the owner logs in and makes an API key."""
    import time

    s = secrets_of(sbx)
    assert n8n.request("POST", "rest/login", {"emailOrLdapLoginId": s["N8N_OWNER_EMAIL"],
                                              "password": s["N8N_OWNER_PASSWORD"]})[0] == 200
    _, scopes = n8n.request("GET", "rest/api-keys/scopes")
    _, key = n8n.request("POST", "rest/api-keys", {"label": f"itest-{time.time()}", "scopes": scopes["data"],
                                                  "expiresAt": None})
    return {"X-N8N-API-KEY": key["data"]["rawApiKey"]}


def webhook_workflow(n8n: N8nClient, api: dict, name: str, path: str, webhook_id: str, **changes) -> str:
    """Create and activate tests/fixtures/webhook-code-workflow.json as `name` on /webhook/<path>
    (`changes`: response_mode, code); wait until the webhook answers; return the workflow's id."""
    import time

    wf = json.loads((ROOT / "tests" / "fixtures" / "webhook-code-workflow.json").read_text())
    wf["name"] = name
    hook, code = wf["nodes"]
    hook["parameters"]["path"], hook["webhookId"] = path, webhook_id
    if "response_mode" in changes:
        hook["parameters"]["responseMode"] = changes["response_mode"]
    if "code" in changes:
        code["parameters"]["jsCode"] = changes["code"]
    status, created = n8n.request("POST", "api/v1/workflows", wf, api)
    assert status == 200, created
    assert n8n.request("POST", f"api/v1/workflows/{created['id']}/activate", None, api)[0] == 200
    for _ in range(60):
        if n8n.request("GET", f"webhook/{path}")[0] == 200:
            return created["id"]
        time.sleep(0.5)
    raise AssertionError(f"webhook {path} never answered")
