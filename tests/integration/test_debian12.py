"""The short tier on Debian 12 (bookworm), still supported beside the default Debian 13: fresh
deploy -> ready -> zero-change re-run -> backup -> destroy -> restore -> identical data.

Its own sandbox (.sandbox-test12, servers t12-N): an n8n server, the backup vault and the Supabase
stand-in, all Debian 12. Debian 12's own Docker packages bring Compose v1 (`docker-compose` 1.29), which the
deploy detects and records for the host programs."""

import json
import ssl
import urllib.error
import urllib.request

import pytest

from sandbox import seed
from sandbox.core import Sandbox
from tests.helpers import (
    ROOT,
    Server,
    backup_now,
    clean_env,
    n8n_state,
    polling,
    run_pyinfra,
    supabase_checksums,
)

STATE12 = ROOT / ".sandbox-test12"


# servers of its own: its scenario starts with the integration session and runs beside the other
# tests (conftest.py `beside`); the test collects its outcome
pytestmark = pytest.mark.beside


def server(sbx, group):
    return Server(sbx, next(h for h in sbx.load()["hosts"] if h["group"] == group))


def beside(tmp_dir):
    """The whole short tier on fresh Debian 12 servers (run in a thread; raises on the first failure)."""
    sbx12 = Sandbox(state_dir=STATE12, prefix="t12")
    sbx12.down(stop_shared_services=False)  # whatever an interrupted earlier run left behind
    try:
        # the vault on Debian 13: it runs restic's REST server (Debian 13 packages it)
        sbx12.up_each([("n8n_servers", 1, "12"), ("backup_vault", 1, None), ("supabase", 1, "12")])
        scenario(sbx12, clean_env(SBX_STATE=str(STATE12), MOTTIVME_ENV_FILE=str(tmp_dir / "none.env")))
    finally:
        sbx12.down(stop_shared_services=False)


def poll_once(url: str):
    """(status, None) or ("setup", showSetupOnFirstLoad) of GET /rest/settings from outside."""
    try:
        with urllib.request.urlopen(url + "rest/settings", context=ssl._create_unverified_context(), timeout=5) as r:
            return "setup", json.loads(r.read()).get("data", {}).get("userManagement", {}).get("showSetupOnFirstLoad")
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:  # noqa: BLE001 - not listening yet, reset: nothing served
        return 0, None


def test_debian_12_deploys_reruns_with_no_change_backs_up_and_restores(beside_outcome):
    beside_outcome(__name__)  # the scenario's own failure, with its traceback


def scenario(sbx12, env12):
    n8n_server, supabase_host = server(sbx12, "n8n_servers"), server(sbx12, "supabase")
    assert n8n_server.sh(". /etc/os-release; echo $VERSION_CODENAME").strip() == "bookworm"

    # the public polls n8n's settings all through the fresh deploy: it never meets the setup page
    # (Caddy answers 503 until the deploy, from inside the server, has claimed the owner)
    with polling(lambda: poll_once(n8n_server.url), 0.25, join_timeout=30) as seen:
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], env12)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    assert (503, None) in seen, seen[-20:]  # polled while closed ...
    assert ("setup", True) not in seen, "the owner-setup page was public during the first deploy"
    assert poll_once(n8n_server.url) == ("setup", False)  # ... and open, owner claimed, afterwards
    ready = "curl -sk -o /dev/null -w '%{http_code}' https://localhost/healthz/readiness"
    assert n8n_server.sh(ready).strip() == "200"
    # Debian 12's packages: Compose v1, recorded once for everything that runs compose on the server
    assert json.loads(n8n_server.sh("cat /etc/mottivme/host.json"))["compose"][:1] == ["docker-compose"]
    assert "n8n-n8n-1" not in n8n_server.sh("mottivme-host compose ps")  # v1 names containers n8n_n8n_1

    again = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], env12)
    assert again.returncode == 0, again.stderr[-3000:]
    results = json.loads(again.stdout)["results"]
    changed = [op["name"] for op in results["operations"] if op["success"]]
    assert results["totals"]["success"] == 0 and results["totals"]["no_change"] > 20, f"second run changed: {changed}"

    r = run_pyinfra(["-y", "inventory.py", "sandbox/supabase.py"], env12)
    assert r.returncode == 0, r.stderr[-3000:]
    seed.seed_supabase(sbx12, 500)
    seed.seed_n8n(sbx12, 2)
    before_supa, before_n8n = supabase_checksums(supabase_host), n8n_state(n8n_server)
    snap, out = backup_now(env12)
    assert "supabase: 10 tables" in out

    n8n_server.sh("mottivme-host compose exec -T postgres psql -U n8n -d n8n -c 'delete from workflow_published_version' "
                  "-c 'delete from workflow_entity' -c 'delete from credentials_entity'")
    supabase_host.sh(f"echo 'truncate {', '.join(seed.TABLES)}' | docker exec -i supabase-db psql -U postgres")
    assert n8n_state(n8n_server)["workflows"] == []
    password = sbx12.secrets()["SUPABASE_STANDIN_PASSWORD"]
    url = f"postgresql://postgres:{password}@{supabase_host.h['private_ip']}:5432/postgres"
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", f"snapshot={snap}",
                     "--data", f"supabase_target={url}", "--data", "confirm_supabase_overwrite=yes"], env12)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert n8n_state(n8n_server) == before_n8n
    assert supabase_checksums(supabase_host) == before_supa
    assert n8n_server.sh(ready).strip() == "200"
