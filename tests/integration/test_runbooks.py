"""Incident runbooks on the sandbox's n8n server."""

import re

from tests.conftest import run_pyinfra
from tests.integration.conftest import N8nClient


def test_restart_measures_unavailability_and_n8n_is_back(n8n_server, sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"unavailable for ([0-9.]+)s \(restart \+ readiness took ([0-9.]+)s\)", out)
    assert m, out[-3000:]
    assert 0 < float(m.group(1)) <= float(m.group(2))
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_restart_with_a_broken_configuration_fails_with_the_containers_log(n8n_server, sandbox_env, first_deploy):
    config = "docker exec n8n_n8n_1 sh -c"
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
    from tests.integration.conftest import secrets_of

    old = secrets_of(sbx)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "postgres: password rotated, n8n ready, the old password is refused" in out
    assert "restic: password rotated in 2 repositories, the old key removed" in out
    new = secrets_of(sbx)
    for name in ("POSTGRES_PASSWORD", "RESTIC_PASSWORD"):
        assert new[name] != old[name]
        assert f"{name}: new value written to" in out
        assert old[name] not in out and new[name] not in out, f"{name} printed"
    assert new["N8N_ENCRYPTION_KEY"] == old["N8N_ENCRYPTION_KEY"]

    psql = "cd /opt/n8n && docker-compose -p n8n exec -T -e PGPASSWORD={} postgres psql -h 127.0.0.1 -U n8n -d n8n -Atc 'select 1'"
    assert n8n_server.sh(psql.format(new["POSTGRES_PASSWORD"])).strip() == "1"
    assert "FAILED" in n8n_server.sh(psql.format(old["POSTGRES_PASSWORD"]) + " 2>&1 || echo FAILED", check=False)
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200

    restic = "restic -r /var/backups/n8n/restic snapshots --json >/dev/null 2>&1 && echo opens || echo refused"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{new['RESTIC_PASSWORD']}' {restic}").strip() == "opens"
    assert n8n_server.sh(f"RESTIC_PASSWORD='{old['RESTIC_PASSWORD']}' {restic}").strip() == "refused"
    # backups (local and off-host) and a restore drill from the off-host copy work with the new values
    assert "off-host: sftp:" in n8n_server.sh("n8n-backup")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore_drill.py", "--data", "from=offsite"], sandbox_env)
    assert r.returncode == 0 and "drill ok" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    # the operator's .env and the hosts agree: a deploy changes nothing
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    assert json.loads(r.stdout)["results"]["totals"]["success"] == 0


def test_rotate_refuses_the_encryption_key(sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/rotate_secrets.py", "--data", "secrets=N8N_ENCRYPTION_KEY"],
                    sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "refusing to rotate N8N_ENCRYPTION_KEY" in out and "credential" in out
