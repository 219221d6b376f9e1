"""Backups that provably restore: seed -> backup -> destroy -> restore -> identical data, and the
faults an on-call engineer meets (lock, wrong password, unknown snapshot, vault down, kill -9)."""

import json
import re
import shlex

import bcrypt
import pytest

from sandbox import seed
from sandbox.n8n_client import N8nClient
from tests.helpers import (
    N8N_PSQL,
    SUPABASE_PSQL,
    VAULT_REPOSITORY,
    backup_now,
    edit_host_settings,
    interrupt_runbook,
    n8n_state,
    run_pyinfra,
    secrets_of,
    supabase_checksums,
    supabase_shape,
)

pytestmark = pytest.mark.usefixtures("seeded")

def protected_webhook(n8n_server, password: str) -> int:
    status, _ = N8nClient(n8n_server.url).request(
        "GET", "webhook/seed-protected",
        headers={"Authorization": "Basic " + __import__("base64").b64encode(f"seed-user:{password}".encode()).decode()})
    return status


def snapshot_ids(n8n_server, repo="/var/backups/n8n/restic") -> list[str]:
    out = n8n_server.sh(f"RESTIC_PASSWORD_FILE=/etc/mottivme/restic-password restic -r {repo} snapshots --json")
    return [s["short_id"] for s in json.loads(out)]


def test_cron_has_the_daily_backup_and_weekly_cleanup(n8n_server):
    cron = n8n_server.sh("cat /etc/cron.d/mottivme-n8n")
    assert re.search(r"^17 3 \* \* \* root /usr/local/sbin/n8n-backup ", cron, re.M)
    assert re.search(r"^41 4 \* \* 0 root /usr/local/sbin/n8n-supabase-cleanup ", cron, re.M)
    assert n8n_server.sh("systemctl is-active cron").strip() == "active"
    assert n8n_server.sh("cat /etc/timezone").strip() == "America/Sao_Paulo"
    assert n8n_server.sh("stat -c '%a' /etc/mottivme /etc/mottivme/host.json /etc/mottivme/restic-password").split() \
        == ["700", "600", "600"]
    # the programs are the package, linked under their usual names, with one settings file
    assert n8n_server.sh("readlink /usr/local/sbin/n8n-backup; test -e /etc/mottivme/backup.env || echo gone").split() \
        == ["/usr/local/sbin/mottivme-host", "gone"]


def test_backup_restore_roundtrip_gives_identical_data(n8n_server, supabase_host, sandbox_env, sbx):
    before_supa, before_n8n = supabase_checksums(supabase_host), n8n_state(n8n_server)
    assert int(before_supa["rag_documents"][0]) > 0 and len(before_n8n["workflows"]) == 4
    assert protected_webhook(n8n_server, seed.CREDENTIAL["data"]["password"]) == 200

    shape = supabase_shape(supabase_host)  # Supabase's: policies TO authenticated, grants, vector in extensions
    assert "crm|leads|leads_owner|{authenticated}|ALL|(owner = auth.uid())|(owner = auth.uid())" in shape["policies"]
    assert "crm|leads_id_seq|1000600" in shape["sequences"] and "vector|extensions" in shape["extensions"]
    assert shape["realtime"] == ["supabase_realtime|crm|leads"]

    # the restore's image for Supabase's major (17 here) taken off the server, as one that never had it
    scratch = json.loads(n8n_server.sh("cat /etc/mottivme/host.json"))["backup"]["scratch_images"]["17"]
    n8n_server.sh(f"docker rmi {scratch} >/dev/null 2>&1 || true")
    assert n8n_server.sh(f"docker image inspect {scratch} >/dev/null 2>&1 || echo absent").strip() == "absent"
    snap, out = backup_now(sandbox_env)
    # the backup pulled it beside the dump: a restore starts it without the registry
    assert n8n_server.sh(f"docker image inspect -f ok {scratch}").strip() == "ok"
    # every schema that holds the project's data, named in the summary (Supabase's own left out)
    assert "4 workflows, 1 credentials" in out and "off-host: rest:" in out
    assert re.search(r"supabase: 10 tables, [0-9]+ rows in auth, crm, public, storage", out)
    manifest = json.loads(n8n_server.sh("cat /var/backups/n8n/last-manifest.json"))
    sources = manifest["sources"]
    assert sources["n8n"]["version"] == "2.41.1" and sources["supabase"]["row_counts"]["public.workflow_executions"] == 3000
    assert sources["supabase"]["row_counts"]["crm.leads"] == 600 and sources["supabase"]["managed_schemas"] == [
        "auth", "storage"]
    assert {"anon", "authenticated", "service_role"} <= set(sources["supabase"]["roles"])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())

    # destroy: every workflow and credential of n8n, every row of Supabase (its users, files' metadata,
    # every schema), and a policy
    n8n_server.sh(f"{N8N_PSQL} -c 'delete from workflow_published_version' -c 'delete from workflow_entity' "
                  "-c 'delete from credentials_entity'")
    supabase_host.sh(f"echo 'truncate {', '.join(seed.TABLES)}, crm.leads, auth.users, storage.objects, "
                     f"storage.buckets; drop policy leads_owner on crm.leads' | {SUPABASE_PSQL}")
    assert n8n_state(n8n_server)["workflows"] == []

    url = f"postgresql://postgres:{_standin_password(sbx)}@{supabase_host.h['private_ip']}:5432/postgres"
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", f"snapshot={snap}",
                     "--data", f"supabase_target={url}", "--data", "confirm_supabase_overwrite=yes"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert f"restore ok: snapshot {snap}" in out and "safety snapshot" in out
    assert n8n_state(n8n_server) == before_n8n
    # identical rows in every schema; the same policies, grants, sequences; auth and storage still
    # the platform's tables (their owners), only their rows replaced
    assert supabase_checksums(supabase_host) == before_supa
    assert supabase_shape(supabase_host) == shape
    assert ("supabase: rows of auth.users, storage.buckets, storage.objects replaced; those tables kept as the target "
            "has them") in out
    # the database the restore replaced is kept for an undo: the destroyed state, no workflow
    old_db = N8N_PSQL.replace("-d n8n ", "-d n8n_before_restore ")
    assert n8n_server.sh(f"{old_db} -c 'select count(*) from workflow_entity'").strip() == "0"
    # the credential still decrypts with the key and works; a wrong password is still refused
    assert protected_webhook(n8n_server, seed.CREDENTIAL["data"]["password"]) == 200
    assert protected_webhook(n8n_server, "wrong") in (401, 403)


def _standin_password(sbx) -> str:
    return secrets_of(sbx)["SUPABASE_STANDIN_PASSWORD"]


def test_default_restore_checks_supabase_in_scratch_and_never_touches_production(n8n_server, supabase_host,
                                                                                sandbox_env):
    before = supabase_checksums(supabase_host)
    supabase_host.sh(f"echo \"insert into agent_metrics (agent, metric, value) values ('after-backup', 'x', 1)\" "
                     f"| {SUPABASE_PSQL}")
    after_insert = supabase_checksums(supabase_host)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "snapshot=latest",
                     "--data", "safety_snapshot=no"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "restored into a scratch database, row counts match" in out
    assert supabase_checksums(supabase_host) == after_insert != before
    # a database source alone, from the latest snapshot: this server's last backup, the newest in
    # its repository (made now: the test before left a safety snapshot newer than the last backup),
    # fetched at once without restic's list
    short, _ = backup_now(sandbox_env)
    last = n8n_server.sh("cat /var/backups/n8n/last-snapshot").split()[0]
    assert last.startswith(short)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "snapshot=latest",
                     "--data", "sources=supabase"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and f"restore ok: snapshot {last[:8]}; supabase checked" in out, out[-3000:]
    log = n8n_server.sh("tail -60 /var/log/n8n-backup.log")
    assert f"restore: {last[:8]}: this server's last backup, the newest snapshot in" in log, log
    assert f"restore: {last[:8]}: fetched early" in log
    assert n8n_server.sh("ls -A /var/backups/n8n/restore").strip() == ""  # nothing of the fetch left behind


def test_a_restore_over_supabase_that_fails_part_way_leaves_every_row_as_it_was(n8n_server, supabase_host,
                                                                                 sandbox_env):
    """The restore over a target is one transaction: here a view of the project's own outside the
    snapshot stops the drop of a table the dump replaces, after the platform's tables were emptied
    in the same transaction. Nothing changes; the last line names the error."""
    backup_now(sandbox_env, tag="fails-part-way")
    supabase_host.sh(f"echo \"delete from conversation_history where id % 3 = 0; create schema reports; create view "
                     f"reports.talk as select * from conversation_history\" | {SUPABASE_PSQL}")
    try:
        before, shape = supabase_checksums(supabase_host), supabase_shape(supabase_host)
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "sources=supabase", "--data",
                         "target=supabase", "--data", "confirm_overwrite=yes", "--data", "safety_snapshot=no"],
                        sandbox_env)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out[-3000:]
        assert "conversation_history because other objects depend on it" in out, out[-3000:]
        assert "the restore ran in one transaction: the target is as it was" in out
        assert supabase_checksums(supabase_host) == before and supabase_shape(supabase_host) == shape
        assert int(before["auth.users"][0]) > 0  # emptied in the transaction, back with its rollback
    finally:
        supabase_host.sh(f"echo 'drop schema reports cascade' | {SUPABASE_PSQL}")


def test_one_table_restored_beside_then_over_while_the_other_tables_keep_later_writes(n8n_server, supabase_host,
                                                                                      sandbox_env):
    """SOP 05's data loss: half of one table's rows deleted after the backup. Its rows come back
    beside it first (a look before deciding; with them every table of the schema crm, by
    schema=), then over it; a write to another table after the backup stays."""
    def count(table: str) -> int:
        return int(supabase_host.sh(f"echo 'select count(*) from {table}' | {SUPABASE_PSQL}").strip())

    snap, _ = backup_now(sandbox_env)
    backed_up = supabase_checksums(supabase_host)["conversation_history"]
    supabase_host.sh(f"echo \"delete from conversation_history where id % 2 = 0; insert into agent_metrics (agent, "
                     f"metric, value) values ('itest', 'after-backup', 1)\" | {SUPABASE_PSQL}")
    half, metrics = count("conversation_history"), supabase_checksums(supabase_host)["agent_metrics"]
    assert 0 < half < int(backed_up[0])
    restore = ["-y", "inventory.py", "runbooks/restore.py", "--data", f"snapshot={snap}", "--data", "sources=supabase",
               "--data", "table=public.conversation_history"]
    r = run_pyinfra([*restore, "--data", "schema=crm"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert (f"supabase public.conversation_history: {half} rows live; snapshot {snap}'s {backed_up[0]} rows restored "
            f"beside it as public.conversation_history_restored_{snap}; the live table untouched") in out
    assert count("conversation_history") == half and count(f"conversation_history_restored_{snap}") == int(backed_up[0])
    leads = count("crm.leads")
    assert (f"supabase crm.leads: {leads} rows live; snapshot {snap}'s {leads} rows restored beside it as "
            f"crm.leads_restored_{snap}; the live table untouched") in out
    assert count(f"crm.leads_restored_{snap}") == leads and "2 table(s) of supabase restored beside" in out
    supabase_host.sh(f"echo 'drop table crm.leads_restored_{snap}' | {SUPABASE_PSQL}")

    r = run_pyinfra([*restore, "--data", "over=yes", "--data", "confirm_overwrite=yes", "--data", "safety_snapshot=no"],
                    sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert (f"supabase public.conversation_history: {half} rows before, {backed_up[0]} after (snapshot {snap}'s "
            f"{backed_up[0]}); the rows it had are kept as public.conversation_history_before_restore_{snap}") in out
    now = supabase_checksums(supabase_host)
    assert now["conversation_history"] == backed_up  # every row as it was backed up (md5 of all of them)
    assert now["agent_metrics"] == metrics  # the write after the backup stays
    assert count(f"conversation_history_before_restore_{snap}") == half
    supabase_host.sh(f"echo 'drop table conversation_history_before_restore_{snap}; drop table if exists "
                     f"conversation_history_restored_{snap}' | {SUPABASE_PSQL}")


@pytest.mark.parametrize("snapshot,message", [("0123abcd", "no snapshot '0123abcd'"),
                                              ("1999-01-01", "no snapshot '1999-01-01'")])
def test_unknown_snapshot_fails_clearly_and_changes_nothing(n8n_server, sandbox_env, snapshot, message):
    before = n8n_state(n8n_server)
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", f"snapshot={snapshot}"], sandbox_env)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert n8n_state(n8n_server) == before
    assert n8n_server.sh("mottivme-host compose ps -q n8n | xargs docker inspect -f '{{.State.Running}}'").strip() == "true"


def test_malformed_runbook_input_is_refused_before_any_host_runs_it(sandbox_env):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "snapshot=latest;reboot"], sandbox_env)
    assert r.returncode == 2 and "--data snapshot=" in r.stderr


def test_wrong_password_is_named_and_nothing_changes(n8n_server, sandbox_env):
    before = n8n_state(n8n_server)
    n8n_server.sh("cp -a /etc/mottivme/restic-password /root/restic-password.keep && "
                  "echo not-the-password > /etc/mottivme/restic-password")
    try:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py"], sandbox_env)
        assert r.returncode != 0
        assert "RESTIC_PASSWORD does not open it" in r.stdout + r.stderr
        b = n8n_server.sh("n8n-backup --no-offsite; echo rc=$?", check=False)
        assert "rc=0" not in b
    finally:
        n8n_server.sh("mv /root/restic-password.keep /etc/mottivme/restic-password")
    assert n8n_state(n8n_server) == before


def test_missing_repository_and_unprovisioned_host_are_named(n8n_server, vault, sandbox_env):
    repo = f"/srv/restic/{n8n_server.name}"
    vault.sh(f"mv {repo} {repo}.away")
    try:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py", "--data", "from=offsite"], sandbox_env)
        assert r.returncode != 0 and "no repository there" in r.stdout + r.stderr
    finally:
        vault.sh(f"mv {repo}.away {repo}")
    n8n_server.sh("mv /opt/n8n/docker-compose.yml /opt/n8n/docker-compose.yml.away")
    try:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restore.py"], sandbox_env)
        assert r.returncode != 0 and "not provisioned" in r.stdout + r.stderr
    finally:
        n8n_server.sh("mv /opt/n8n/docker-compose.yml.away /opt/n8n/docker-compose.yml")


def test_two_backups_at_once_the_second_refuses(n8n_server):
    out = n8n_server.sh("(n8n-backup --no-offsite > /tmp/first.out 2>&1; echo first=$? >> /tmp/first.out) & "
                        "sleep 1; n8n-backup --no-offsite 2>&1; echo second=$?; wait; cat /tmp/first.out", check=False)
    assert "second=75" in out and "another n8n-backup is running" in out
    assert "first=0" in out


def test_no_password_in_a_command_line_or_a_throwaway_container_during_a_backup(n8n_server, supabase_host, sbx):
    """What `ps` and `docker inspect` show while a backup runs, sampled on the server every 50 ms:
    the database dumps ran, and no password (Supabase's, the stack's, restic's) is in any of it.
    (The stack's own n8n and postgres containers get theirs from their env file, as Compose gives it.)
    A session on Supabase holds a lock on one table for 4 s, as a migration would: Supabase's
    pg_dump waits for it, so the sampler sees the dump however fast it is on this small database."""
    held = ("select 1 from pg_locks l join pg_class c on c.oid = l.relation "
            "where c.relname = 'leads' and l.mode = 'AccessExclusiveLock' and l.granted")
    supabase_host.sh("(docker exec supabase-db psql -U postgres -qc 'begin; lock table crm.leads in access exclusive "
                     "mode; select pg_sleep(4); commit;' >/dev/null 2>&1 &); "
                     f'until docker exec supabase-db psql -U postgres -Atc "{held}" | grep -q 1; do sleep 0.1; done')
    sample = ("while [ ! -e /tmp/argv-stop ]; do ps -eo args; "
              "for c in $(docker ps --format '{{.ID}}:{{.Label \"com.docker.compose.project\"}}' | grep ':$'); do "
              "docker inspect -f '{{json .Config.Env}} {{json .Path}} {{json .Args}}' ${c%:} 2>/dev/null; done; "
              "sleep 0.05; done")
    n8n_server.sh(f"rm -f /tmp/argv-stop; ({sample}) > /tmp/argv-sampled 2>&1 & "
                  "n8n-backup --no-offsite --tag argv-check >/dev/null; rc=$?; touch /tmp/argv-stop; wait; "
                  "rm -f /tmp/argv-stop; exit $rc")
    seen = n8n_server.sh("cat /tmp/argv-sampled; rm -f /tmp/argv-sampled")
    assert "pg_dump -Fc --snapshot=" in seen  # sampled while Supabase's dump ran ...
    assert "PGPASSFILE=/run/pgpass" in seen  # ... and its container was inspected
    s = secrets_of(sbx)
    for name in ("SUPABASE_STANDIN_PASSWORD", "POSTGRES_PASSWORD", "RESTIC_PASSWORD", "N8N_ENCRYPTION_KEY"):
        assert s[name] not in seen, f"{name} visible in a command line or a throwaway container during a backup"
    assert n8n_server.sh("ls -A /run/mottivme").strip() == ""  # the pgpass files are gone


def test_vault_unreachable_keeps_the_local_snapshot_and_reports(n8n_server, vault, sbx):
    before = snapshot_ids(n8n_server)
    vault.sh("systemctl stop restic-rest-server")
    try:
        out = n8n_server.sh("n8n-backup 2>&1; echo rc=$?", check=False)
    finally:
        vault.sh("systemctl start restic-rest-server")
    assert "rc=0" not in out
    assert "kept locally, but the off-host copy failed" in out
    snap = re.search(r"snapshot ([0-9a-f]{8}) kept locally", out).group(1)
    assert snap in snapshot_ids(n8n_server) and snap not in before
    # at once (restic alone would retry for 15 minutes), the reason named, never the vault password
    password = n8n_server.sh("cat /etc/mottivme/vault-password").strip()
    assert "the vault does not answer: curl: (7)" in n8n_server.sh("tail -50 /var/log/n8n-backup.log")
    assert password not in out and password not in n8n_server.sh("cat /var/log/n8n-backup.log")


VAULT_RESTIC = f"{VAULT_REPOSITORY} RESTIC_PASSWORD_FILE=/etc/mottivme/restic-password restic " \
               "--cacert /etc/mottivme/vault-cert.pem"


def vault_snapshots(n8n_server) -> list[dict]:
    return json.loads(n8n_server.sh(f"{VAULT_RESTIC} snapshots --json --no-lock"))


def test_a_compromised_server_can_neither_destroy_its_vault_backups_nor_reach_another_servers(n8n_server, vault):
    """An intruder on an n8n server holds its vault account and the restic password. The REST
    server is append-only: `restic forget` removes nothing (restic only warns), `forget --prune`
    fails, and deleting or overwriting a file over the API is refused: every snapshot and pack is
    still there. (A bare `restic prune` has nothing to delete when nothing was forgotten; had it,
    it would meet the same refusal as the DELETE below.) Its account reaches only its own
    repository, and another account (a second n8n server's) cannot read this one's."""
    assert "off-host: rest:" in n8n_server.sh("n8n-backup --tag append-only")
    before = vault_snapshots(n8n_server)
    victim = before[-1]["id"]
    n8n_server.sh(f"{VAULT_RESTIC} forget {victim} >/dev/null 2>&1; true")
    out = n8n_server.sh(f"{VAULT_RESTIC} forget --keep-last 1 --prune 2>&1; echo rc=$?", check=False)
    assert "rc=0" not in out, f"restic forget --prune worked on the append-only vault: {out[-1500:]}"
    # straight at the REST API, with the server's own account: delete a snapshot, a pack; overwrite
    url = n8n_server.sh("jq -r '.backup.offsite_repositories[0]' /etc/mottivme/host.json").strip()
    api = url.removeprefix("rest:").replace("@", ":$(cat /etc/mottivme/vault-password)@", 1)
    curl = "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/mottivme/vault-cert.pem"
    packs = n8n_server.sh(f'curl -sf --cacert /etc/mottivme/vault-cert.pem -H "Accept: '
                          f'application/vnd.x.restic.rest.v2" "{api}data/"')
    pack = json.loads(packs)[0]["name"]
    assert n8n_server.sh(f'{curl} -X DELETE "{api}snapshots/{victim}"').strip() == "403"
    assert n8n_server.sh(f'{curl} -X DELETE "{api}data/{pack}"').strip() == "403"
    assert n8n_server.sh(f'{curl} -X POST --data-binary junk "{api}snapshots/{victim}"').strip() == "403"
    assert [x["id"] for x in vault_snapshots(n8n_server)] == [x["id"] for x in before]
    assert vault.sh(f"test -f /srv/restic/{n8n_server.name}/data/{pack[:2]}/{pack} && echo kept").strip() == "kept"
    assert "no errors were found" in n8n_server.sh(f"{VAULT_RESTIC} check 2>&1")
    assert vault.sh(f"test -f /srv/restic/{n8n_server.name}/snapshots/{victim} && echo kept").strip() == "kept"
    # its account and another server's repository: neither readable nor creatable
    other = api.replace(f"/{n8n_server.name}/", "/another-server/")
    assert n8n_server.sh(f'{curl} "{other}config"').strip() in ("401", "403")
    out = n8n_server.sh(f"RESTIC_REPOSITORY=\"rest:{other}\" RESTIC_PASSWORD_FILE=/etc/mottivme/restic-password "
                        "restic --cacert /etc/mottivme/vault-cert.pem init 2>&1; echo rc=$?", check=False)
    assert "rc=0" not in out and not vault.sh("ls /srv/restic").split().count("another-server")
    # another account (what a second n8n server has): its own repository, never this one's
    line = "another-server:" + bcrypt.hashpw(b"another-Pw-123", bcrypt.gensalt(4)).decode()
    vault.sh(f"cp -p /etc/restic-rest-server/users.htpasswd /root/htpasswd.keep && "
             f"echo '{line}' >> /etc/restic-rest-server/users.htpasswd && systemctl restart restic-rest-server")
    try:
        theirs = api.split("://", 1)[0] + "://another-server:another-Pw-123@" + api.split("@", 1)[1]
        assert n8n_server.sh(f'{curl} "{theirs}config"').strip() in ("401", "403")
        assert n8n_server.sh(f'{curl} "{theirs}snapshots/"').strip() in ("401", "403")
        own = theirs.replace(f"/{n8n_server.name}/", "/another-server/")
        assert n8n_server.sh(f'{curl} -X POST "{own}?create=true"').strip() == "200"  # the account works
    finally:
        vault.sh("cp -p /root/htpasswd.keep /etc/restic-rest-server/users.htpasswd && rm -rf /root/htpasswd.keep "
                 "/srv/restic/another-server && systemctl restart restic-rest-server")


def test_the_vault_prune_applies_the_servers_retention_there(n8n_server, vault, sandbox_env, sbx):
    """The n8n server cannot forget in the append-only vault; runbooks/vault_prune.py does it on
    the vault, with .env's restic password for the run only, and keeps exactly the snapshots the
    server's own retention keeps locally (keep_last 3 per tag group, plus restic's oldest of the
    day: 4 of 5 made within a minute)."""
    for _ in range(5):
        assert "off-host: rest:" in n8n_server.sh("n8n-backup --tag prune-check")
    ours = [x for x in vault_snapshots(n8n_server) if "prune-check" in x["tags"]]
    assert len(ours) == 5  # nothing forgotten there by the server
    r = run_pyinfra(["-y", "inventory.py", "runbooks/vault_prune.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(rf"{n8n_server.name}: (\d+) snapshots, (\d+) kept \(last 3, daily 7, weekly 4, monthly 12\)", out)
    assert m and int(m.group(1)) > int(m.group(2)), out[-3000:]
    assert "vault-prune: 1 repositories pruned" in out
    local = json.loads(n8n_server.sh("RESTIC_PASSWORD_FILE=/etc/mottivme/restic-password restic -r "
                                     "/var/backups/n8n/restic snapshots --json --tag prune-check"))
    kept = [x for x in vault_snapshots(n8n_server) if "prune-check" in x["tags"]]
    assert len(local) == 4 and sorted(x["original"] for x in kept) == sorted(x["id"] for x in local)
    assert secrets_of(sbx)["RESTIC_PASSWORD"] not in out
    assert ".mottivme-vault-prune" not in vault.sh("ls -A /root")  # the password's file is gone
    assert vault.sh("stat -c %U /srv/restic/" + n8n_server.name + "/index").strip() == "restic-rest-server"
    # an intruder's snapshot dated ahead (the retention would keep it in place of a real one):
    # that repository is not pruned, and the snapshot is named
    forged = n8n_server.sh(f"{VAULT_RESTIC} backup --json --tag n8n --tag prune-check --time '2099-01-01 03:00:00' "
                           "/etc/hostname | jq -r 'select(.message_type == \"summary\") | .snapshot_id'").strip()
    r = run_pyinfra(["-y", "inventory.py", "runbooks/vault_prune.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"{n8n_server.name}: NOT pruned: snapshot {forged[:8]} says it was made 2099-01-01" \
        in out, out[-3000:]
    assert len([x for x in vault_snapshots(n8n_server) if "prune-check" in x["tags"]]) == 5  # nothing forgotten
    vault.sh(f"rm /srv/restic/{n8n_server.name}/snapshots/{forged}")  # the operator, having looked at it
    r = run_pyinfra(["-y", "inventory.py", "runbooks/vault_prune.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "vault-prune: 1 repositories pruned" in out, out[-3000:]


def test_killed_backup_leaves_no_snapshot_and_the_next_run_works(n8n_server):
    before = snapshot_ids(n8n_server)
    n8n_server.sh("timeout -s KILL 4 n8n-backup --no-offsite; true", check=False)
    assert snapshot_ids(n8n_server) == before
    # the next run, as cron would start it once the killed run's last child (a dump) has ended
    out = n8n_server.sh("flock /run/lock/n8n-backup.lock true; n8n-backup --no-offsite")
    snap = re.search(r"backup ok: snapshot ([0-9a-f]{8})", out).group(1)
    assert snap in snapshot_ids(n8n_server) and snap not in before


def test_repository_disk_full_fails_clearly_and_keeps_earlier_snapshots(n8n_server):
    """The local repository on a file system with no room for the new snapshot: the backup fails
    naming the full disk, and every earlier snapshot is still there and readable."""
    repo = "/var/backups/n8n/restic"
    before = snapshot_ids(n8n_server)
    # a copy of the repository on a file system of its own, mounted over it, then filled up
    n8n_server.sh(f"mkdir -p /mnt/itest-full && size=$(du -sm {repo} | cut -f1) && "
                  f"mount -t tmpfs -o size=$((size + 8))m itest-full /mnt/itest-full && cp -a {repo}/. /mnt/itest-full/ && "
                  f"mount --bind /mnt/itest-full {repo} && (dd if=/dev/zero of={repo}/filler bs=1M 2>/dev/null; true)")
    try:
        out = n8n_server.sh("n8n-backup --no-offsite 2>&1; echo rc=$?", check=False)
        assert "rc=0" not in out, out[-2000:]
        assert "FAILED local repository" in out and "the disk is full" in out, out[-2000:]
        assert out.count("FAILED") == 1, out[-2000:]
        n8n_server.sh(f"rm {repo}/filler")
        assert snapshot_ids(n8n_server) == before  # the filled-up repository, room made again
        n8n_server.sh(f"RESTIC_PASSWORD_FILE=/etc/mottivme/restic-password restic -r {repo} check")
    finally:
        n8n_server.sh(f"umount {repo}; umount /mnt/itest-full", check=False)
    assert snapshot_ids(n8n_server) == before


def test_interrupted_restore_leaves_n8n_running_on_one_whole_database(n8n_server, sandbox_env):
    """Ctrl-C while the snapshot is being restored: n8n is never left stopped, it runs on either its
    own database or the whole restored one, and the half-restored copy is gone."""
    before = n8n_state(n8n_server)
    started = n8n_server.sh("docker inspect -f '{{.State.StartedAt}}' $(mottivme-host compose ps -q n8n)").strip()
    n8n_server.sh(": > /var/log/n8n-backup.log")
    interrupt_runbook(n8n_server, sandbox_env, ["runbooks/restore.py", "--data", "safety_snapshot=no"],
                      reached="grep -q \"restoring n8n's database into\" /var/log/n8n-backup.log", script="n8n-restore")
    log = n8n_server.sh("cat /var/log/n8n-backup.log")
    assert "FAILED restore n8n database: interrupted" in log or "restore ok" in log, log[-2000:]
    if "interrupted" in log:  # stopped before the swap: n8n was never stopped
        assert n8n_server.sh("docker inspect -f '{{.State.StartedAt}}' $(mottivme-host compose ps -q n8n)").strip() == started
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
    assert n8n_state(n8n_server) == before  # the snapshot holds the same data
    assert "n8n_restoring" not in n8n_server.sh(f"{N8N_PSQL} -c 'select datname from pg_database'")


def test_restore_drill_runs_in_throwaway_containers(n8n_server, sandbox_env):
    containers = n8n_server.sh("docker ps -a --format '{{.Names}}' | sort")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restore_drill.py", "--data", "from=offsite"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "drill ok" in out and "1 credentials (1 decrypt)" in out
    assert re.search(r"drill: throwaway n8n ready\s+[0-9.]+ s", out)
    assert n8n_server.sh("docker ps -a --format '{{.Names}}' | sort") == containers


def test_weekly_cleanup_removes_exactly_the_rows_past_the_thresholds(n8n_server, supabase_host):
    def count(sql):
        return int(supabase_host.sh(f"echo \"{sql}\" | {SUPABASE_PSQL}").strip())

    old_exec = count("select count(*) from workflow_executions where created_at < now() - interval '90 days'")
    old_conv = count("select count(*) from conversation_history where created_at < now() - interval '180 days'")
    total_exec = count("select count(*) from workflow_executions")
    total_conv = count("select count(*) from conversation_history")
    assert old_exec > 0 and old_conv > 0 and old_exec < total_exec

    dry = n8n_server.sh("n8n-supabase-cleanup --dry-run")
    assert f"workflow_executions: {old_exec} rows older than 90 days would be deleted" in dry
    assert count("select count(*) from workflow_executions") == total_exec

    out = n8n_server.sh("n8n-supabase-cleanup")
    assert f"workflow_executions: deleted {old_exec} rows older than 90 days" in out
    assert f"conversation_history: deleted {old_conv} rows older than 180 days" in out
    assert count("select count(*) from workflow_executions") == total_exec - old_exec
    assert count("select count(*) from conversation_history") == total_conv - old_conv
    assert count("select count(*) from workflow_executions where created_at < now() - interval '90 days'") == 0


def test_heartbeat_and_failure_hooks_are_called(n8n_server, vault):
    """The monitoring hooks: a GET heartbeat after a good backup, a POST with the reason after a failed one.
    A small HTTP server on the vault (port 80, open in its firewall) stands in for the monitor."""
    ip = vault.h["private_ip"]
    vault.sh("systemd-run --unit itest-hook python3 -m http.server 80 --directory /tmp")
    n8n_server.sh("cp -a /etc/mottivme/host.json /root/host.json.keep")
    edit_host_settings(n8n_server, "backup", success_hook=f"http://{ip}/heartbeat", failure_hook=f"http://{ip}/failed",
                       hook_curl_args=[])
    try:
        assert "backup ok" in n8n_server.sh("n8n-backup --no-offsite")
        n8n_server.sh("cp -a /etc/mottivme/restic-password /root/rp.keep && echo wrong > /etc/mottivme/restic-password")
        try:
            assert "rc=0" not in n8n_server.sh("n8n-backup --no-offsite; echo rc=$?", check=False)
        finally:
            n8n_server.sh("mv /root/rp.keep /etc/mottivme/restic-password")
        log = vault.sh("journalctl -u itest-hook --no-pager -o cat")
        assert '"GET /heartbeat HTTP/1.1"' in log
        assert '"POST /failed HTTP/1.1"' in log
    finally:
        n8n_server.sh("mv /root/host.json.keep /etc/mottivme/host.json")
        vault.sh("systemctl stop itest-hook", check=False)


MOTO = "moto[server]==5.2.5"  # an S3-compatible service from PyPI: stands in for the bucket


def sandbox_pip_args() -> str:
    """pip on a sandbox server goes through the sandbox's proxy, as the monitor's deploy does."""
    from tasks.groupdata import load

    return load("sandbox")["pip_extra_args"]


def test_s3_repository_gets_the_copy_and_restores_when_the_vault_is_down(n8n_server, vault, sandbox_env, sbx):
    """BACKUP_S3_REPOSITORY in .env: the deploy writes the bucket's keys (0600, never printed), the
    backup copies each snapshot to the bucket as well as to the vault, and with the vault down the
    restore runbook takes the snapshot from the bucket. The bucket is moto's S3 server on the vault
    server's port 80 (open in its firewall)."""
    vault.sh("test -x /opt/moto/bin/moto_server || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv "
             f">/dev/null && python3 -m venv /opt/moto && /opt/moto/bin/pip install -q {sandbox_pip_args()} '{MOTO}'; }}")
    vault.sh("systemd-run --unit itest-s3 /opt/moto/bin/moto_server -H 0.0.0.0 -p 80 && "
             "for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1/ && break; sleep 0.2; done")
    base = f"s3:http://{vault.h['private_ip']}/mottivme-backups"
    bucket = f"{base}/{n8n_server.name}"  # each n8n server's own repository under the configured path
    secret_key = "itest-s3-secret-" + secrets_of(sbx)["RESTIC_PASSWORD"][:12]
    s3_env = {**sandbox_env, "BACKUP_S3_REPOSITORY": base, "AWS_ACCESS_KEY_ID": "itest-access-key",
              "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], s3_env)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert secret_key not in out
        assert n8n_server.sh("stat -c %a /etc/mottivme/host.json").strip() == "600"
        snap, out = backup_now(s3_env)
        assert re.search(r"off-host: rest:\S+ " + re.escape(bucket), out), out[-2000:]
        keys = json.loads(n8n_server.sh("cat /etc/mottivme/host.json"))["backup"]["env"]
        assert keys["AWS_SECRET_ACCESS_KEY"] == secret_key
        in_bucket = n8n_server.sh(" ".join(f"{k}={shlex.quote(v)}" for k, v in keys.items()) + " RESTIC_PASSWORD_FILE="
                                  f"/etc/mottivme/restic-password RESTIC_REPOSITORY={bucket} restic snapshots --json")
        # restic copy gives the copy an id of its own and records the local one as "original"
        (copy,) = [s for s in json.loads(in_bucket) if s.get("original", "").startswith(snap)]
        vault.sh("systemctl stop restic-rest-server")
        try:
            r = run_pyinfra(["-y", "--limit", "n8n_servers", "inventory.py", "runbooks/restore.py",
                             "--data", "from=offsite", "--data", "safety_snapshot=no"], s3_env)
        finally:
            vault.sh("systemctl start restic-rest-server")
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        # found by the id the backup printed, read from the bucket's copy
        assert f"snapshot {snap} (stored as {copy['short_id']} in {bucket})" in out and "restore ok" in out, out[-3000:]
        assert secret_key not in out
    finally:
        vault.sh("systemctl stop itest-s3", check=False)
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)  # back to the vault only
        assert r.returncode == 0, r.stderr[-3000:]
    assert "AWS_" not in n8n_server.sh("cat /etc/mottivme/host.json")


def test_a_second_database_is_one_more_backup_source(n8n_server, supabase_host, sandbox_env, sbx, tmp_path):
    """group_data backup_sources: a second PostgreSQL database is one entry (and its URL in .env),
    no code: the deploy hands it to the host, the backup dumps it beside Supabase, and the restore
    runbook restores that source alone over its database (n8n untouched)."""
    supabase_host.sh(f"echo 'create database analytics' | {SUPABASE_PSQL}; "
                     "echo 'create table if not exists visits (id bigint primary key, page text); "
                     "insert into visits select g, md5(g::text) from generate_series(1, 2500) g on conflict do nothing' "
                     "| docker exec -i supabase-db psql -U postgres -d analytics -AtqX -v ON_ERROR_STOP=1", check=False)
    extra = tmp_path / "group_data"
    extra.mkdir()
    (extra / "n8n_servers.py").write_text(
        "backup_sources = [\n"
        "    {'name': 'n8n', 'kind': 'n8n'},\n"
        "    {'name': 'supabase', 'kind': 'postgres', 'url_env': 'SUPABASE_DB_URL', 'schemas': ['public']},\n"
        "    {'name': 'analytics', 'kind': 'postgres', 'url_env': 'ANALYTICS_DB_URL', 'schemas': ['public']},\n"
        "]\n")
    url = f"postgresql://postgres:{_standin_password(sbx)}@{supabase_host.h['private_ip']}:5432/analytics"
    env = {**sandbox_env, "ANALYTICS_DB_URL": url}
    try:
        r = run_pyinfra(["-y", "--group-data", str(extra), "inventory.py", "deploy.py"], env)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        snap, out = backup_now(env)
        assert "supabase: 6 tables" in out and "analytics: 1 tables, 2500 rows in public" in out, out[-2000:]
        assert url not in out and _standin_password(sbx) not in out
        supabase_host.sh("echo 'delete from visits where id % 2 = 0' "
                         "| docker exec -i supabase-db psql -U postgres -d analytics -AtqX -v ON_ERROR_STOP=1")
        started = n8n_server.sh("docker inspect -f '{{.State.StartedAt}}' $(mottivme-host compose ps -q n8n)").strip()
        r = run_pyinfra(["-y", "--group-data", str(extra), "inventory.py", "runbooks/restore.py",
                         "--data", f"snapshot={snap}", "--data", "sources=analytics", "--data", f"target={url}",
                         "--data", "confirm_overwrite=yes"], env)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert "analytics: restored over the named target database" in out
        count = "echo 'select count(*) from visits' | docker exec -i supabase-db psql -U postgres -d analytics -AtqX"
        assert supabase_host.sh(count).strip() == "2500"
        assert n8n_server.sh("docker inspect -f '{{.State.StartedAt}}' $(mottivme-host compose ps -q n8n)").strip() == started  # n8n untouched
    finally:
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)  # back to the configured sources
        assert r.returncode == 0, r.stderr[-3000:]
        supabase_host.sh(f"echo 'drop database if exists analytics with (force)' | {SUPABASE_PSQL}", check=False)
