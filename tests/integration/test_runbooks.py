"""Incident runbooks on the sandbox's n8n server."""

import json
import re

import pytest

from sandbox.n8n_client import N8nClient
from tasks import groupdata
from tests.helpers import (
    ROOT,
    VAULT_REPOSITORY,
    checkout,
    interrupt_runbook,
    lock_holding,
    run_mottivme,
    run_pyinfra,
    secrets_of,
)

# the runbooks back up first, and a backup dumps the Supabase stand-in: it must be there even
# when this module runs on its own
pytestmark = pytest.mark.usefixtures("seeded")


def test_restart_measures_unavailability_and_n8n_is_back(n8n_server, sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"unavailable for ([0-9.]+)s \(restart \+ readiness took ([0-9.]+)s\)", out)
    assert m, out[-3000:]
    assert 0 < float(m.group(1)) <= float(m.group(2))
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_restart_with_a_broken_configuration_fails_with_the_containers_log(n8n_server, sandbox_env, first_deploy):
    config = "docker exec $(mottivme-host compose ps -q n8n) sh -c"
    n8n_server.sh(f"{config} 'cp /home/node/.n8n/config /home/node/.n8n/config.keep && echo \"{{not json\" > /home/node/.n8n/config'")
    try:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py", "--data", "timeout=25"], sandbox_env)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert "not ready 25s after the restart" in out and "Last log lines" in out
        assert re.search(r"config|JSON|Unexpected token", out.split("Last log lines", 1)[1])
    finally:
        n8n_server.sh("docker run --rm -v n8n_n8n_data:/d --entrypoint sh " +
                      "docker.n8n.io/n8nio/n8n:2.41.1 -c 'mv /d/config.keep /d/config'")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_rotate_secrets_applies_verifies_and_writes_back(n8n_server, sbx, sandbox_env, first_deploy):
    # both repositories exist (a rotation skips one that does not exist yet): run on its own, this
    # module has made no off-host backup before
    assert "off-host: rest:" in n8n_server.sh("n8n-backup --tag manual")
    old = secrets_of(sbx)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "postgres: password rotated, n8n ready, the old password is refused" in out
    # (the append-only vault keeps the old key: its prune removes it, see the vault-down rotation test)
    assert re.search(r"restic: password rotated in 2 repositories; the old key removed, except from rest:\S+ "
                     r"\(append-only", out), out[-3000:]
    new = secrets_of(sbx)
    for name in ("POSTGRES_PASSWORD", "RESTIC_PASSWORD"):
        assert new[name] != old[name]
        assert f"{name}: new value written to" in out
        assert old[name] not in out and new[name] not in out, f"{name} printed"
    assert new["N8N_ENCRYPTION_KEY"] == old["N8N_ENCRYPTION_KEY"]

    psql = ("docker run --rm --network n8n_backend -e PGPASSWORD={} " + groupdata.load()["postgres_image"]
            + " psql -h postgres -U n8n -d n8n -Atc 'select 1'")
    assert n8n_server.sh(psql.format(new["POSTGRES_PASSWORD"])).strip() == "1"
    assert "FAILED" in n8n_server.sh(psql.format(old["POSTGRES_PASSWORD"]) + " 2>&1 || echo FAILED", check=False)
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200

    restic = "restic -r /var/backups/n8n/restic snapshots --json >/dev/null 2>&1 && echo opens || echo refused"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{new['RESTIC_PASSWORD']}' {restic}").strip() == "opens"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old['RESTIC_PASSWORD']}' {restic}").strip() == "refused"
    # backups (local and off-host) and a restore drill from the off-host copy work with the new values
    assert "off-host: rest:" in n8n_server.sh("n8n-backup")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore_drill.py", "--data", "from=offsite"], sandbox_env)
    assert r.returncode == 0 and "drill ok" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    # the operator's .env and the hosts agree: a deploy changes nothing
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-2000:]

    assert json.loads(r.stdout)["results"]["totals"]["success"] == 0


def test_interrupted_rotation_ends_verified_and_a_rerun_finishes_it(n8n_server, sbx, sandbox_env, first_deploy):
    """Ctrl-C while a host rotates: the host finishes (n8n ready on the new password), the new value
    waits in the pending file, deploy.py refuses to put the old one back, and running the runbook
    again finishes the rotation with the same value."""
    old = secrets_of(sbx)["POSTGRES_PASSWORD"]
    pending = sbx.state_dir / ".rotation-pending.env"
    interrupt_runbook(n8n_server, sandbox_env, ["runbooks/rotate_secrets.py", "--data", "secrets=postgres"],
                      reached="test -f /opt/n8n/.env.before-rotation", script="n8n-rotate-secrets")
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
    assert secrets_of(sbx)["POSTGRES_PASSWORD"] == old  # not written back: the run was cut short
    new = pending.read_text().split("POSTGRES_PASSWORD=", 1)[1].split()[0]
    assert oct(pending.stat().st_mode & 0o777) == "0o600" and new != old
    assert n8n_server.sh("test -e /root/.mottivme-rotate.env && echo left || echo gone").strip() == "gone"

    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 2 and "a secret rotation has not finished" in r.stderr, r.stderr[-2000:]
    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py", "--data", "secrets=postgres"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "finishing the rotation that did not complete" in out and "postgres: already rotated" in out
    assert secrets_of(sbx)["POSTGRES_PASSWORD"] == new and not pending.exists()
    assert new not in out and old not in out
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-2000:]

    assert json.loads(r.stdout)["results"]["totals"]["success"] == 0


def test_a_rotation_with_the_vault_down_stops_naming_it_and_a_rerun_with_it_up_finishes(n8n_server, vault, sbx,
                                                                                        sandbox_env, first_deploy):
    """An off-host repository that exists but does not answer stops the restic rotation before any
    key changes (the old password stays in force everywhere, the new one waits in the pending
    file); run again with the vault up, every repository gets the new password."""
    assert "off-host: rest:" in n8n_server.sh("n8n-backup --tag manual")  # the vault's repository exists
    old = secrets_of(sbx)["RESTIC_PASSWORD"]
    pending = sbx.state_dir / ".rotation-pending.env"
    vault.sh("systemctl stop restic-rest-server")
    try:
        r = run_pyinfra(["-y", "--limit", "n8n_servers", "inventory.py", "runbooks/rotate_secrets.py",
                         "--data", "secrets=restic"], sandbox_env)
    finally:
        vault.sh("systemctl start restic-rest-server")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert re.search(r"restic: cannot open rest:\S+ \(.+\): nothing was rotated, the old password stays in force", out), \
        out[-3000:]
    assert secrets_of(sbx)["RESTIC_PASSWORD"] == old and "RESTIC_PASSWORD=" in pending.read_text()
    restic = "restic -r /var/backups/n8n/restic snapshots --json >/dev/null 2>&1 && echo opens || echo refused"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old}' {restic}").strip() == "opens"

    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py", "--data", "secrets=restic"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "finishing the rotation that did not complete" in out
    # the append-only vault keeps the old key until its prune removes it
    assert re.search(r"restic: password rotated in 2 repositories; the old key removed, except from rest:\S+ "
                     r"\(append-only: `mottivme vault-prune --old-keys remove` removes it there\)", out), out[-3000:]
    new = secrets_of(sbx)["RESTIC_PASSWORD"]
    assert new != old and not pending.exists()
    assert n8n_server.sh(f"RESTIC_PASSWORD='{new}' {restic}").strip() == "opens"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old}' {restic}").strip() == "refused"
    assert "off-host: rest:" in n8n_server.sh("n8n-backup")  # the vault's repository opens with the new one
    in_vault = f"{VAULT_REPOSITORY} restic --cacert /etc/mottivme/vault-cert.pem cat config >/dev/null 2>&1 " \
               "&& echo opens || echo refused"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old}' {in_vault}").strip() == "opens"
    # the vault's prune, with .env's password (the new one), removes the key the rotation left there
    r = run_pyinfra(["-y", "inventory.py", "runbooks/vault_prune.py", "--data", "old_keys=remove"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert re.search(rf"{n8n_server.name}: \d+ snapshots, \d+ kept \(last 3, daily 7, weekly 4, monthly 12\); "
                     r"\d+ other key\(s\) removed", out), out[-3000:]
    assert new not in out and old not in out
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old}' {in_vault}").strip() == "refused"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{new}' {in_vault}").strip() == "opens"


def test_rotate_refuses_the_encryption_key(sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py", "--data", "secrets=N8N_ENCRYPTION_KEY"],
                    sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "refusing to rotate N8N_ENCRYPTION_KEY" in out and "credential" in out


def smoke_workflow(n8n, sbx, path: str) -> None:
    """An active webhook workflow answering 200 on /webhook/<path> (created through n8n's API)."""
    from sandbox.n8n_client import n8n_api, webhook_workflow

    webhook_workflow(n8n, n8n_api(n8n, secrets_of(sbx)), f"smoke {path}", path, "77777777-7777-4777-8777-777777777777")


def running_version(n8n_server) -> str:
    return n8n_server.sh("docker inspect -f '{{.Config.Image}}' $(mottivme-host compose ps -q n8n)").strip().rsplit(":", 1)[1]


def test_versions_move_on_purpose_back_by_the_runbook_forward_by_mottivme_update(n8n_server, n8n, sbx, sandbox_env,
                                                                                tmp_path):
    """deploy.py never goes back (the database may be migrated); the emergency deploy does, with a
    snapshot and rollback; `mottivme update --apply` (SOP 05's monthly update), from a checkout
    whose group data still pins the old version, moves the pin up and deploy.py rolls it out
    through the same path; and the next deploy changes nothing."""
    smoke_workflow(n8n, sbx, "smoke-ping")
    count = n8n_server.sh("mottivme-host compose exec -T postgres psql -U n8n -d n8n -Atc "
                          "'select count(*) from workflow_entity'").strip()
    r = run_pyinfra(["-y", "inventory.py", "deploy.py", "--data", "n8n_version=2.41.0"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "n8n here runs 2.41.1 (its database migrated to it) and n8n_version says 2.41.0: " \
        "deploy.py never goes back" in out, out[-3000:]
    assert running_version(n8n_server) == "2.41.1"

    r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.0",
                     "--data", "smoke_webhook=smoke-ping"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert f"deployed 2.41.0 (was 2.41.1): ready, {count} workflows, smoke webhook ok" in out
    assert running_version(n8n_server) == "2.41.0"
    assert N8nClient(n8n_server.url).request("GET", "webhook/smoke-ping")[0] == 200

    def pre_deploy_snapshots() -> int:
        return len(json.loads(n8n_server.sh("restic -r /var/backups/n8n/restic --password-file "
                                            "/etc/mottivme/restic-password snapshots --json --tag pre-deploy")))

    snaps = pre_deploy_snapshots()
    old = checkout(tmp_path / "checkout")  # the operator's checkout, a month ago
    pins = old / "group_data" / "all.py"
    pins.write_text(pins.read_text().replace('n8n_version = "2.41.1"', 'n8n_version = "2.41.0"', 1))
    r = run_mottivme(["update", "--apply", "--n8n", "2.41.1", "--yes"], sandbox_env, timeout=1500, cwd=old)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert re.search(r"^UPDATE  n8n: group data runs 2\.41\.0; the registry offers (\S+, )*2\.41\.1", out, re.M), out
    assert "== group_data/all.py: n8n_version = '2.41.1' (was '2.41.0')" in out
    assert f"deployed 2.41.1 (was 2.41.0): ready, {count} workflows" in out
    for name in ("all.py", "sandbox.py"):  # the pins moved back where this checkout has them
        assert (old / "group_data" / name).read_text() == (ROOT / "group_data" / name).read_text()
    assert running_version(n8n_server) == "2.41.1"
    assert N8nClient(n8n_server.url).request("GET", "webhook/smoke-ping")[0] == 200
    assert pre_deploy_snapshots() == snaps + 1  # the snapshot before the change
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0 and json.loads(r.stdout)["results"]["totals"]["success"] == 0, r.stderr[-2000:]


def test_emergency_deploy_of_an_unknown_version_changes_nothing(n8n_server, sandbox_env, first_deploy):
    """A version images.lock does not pin stops the runbook in one line; one it pins but the
    registry does not serve stops the host program before anything is stopped."""
    before = running_version(n8n_server)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=9.9.9"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and ("docker.n8n.io/n8nio/n8n:9.9.9, n8nio/runners:9.9.9 have no digest in images.lock: "
                                  "add its version to n8n_other_versions in group_data/all.py") in out, out[-2000:]
    bogus = "sha256:" + "9" * 64
    with lock_holding({"docker.n8n.io/n8nio/n8n:9.9.9": bogus, "n8nio/runners:9.9.9": bogus}):
        r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=9.9.9"],
                        sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and (f"image docker.n8n.io/n8nio/n8n:9.9.9@{bogus} not pulled (see /var/log/n8n-deploy.log): "
                                  "nothing was changed") in out, out[-2000:]
    assert running_version(n8n_server) == before


def test_a_failing_version_that_migrated_rolls_back_and_restores(n8n_server, sandbox_env, first_deploy):
    """Version 2.41.9 here migrates the database (one more row in `migrations`) and then crashes."""
    from sandbox import seed

    seed.build_failing_n8n_image(n8n_server.sbx, n8n_server.h)
    sql = "mottivme-host compose exec -T postgres psql -U n8n -d n8n -Atc "
    wf_before = n8n_server.sh(sql + "'select id from workflow_entity order by id'")
    mig_before = n8n_server.sh(sql + "'select count(*) from migrations'").strip()
    r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.9",
                     "--data", "timeout=30"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "rolling back to 2.41.1: n8n 2.41.9 was not ready within 30s" in out
    assert "had migrated the database" in out and "database restored from snapshot" in out
    assert running_version(n8n_server) == "2.41.1"
    assert n8n_server.sh(sql + "'select count(*) from migrations'").strip() == mig_before
    assert n8n_server.sh(sql + "'select id from workflow_entity order by id'") == wf_before
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_interrupted_emergency_deploy_leaves_n8n_running(n8n_server, sandbox_env, first_deploy):
    """Ctrl-C once the switch has begun: the host finishes it, n8n ends up running (old or new)."""
    n8n_server.sh(": > /var/log/n8n-deploy.log")
    interrupt_runbook(n8n_server, sandbox_env, ["runbooks/emergency_deploy.py", "--data", "n8n_version=2.41.0"],
                      reached="grep -q 'pre-deploy snapshot' /var/log/n8n-deploy.log", script="n8n-deploy-version")
    assert running_version(n8n_server) in ("2.41.0", "2.41.1")
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
    # back to the declared version for whatever runs next
    r = run_pyinfra(["-y", "inventory.py", "runbooks/emergency_deploy.py"], sandbox_env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert running_version(n8n_server) == "2.41.1"
