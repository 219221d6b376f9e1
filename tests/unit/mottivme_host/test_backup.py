"""n8n-backup (mottivme_host/backup.py) driven by the recording fake: what goes into the snapshot
(the backup sources: n8n and each postgres database, dumped beside the n8n part), the repository
decisions (init or refuse), the off-host copies, the one FAILED line and its hook, the lock, the
staging clean-up, and that the databases' URLs and the hook URLs stay secret. No docker, no restic."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import threading
import time

import pytest

from mottivme_host import backup as backup_mod
from mottivme_host import cli, common, settings, stack
from tests.helpers import Call, FakeRunner, libpq_url, posted, run_for_real

HOST = "n8n-test-1"
SUPA_PASSWORD = "supa-S3cret-pw"
SUPA_URL = f"postgresql://postgres:{SUPA_PASSWORD}@db.example.test:5432/postgres"
ANALYTICS_PASSWORD = "an4lytics-Pw-99"
ANALYTICS_URL = f"postgresql://reader:{ANALYTICS_PASSWORD}@analytics.example.test:5432/analytics"
OK_HOOK = "https://hooks.example.test/ping/ok-TOKEN-1234"
FAIL_HOOK = "https://hooks.example.test/ping/fail-TOKEN-5678"
VAULT = "rest:https://n8n-test-1@vault.example.test:8000/n8n-test-1/"  # as logs show it
VAULT_PASSWORD = "vault-Acc0unt-pw"
VAULT_FOR_RESTIC = f"rest:https://n8n-test-1:{VAULT_PASSWORD}@vault.example.test:8000/n8n-test-1/"
BUCKET = "s3:http://s3.example.test/mottivme-backups/n8n-test-1"
SNAP = "0123abcd" + "e" * 56
N8N_DUMP = bytes(range(256)) * 6000  # > 1 MiB: hashed in more than one block
SUPA_DUMP = b"PGDMP supabase dump"
N8N_COUNTS = "credentials_entity 1\nexecution_entity 12\nworkflow_entity 4\n"
SUPA_COUNTS = "rag_documents 20\nworkflow_executions 3000\n"
ANALYTICS_DUMP = b"PGDMP analytics dump"
ANALYTICS_COUNTS = "public.visits 2500\nreporting.daily 30\nreporting.monthly 1\n"
N8N_SOURCE = {"name": "n8n", "kind": "n8n"}
SUPA_SOURCE = {"name": "supabase", "kind": "postgres", "url": SUPA_URL}
ANALYTICS_SOURCE = {"name": "analytics", "kind": "postgres", "url": ANALYTICS_URL, "schemas": ["public", "reporting"]}
DB_DUMP = "psql -X -q"  # a postgres source's session: its shape, dump and counts (backup.session_sql)
NO_REPO = ("Fatal: unable to open config file: stat /x/config: no such file or directory\n"
           "Is there a repository at the following location?\n")
DISK_HINT = ("the disk is full (see df -h {dir} {repo}): free space, or lower the retention (group_data "
             "backup_keep_*) and run restic forget --prune; earlier snapshots are untouched")


def summary_json(snapshot_id: str | None = SNAP) -> str:
    summary = {"message_type": "summary", "files_new": 11, "total_bytes_processed": 1234}
    if snapshot_id:
        summary["snapshot_id"] = snapshot_id
    return json.dumps({"message_type": "status", "percent_done": 0.5}) + "\n" + json.dumps(summary) + "\n"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _host(monkeypatch):
    """A fixed host name, and a weekday that is not the check day (7) unless a test says so."""
    monkeypatch.setattr(common, "hostname", lambda: HOST)
    monkeypatch.setattr(common, "weekday", lambda: 3)


def make_settings(tmp_path, **backup) -> settings.Settings:
    stack = tmp_path / "opt-n8n"
    (stack / "caddy").mkdir(parents=True)
    (stack / "docker-compose.yml").write_text("services:\n  n8n: {}\n")
    (stack / ".env").write_text("N8N_ENCRYPTION_KEY=0123456789abcdef\n")
    (stack / ".env").chmod(0o600)
    (stack / "caddy" / "Caddyfile").write_text("n8n.example.test {\n  reverse_proxy n8n:5678\n}\n")
    (tmp_path / "vault-password").write_text(VAULT_PASSWORD + "\n")
    b = {"dir": str(tmp_path / "backups"), "local_repository": str(tmp_path / "backups" / "restic"),
         "password_file": str(tmp_path / "restic-password"), "log": str(tmp_path / "log" / "n8n-backup.log"),
         "lock": str(tmp_path / "lock" / "n8n-backup.lock"), "offsite_repositories": [VAULT, BUCKET],
         "append_only_repositories": [VAULT], "vault_password_file": str(tmp_path / "vault-password"),
         "vault_cert_file": "/etc/mottivme/vault-cert.pem", "success_hook": OK_HOOK, "failure_hook": FAIL_HOOK,
         "hook_curl_args": ["--resolve", "hooks.example.test:443:10.0.0.9"], "sources": [N8N_SOURCE, SUPA_SOURCE],
         "env": {"AWS_ACCESS_KEY_ID": "access-key"}}
    b.update(backup)
    return settings.from_dict({"stack_dir": str(stack), "compose": ["docker", "compose", "-p", "n8n"],
                               "postgres_image": "postgres:17", "backup": b,
                               "run_dir": str(tmp_path / "run")})


@pytest.fixture
def s(tmp_path):
    return make_settings(tmp_path)


def stage(s) -> str:
    return os.path.join(s.backup.dir, "staging")


def docker_cp(argv, kw):
    """What n8n's export leaves in the container, copied out."""
    dest = argv[-1]
    os.makedirs(os.path.join(dest, "workflows"))
    os.makedirs(os.path.join(dest, "credentials"))
    with open(os.path.join(dest, "n8n-version.txt"), "w") as f:
        f.write("2.41.1\n")
    with open(os.path.join(dest, "workflows", "w1.json"), "w") as f:
        f.write('{"id": "w1"}')


def session(argv, kw, dump: bytes, counts: str, shape: str = "", rc: int = 0):
    """What a source's session (backup.session_sql) does: pg_dump writes the dump and its status
    into the staging directory mounted on /out; psql prints the shape's and the counts' lines."""
    out = next(a for a in argv if a.endswith(":/out")).rsplit(":", 1)[0]
    name = re.search(r" -f /out/(\S+)\.dump;", kw["input"]).group(1)
    with open(os.path.join(out, f"{name}.dump"), "wb") as f:
        f.write(dump)
    with open(os.path.join(out, "pg_dump.rc"), "w") as f:
        f.write(f"{rc}\n")
    return 0, f"==shape\n{shape}==counts\n{counts}", ""


def databases(r: FakeRunner, dbs: dict) -> None:
    """The postgres sources' servers, told apart by the URL their container reaches (url_of):
    URL -> (server_version_num, dump bytes, counts text)."""

    def version(argv, kw):
        return 0, dbs[libpq_url(Call(argv, kw))][0] + "\n", ""

    def dump(argv, kw):
        return session(argv, kw, *dbs[libpq_url(Call(argv, kw))][1:3])

    r.on("show server_version_num", call=version)
    r.on(DB_DUMP, call=dump)


@pytest.fixture
def fake():
    r = FakeRunner()
    r.on("pg_dump -U n8n -Fc -Z0 n8n", write=N8N_DUMP)
    r.on(lambda c: c.startswith("docker compose") and "information_schema" in c, stdout=N8N_COUNTS)
    r.on("show server_version", stdout="17.4 (Debian 17.4-1.pgdg120+2)\n")
    r.on("ps -q n8n", stdout="c0ffee42\n")
    r.on("docker cp", call=docker_cp)
    databases(r, {SUPA_URL: ("150008", SUPA_DUMP, SUPA_COUNTS),
                  ANALYTICS_URL: ("160004", ANALYTICS_DUMP, ANALYTICS_COUNTS)})
    r.on("restic backup --json", stdout=summary_json())
    return r


def backup(s, r, *args) -> int:
    return cli.main(["n8n-backup", *args], runner=r, settings=s)


def log_of(s) -> str:
    with open(s.backup.log) as f:
        return f.read()


def restic_calls(r, *words, repo=None):
    """restic calls whose arguments include `words` in order, in `repo` (its RESTIC_REPOSITORY,
    the vault's password taken out) if given."""
    out = []
    for c in r.calls:
        in_repo = (c.kw["env"] or {}).get("RESTIC_REPOSITORY", "").replace(f":{VAULT_PASSWORD}@", "@")
        if c.argv[0] != "restic" or (repo and in_repo != repo):
            continue
        args = c.argv[1:]
        if args[:1] == ["--cacert"]:
            args = args[2:]
        if args[:len(words)] == list(words):
            out.append(c)
    return out


def hook_calls(r, url):
    """curl calls for `url`: the URL holds the heartbeat token, so it goes on stdin (-K -), never argv."""
    return [c for c in r.calls if c.argv[0] == "curl" and (c.kw.get("input") or "").startswith(common.curl_config(url))]


def assert_secrets_kept(s, r, out: str) -> None:
    for c in r.calls:
        assert SUPA_PASSWORD not in c.cmd and ANALYTICS_PASSWORD not in c.cmd and VAULT_PASSWORD not in c.cmd, c.cmd
    log = log_of(s)
    for secret in (SUPA_PASSWORD, ANALYTICS_PASSWORD, VAULT_PASSWORD, "ok-TOKEN-1234", "fail-TOKEN-5678"):
        assert secret not in out and secret not in log
    staged = os.path.join(s.backup.dir, "last-manifest.json")
    if os.path.exists(staged):
        with open(staged) as f:
            text = f.read()
        assert SUPA_PASSWORD not in text and ANALYTICS_PASSWORD not in text


def manifest_of(s) -> dict:
    with open(os.path.join(s.backup.dir, "last-manifest.json")) as f:
        return json.load(f)


def db_calls(r, url):
    """The commands run for the postgres source at `url` (told apart by the host libpq is given)."""
    host = url.split("@")[1].split(":")[0]
    return [c for c in r.calls if (c.kw.get("env") or {}).get("PGHOST") == host]


# --- a good run ------------------------------------------------------------------------------
def test_good_run_makes_one_snapshot_of_everything_then_copies_it_off_host(s, fake, capsys):
    staged = {}

    def at_snapshot(argv, kw):  # what restic is given: the complete staging directory
        root = argv[-1]
        staged["files"] = sorted(os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns)
        staged["env_mode"] = os.stat(os.path.join(root, "config", ".env")).st_mode & 0o777
        with open(os.path.join(root, "manifest.json")) as f:
            staged["manifest"] = f.read()

    fake.on("restic backup --json", stdout=summary_json(), call=at_snapshot)
    assert backup(s, fake) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (f"backup ok: snapshot 0123abcd (n8n: 4 workflows, 1 credentials; supabase: 2 tables, 3020 rows in public) "
                   f"off-host: {VAULT} {BUCKET} in 0s\n")

    # the snapshot's id, for a restore that fetches this server's last backup early (n8n-restore)
    with open(os.path.join(s.backup.dir, "last-snapshot")) as f:
        assert f.read() == f"{SNAP} {HOST}\n"
    # the manifest (format 2: per source), sizes and sha256 of each staged file
    with open(os.path.join(s.backup.dir, "last-manifest.json")) as f:
        text = f.read()
    assert text == staged["manifest"]
    m = json.loads(text)
    assert text == json.dumps(m, indent=2)
    assert list(m) == ["format", "host", "tags", "started", "finished", "sources", "files"]
    assert m["format"] == 2 and m["host"] == HOST and m["tags"] == ["n8n", "scheduled"]
    assert list(m["sources"]) == ["n8n", "supabase"]
    assert m["sources"]["n8n"] == {
        "kind": "n8n", "version": "2.41.1", "postgres_version": "17.4 (Debian 17.4-1.pgdg120+2)", "workflows": 4,
        "credentials": 1, "row_counts": {"credentials_entity": 1, "execution_entity": 12, "workflow_entity": 4},
        "dump": "n8n/n8n-db.dump"}
    assert m["sources"]["supabase"] == {"kind": "postgres", "server_version_num": 150008, "schemas": ["public"],
                                        "row_counts": {"rag_documents": 20, "workflow_executions": 3000},
                                        "dump": "supabase/supabase.dump"}
    assert m["files"]["n8n/n8n-db.dump"] == {"size": len(N8N_DUMP), "sha256": hashlib.sha256(N8N_DUMP).hexdigest()}
    assert m["files"]["supabase/supabase.dump"]["sha256"] == hashlib.sha256(SUPA_DUMP).hexdigest()
    assert set(m["files"]) == {
        "n8n/n8n-db.dump", "n8n/row-counts.txt", "n8n/postgres-version.txt", "n8n/export/n8n-version.txt",
        "n8n/export/workflows/w1.json", "supabase/supabase.dump", "supabase/row-counts.txt",
        "supabase/server-version-num.txt", "config/docker-compose.yml", "config/.env", "config/caddy/Caddyfile"}
    assert staged["files"] == sorted([*m["files"], "manifest.json"])
    assert staged["env_mode"] == 0o600  # copied keeping its permissions

    # one snapshot of the staging directory, tagged, in the local repository
    (snap,) = restic_calls(fake, "backup", repo=s.backup.local_repository)
    assert snap.argv[1:] == ["backup", "--json", "--host", HOST, "--tag", "n8n", "--tag", "scheduled", stage(s)]
    assert snap.kw["env"]["RESTIC_PASSWORD_FILE"] == s.backup.password_file
    assert not restic_calls(fake, "init")
    assert not restic_calls(fake, "check")
    assert fake.index("pg_dump -U n8n") < fake.index("restic backup") < fake.index("restic forget")
    # the n8n export gets the counts as arguments and a task-broker port of its own
    (export,) = [c for c in fake.calls if "export:workflow" in c.cmd]
    assert export.argv[:9] == ["docker", "compose", "-p", "n8n", "exec", "-T", "-e", "N8N_RUNNERS_BROKER_PORT=5691", "n8n"]
    assert export.argv[-3:] == ["sh", "4", "1"]

    # copied to both off-host repositories; retention applied in the bucket, never in the vault
    # (append-only: its retention is the vault's prune)
    for url in (VAULT, BUCKET):
        (copy,) = restic_calls(fake, "copy", SNAP, repo=url)
        assert copy.kw["env"]["RESTIC_FROM_REPOSITORY"] == s.backup.local_repository
        assert copy.kw["env"]["RESTIC_FROM_PASSWORD_FILE"] == s.backup.password_file
    assert restic_calls(fake, "forget", "--tag", "n8n", "--group-by", "host,tags", repo=BUCKET)
    # no --host: every repository it forgets in is its own, and an earlier name's snapshots age out too
    assert all("--host" not in c.argv for c in restic_calls(fake, "forget"))
    assert not restic_calls(fake, "forget", repo=VAULT)
    # the vault: its certificate on the command line, this server's password only in restic's environment
    (vault_copy,) = restic_calls(fake, "copy", repo=VAULT)
    assert vault_copy.argv[1:3] == ["--cacert", "/etc/mottivme/vault-cert.pem"]
    assert vault_copy.kw["env"]["RESTIC_REPOSITORY"] == VAULT_FOR_RESTIC
    (bucket_copy,) = restic_calls(fake, "copy", repo=BUCKET)
    assert "--cacert" not in bucket_copy.argv

    # the heartbeat, a GET; no failure hook
    (ok,) = hook_calls(fake, OK_HOOK)
    assert ok.argv == ["curl", "-fsS", "-m", "10", "--retry", "2", "--resolve", "hooks.example.test:443:10.0.0.9",
                       "-o", "/dev/null", "-K", "-"]
    assert not any("TOKEN" in a for c in fake.calls for a in c.argv)  # no token on any command line
    assert not hook_calls(fake, FAIL_HOOK)
    assert not os.path.exists(stage(s))
    assert os.path.exists(os.path.join(s.backup.dir, "last-success"))
    assert "ok snapshot 0123abcd in 0s; n8n: 4 workflows" in log_of(s)
    assert_secrets_kept(s, fake, out + err)


def test_the_supabase_password_reaches_the_containers_only_in_a_private_pgpass_file(s, fake, capsys):
    assert backup(s, fake) == 0
    supa = [c for c in fake.calls if c.argv[:2] == ["docker", "run"]]
    assert len(supa) == 2 and db_calls(fake, SUPA_URL) == supa  # server version; shape, dump, counts
    # the file exists while the container runs
    assert [c.kw["pgpass"] for c in supa] == [(f"*:*:*:*:{SUPA_PASSWORD}\n", 0o600)] * 2
    for c in supa:
        # libpq's variables by name; no URL and no password in the environment docker passes on
        assert c.kw["env"] == {"PGHOST": "db.example.test", "PGPORT": "5432", "PGUSER": "postgres",
                               "PGDATABASE": "postgres"}
        assert "PGPASSFILE=/run/pgpass" in c.argv and "sh" not in c.argv
    assert os.listdir(s.run_dir) == []  # gone after
    # the server is PostgreSQL 15: its own pg_dump; the schema an argument of pg_dump, no shell
    assert [supa[0].argv[-4], supa[1].argv[-len(backup_mod.DB_SESSION) - 1]] == ["postgres:17", "postgres:15"]
    assert supa[1].argv[-len(backup_mod.DB_SESSION):] == backup_mod.DB_SESSION
    assert "-i" in supa[1].argv[:4]  # the script reaches psql on stdin
    # pg_dump runs on the session's exported snapshot: the counts are the dump's
    script = supa[1].kw["input"]
    assert script.startswith("begin transaction isolation level repeatable read, read only;\n"
                             "select pg_export_snapshot() as snapshot \\gset\n")
    assert ('\\! pg_dump -Fc --snapshot="$MOTTIVME_SNAPSHOT" -Z0 --schema=public -f /out/supabase.dump; '
            'echo "$?" > /out/pg_dump.rc\n') in script
    assert script.endswith(f"\\echo ==counts\n{stack.COUNTS_SQL};\ncommit;\n")  # one schema public: keys as ever
    assert_secrets_kept(s, fake, "".join(capsys.readouterr()))


def test_the_dumps_take_the_compression_level_of_the_settings(tmp_path, fake, capsys):
    """dump_compression (group_data backup_dump_compression, 0 by default: restic compresses) is
    pg_dump's -Z of both the n8n database's dump and a postgres source's."""
    s6 = make_settings(tmp_path, dump_compression=6)
    fake.on("pg_dump -U n8n -Fc -Z6 n8n", write=N8N_DUMP)
    fake.on("restic backup --json", stdout=summary_json())
    assert backup(s6, fake) == 0, capsys.readouterr()
    assert fake.ran("pg_dump -U n8n -Fc -Z6 n8n") and not fake.ran("-Z0")
    _, dump = db_calls(fake, SUPA_URL)
    assert '\\! pg_dump -Fc --snapshot="$MOTTIVME_SNAPSHOT" -Z6 --schema=public -f /out/supabase.dump' in dump.kw["input"]


def test_tags_given_replace_scheduled(s, fake, capsys):
    assert backup(s, fake, "--tag", "manual", "--tag", "pre-upgrade") == 0
    (snap,) = restic_calls(fake, "backup")
    assert snap.argv[5:11] == ["--tag", "n8n", "--tag", "manual", "--tag", "pre-upgrade"]
    with open(os.path.join(s.backup.dir, "last-manifest.json")) as f:
        assert json.load(f)["tags"] == ["n8n", "manual", "pre-upgrade"]


def test_a_safety_snapshot_is_not_the_last_backup_a_restore_fetches_early(s, fake, capsys):
    """n8n-restore's "latest" is never a pre-restore snapshot: last-snapshot keeps naming the
    backup before it."""
    fake.on("restic backup --json", stdout=summary_json())
    assert backup(s, fake) == 0
    fake.on("restic backup --json", stdout=summary_json("9999ffff" + "0" * 56))
    assert backup(s, fake, "--tag", "pre-restore", "--no-offsite") == 0
    with open(os.path.join(s.backup.dir, "last-snapshot")) as f:
        assert f.read() == f"{SNAP} {HOST}\n"


# --- the local repository -------------------------------------------------------------------
def test_no_repository_yet_is_initialised_then_used(s, fake, capsys):
    fake.on(lambda c: c.startswith("restic cat config"), rc=1, stderr=NO_REPO)
    assert backup(s, fake) == 0
    (init,) = restic_calls(fake, "init", repo=s.backup.local_repository)
    assert fake.calls.index(init) < fake.index("restic backup")
    assert "unable to open config file" in log_of(s)


def test_a_repository_that_does_not_open_fails_once_and_is_never_initialised(s, fake, capsys):
    fake.on(lambda c: c.startswith("restic cat config"), rc=1,
            stderr="repository 1a2b3c opened\nFatal: wrong password or no key found\n")
    assert backup(s, fake) == 1
    out, err = capsys.readouterr()
    msg = (f"local repository: cannot open the repository {s.backup.local_repository}: "
           "Fatal: wrong password or no key found")
    assert err == f"n8n-backup: FAILED {msg}\n"
    assert (out + err).count("FAILED") == 1 and "disk is full" not in err
    assert not restic_calls(fake, "init") and not restic_calls(fake, "backup")
    (hook,) = hook_calls(fake, FAIL_HOOK)
    assert hook.argv[-6:] == ["-X", "POST", "-o", "/dev/null", "-K", "-"]
    assert posted(hook) == f"n8n-backup on {HOST} failed: {msg}"
    assert not hook_calls(fake, OK_HOOK)
    assert f"FAILED {msg}" in log_of(s)
    assert not os.path.exists(stage(s))  # removed on failure too
    assert not os.path.exists(os.path.join(s.backup.dir, "last-success"))
    assert_secrets_kept(s, fake, out + err)


def test_a_full_disk_is_named_with_what_to_do(s, fake, capsys):
    fake.on("restic backup --json", rc=1,
            stderr="Fatal: unable to save snapshot: write /var/backups/n8n/restic/data/ab/x: no space left on device\n")
    assert backup(s, fake) == 1
    out, err = capsys.readouterr()
    hint = DISK_HINT.format(dir=s.backup.dir, repo=s.backup.local_repository)
    msg = f"local repository: restic backup failed (details in {s.backup.log}); {hint}"
    assert err == f"n8n-backup: FAILED {msg}\n"
    assert (out + err).count("FAILED") == 1
    assert posted(hook_calls(fake, FAIL_HOOK)[0]) == f"n8n-backup on {HOST} failed: {msg}"
    assert not os.path.exists(stage(s))


def test_a_full_disk_of_an_earlier_run_is_not_this_runs_reason(s, fake, capsys):
    os.makedirs(os.path.dirname(s.backup.log))
    with open(s.backup.log, "w") as f:
        f.write("2026-01-01 03:17:00 [1] restic: write x: No space left on device\n")
    fake.on("restic backup --json", rc=1, stderr="Fatal: unable to save snapshot: ciphertext verification failed\n")
    assert backup(s, fake) == 1
    err = capsys.readouterr().err
    assert "FAILED local repository: restic backup failed" in err and "disk is full" not in err


def test_a_backup_that_made_no_snapshot_fails(s, fake, capsys):
    fake.on("restic backup --json", stdout=summary_json(None))
    assert backup(s, fake) == 1
    assert capsys.readouterr().err == "n8n-backup: FAILED local repository: restic made no snapshot\n"
    assert not restic_calls(fake, "copy") and not os.path.exists(os.path.join(s.backup.dir, "last-manifest.json"))


# --- failures on the way ---------------------------------------------------------------------
def test_a_failed_command_is_one_line_naming_the_step_and_the_command(s, fake, capsys):
    fake.on("pg_dump -U n8n -Fc -Z0 n8n", rc=1, stderr="pg_dump: error: connection refused\n")
    assert backup(s, fake) == 1
    out, err = capsys.readouterr()
    assert err == ("n8n-backup: FAILED n8n database dump: "
                   "`docker compose -p n8n exec -T postgres pg_dump -U n8n -Fc -Z0 n8n` "
                   f"exited 1 (details in {s.backup.log})\n")
    assert (out + err).count("FAILED") == 1
    assert "pg_dump: error: connection refused" in log_of(s)
    assert not restic_calls(fake, "backup")
    assert len(hook_calls(fake, FAIL_HOOK)) == 1
    assert not os.path.exists(stage(s))


def test_no_pg_dump_for_the_supabase_major_fails_naming_it(s, fake, capsys):
    fake.on("show server_version_num", stdout="160004\n")
    fake.on("docker image inspect", rc=1)
    fake.on("docker pull", rc=1, stderr="Error response from daemon: manifest unknown\n")
    assert backup(s, fake) == 1
    err = capsys.readouterr().err
    assert err == "n8n-backup: FAILED supabase dump: no pg_dump for PostgreSQL 16: image postgres:16 not available\n"
    assert fake.ran("docker pull -q postgres:16")
    assert not fake.ran(DB_DUMP) and not restic_calls(fake, "backup")
    assert not os.path.exists(stage(s))


def test_a_major_version_with_no_image_in_the_settings_fails_naming_the_fix(s, fake, capsys):
    """Supabase moved to a major version group data does not list: nothing is pulled by a guessed tag."""
    fake.on("show server_version_num", stdout="180001\n")
    assert backup(s, fake) == 1
    assert capsys.readouterr().err == (
        "n8n-backup: FAILED supabase dump: no pg_dump for PostgreSQL 18: no image for PostgreSQL 18 (group data's "
        "supabase_majors: add it and its images, `make images-add`, deploy)\n")
    assert not fake.ran("docker pull") and not fake.ran(DB_DUMP) and not restic_calls(fake, "backup")


def test_a_missing_pg_dump_image_is_pulled(s, fake, capsys):
    fake.on("docker image inspect postgres:15", rc=1)
    assert backup(s, fake) == 0
    assert fake.index("docker pull -q postgres:15") < fake.index(DB_DUMP)


def test_the_restores_image_for_the_dumped_major_is_pulled_while_the_dump_runs(s, fake, capsys):
    """The image a restore checks the dump in (scratch_images, of the major the dump was made of) is on
    the host after a backup: a restore starts it without the registry. Pulled beside the dump."""
    dumping, pulling, met = threading.Event(), threading.Event(), {}

    def dump(argv, kw):  # each waits (5 s at most) for the other to have begun: both see it only at once
        dumping.set()
        met["dump saw the pull"] = pulling.wait(5)
        return session(argv, kw, SUPA_DUMP, SUPA_COUNTS)

    def pull(argv, kw):
        pulling.set()
        met["pull saw the dump"] = dumping.wait(5)

    fake.on("docker image inspect pgvector/pgvector:pg15", rc=1)
    fake.on("docker pull -q pgvector/pgvector:pg15", call=pull)
    fake.on(DB_DUMP, call=dump)
    assert backup(s, fake) == 0
    assert met == {"dump saw the pull": True, "pull saw the dump": True}
    assert "backup ok: snapshot" in capsys.readouterr().out
    assert "supabase: the restore's image for PostgreSQL 15 pulled" in log_of(s)


def test_a_restore_image_that_cannot_be_pulled_fails_no_backup(s, fake, capsys):
    fake.on("docker image inspect pgvector/pgvector:pg15", rc=1)
    fake.on("docker pull -q pgvector/pgvector:pg15", rc=1, stderr="Error response from daemon: manifest unknown\n")
    assert backup(s, fake) == 0
    assert "backup ok: snapshot" in capsys.readouterr().out
    assert ("note: supabase: no restore image for PostgreSQL 15 on this host (pgvector/pgvector:pg15 could not be "
            "pulled): a restore will pull it") in log_of(s)


@pytest.mark.parametrize("trouble,why", [
    (subprocess.TimeoutExpired(["docker", "pull"], backup_mod.PULL_TIMEOUT), "not pulled within 300 s"),
    (OSError(28, "No space left on device"), "[Errno 28] No space left on device")])
def test_whatever_the_pull_meets_the_backup_goes_on_and_the_log_says_it(s, fake, capsys, trouble, why):
    def pull(argv, kw):
        raise trouble

    fake.on("docker image inspect pgvector/pgvector:pg15", rc=1)
    fake.on("docker pull -q pgvector/pgvector:pg15", call=pull)
    assert backup(s, fake) == 0
    assert "backup ok: snapshot" in capsys.readouterr().out
    assert (f"note: supabase: no restore image for PostgreSQL 15 on this host ({why}): a restore will pull it"
            in log_of(s))


def test_a_failed_dump_is_reported_without_waiting_for_the_pull(s, fake, capsys):
    release, ended = threading.Event(), threading.Event()

    def pull(argv, kw):
        release.wait(10)
        ended.set()

    fake.on("docker image inspect pgvector/pgvector:pg15", rc=1)
    fake.on("docker pull -q pgvector/pgvector:pg15", call=pull)
    fake.on(DB_DUMP, call=lambda argv, kw: session(argv, kw, b"", "", rc=1))
    try:
        assert backup(s, fake) == 1
        assert not ended.is_set()  # reported while the pull still ran
        assert "FAILED supabase dump: pg_dump of supabase exited 1" in capsys.readouterr().err
    finally:
        release.set()


def test_a_restore_image_already_there_is_not_pulled(s, fake, capsys):
    assert backup(s, fake) == 0
    assert fake.ran("docker image inspect pgvector/pgvector:pg15") and not fake.ran("docker pull")


@pytest.mark.parametrize("sources", [[N8N_SOURCE], [N8N_SOURCE, dict(SUPA_SOURCE, url="")]])
def test_without_a_database_source_the_backup_says_so(tmp_path, fake, capsys, sources):
    s = make_settings(tmp_path, sources=sources)
    assert backup(s, fake) == 0
    out = capsys.readouterr().out
    assert "(n8n: 4 workflows, 1 credentials; no database sources)" in out
    assert not [c for c in fake.calls if c.argv[:2] == ["docker", "run"]]
    assert ("supabase: no URL: not backed up" in log_of(s)) == (len(sources) == 2)
    m = manifest_of(s)
    assert list(m["sources"]) == ["n8n"] and not any(k.startswith("supabase/") for k in m["files"])


# --- several database sources, beside the n8n part ------------------------------------------------
def test_two_database_sources_are_both_dumped_listed_and_summed_up(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, SUPA_SOURCE, ANALYTICS_SOURCE])
    assert backup(s, fake) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert (f"backup ok: snapshot 0123abcd (n8n: 4 workflows, 1 credentials; supabase: 2 tables, 3020 rows in public; "
            f"analytics: 3 tables, 2531 rows in public, reporting) off-host: {VAULT} {BUCKET} in 0s\n") == out
    m = manifest_of(s)
    assert list(m["sources"]) == ["n8n", "supabase", "analytics"]  # the settings' order
    assert m["sources"]["analytics"] == {
        "kind": "postgres", "server_version_num": 160004, "schemas": ["public", "reporting"],
        "row_counts": {"public.visits": 2500, "reporting.daily": 30, "reporting.monthly": 1},
        "dump": "analytics/analytics.dump"}
    assert m["sources"]["supabase"]["dump"] == "supabase/supabase.dump"
    assert m["files"]["analytics/analytics.dump"]["sha256"] == hashlib.sha256(ANALYTICS_DUMP).hexdigest()
    assert m["files"]["supabase/supabase.dump"]["sha256"] == hashlib.sha256(SUPA_DUMP).hexdigest()
    assert {"analytics/row-counts.txt", "analytics/server-version-num.txt"} <= set(m["files"])
    # each server its own pg_dump (15, 16), each source its schemas and its counts over them
    version, dump = db_calls(fake, ANALYTICS_URL)
    assert "postgres:16" in dump.argv and "pg_dump -Fc --snapshot=\"$MOTTIVME_SNAPSHOT\" -Z0 --schema=public " \
        "--schema=reporting -f /out/analytics.dump" in dump.kw["input"]
    counting = stack.counts_sql(["public", "reporting"])
    assert counting != stack.COUNTS_SQL and f"==counts\n{counting};" in dump.kw["input"]
    assert "table_schema in ('public', 'reporting')" in counting
    assert [c.kw["env"]["PGUSER"] for c in db_calls(fake, SUPA_URL)] == ["postgres"] * 2
    assert len([c for c in fake.calls if c.argv[:2] == ["docker", "run"]]) == 4
    assert_secrets_kept(s, fake, out + err)


def test_a_failing_database_source_is_named_and_no_snapshot_is_made(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, SUPA_SOURCE, ANALYTICS_SOURCE])
    def failing(argv, kw):
        if "--schema=reporting" not in kw["input"]:
            return session(argv, kw, SUPA_DUMP, SUPA_COUNTS)
        rc, out, _ = session(argv, kw, b"", "", rc=1)  # pg_dump's complaint: psql's stderr, into the log
        return rc, out, "pg_dump: error: permission denied for schema reporting\n"

    fake.on(DB_DUMP, call=failing)
    assert backup(s, fake) == 1
    out, err = capsys.readouterr()
    assert err == f"n8n-backup: FAILED analytics dump: pg_dump of analytics exited 1 (details in {s.backup.log})\n"
    assert (out + err).count("FAILED") == 1 and "backup ok" not in out
    assert "permission denied for schema reporting" in log_of(s)
    assert not restic_calls(fake, "backup") and not restic_calls(fake, "init")
    (hook,) = hook_calls(fake, FAIL_HOOK)
    assert posted(hook).startswith(f"n8n-backup on {HOST} failed: analytics dump: ")
    assert not os.path.exists(stage(s))
    assert_secrets_kept(s, fake, out + err)


def test_no_pg_dump_for_a_second_sources_major_names_that_source(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, SUPA_SOURCE, ANALYTICS_SOURCE])
    fake.on("docker image inspect postgres:16", rc=1)
    fake.on("docker pull -q postgres:16", rc=1)
    assert backup(s, fake) == 1
    assert capsys.readouterr().err == ("n8n-backup: FAILED analytics dump: no pg_dump for PostgreSQL 16: "
                                       "image postgres:16 not available\n")
    assert not restic_calls(fake, "backup")


def test_database_dumps_run_while_the_n8n_part_runs(s, fake, capsys):
    """The n8n pg_dump and Supabase's pg_dump each wait (5 s at most) for the other to have begun:
    both see it only when they run at the same time; one after the other, the first waits in vain."""
    n8n_began, supa_began, met = threading.Event(), threading.Event(), {}

    def n8n_dump(argv, kw):
        n8n_began.set()
        met["n8n saw supabase"] = supa_began.wait(timeout=5)
        kw["stdout"].write(N8N_DUMP)

    def supa_dump(argv, kw):
        supa_began.set()
        met["supabase saw n8n"] = n8n_began.wait(timeout=5)
        return session(argv, kw, SUPA_DUMP, SUPA_COUNTS)

    fake.on("pg_dump -U n8n -Fc -Z0 n8n", call=n8n_dump)
    fake.on(DB_DUMP, call=supa_dump)
    t0 = time.monotonic()
    assert backup(s, fake) == 0
    assert met == {"n8n saw supabase": True, "supabase saw n8n": True}, "the dumps ran one after the other"
    assert time.monotonic() - t0 < 5
    m = manifest_of(s)
    assert m["files"]["n8n/n8n-db.dump"]["sha256"] == hashlib.sha256(N8N_DUMP).hexdigest()
    assert m["files"]["supabase/supabase.dump"]["sha256"] == hashlib.sha256(SUPA_DUMP).hexdigest()


@pytest.mark.parametrize("how", ["fails", "interrupted"])
def test_an_n8n_failure_waits_for_the_running_dump_and_starts_nothing_after_it(s, fake, capsys, how):
    """The n8n part fails (or Ctrl-C) while Supabase's pg_dump runs: the program ends only once that
    dump has ended, and the line names the n8n part."""
    dump_began, n8n_failed, dump_ended = threading.Event(), threading.Event(), threading.Event()
    threads = threading.active_count()

    def supa_dump(argv, kw):
        dump_began.set()
        assert n8n_failed.wait(timeout=5)
        time.sleep(0.2)  # still dumping while the n8n part's failure goes up
        dump_ended.set()
        return session(argv, kw, SUPA_DUMP, SUPA_COUNTS)

    def n8n_dump(argv, kw):
        assert dump_began.wait(timeout=5), "Supabase's dump did not run beside the n8n part"
        n8n_failed.set()
        if how == "interrupted":
            raise KeyboardInterrupt
        return 1, "", "pg_dump: error: connection refused\n"

    fake.on(DB_DUMP, call=supa_dump)
    fake.on("pg_dump -U n8n -Fc -Z0 n8n", call=n8n_dump)
    assert backup(s, fake) == (130 if how == "interrupted" else 1)
    assert dump_ended.is_set(), "the program ended while a dump still ran"
    err = capsys.readouterr().err
    assert err.startswith("n8n-backup: FAILED n8n database dump: ") and err.count("FAILED") == 1
    if how == "interrupted":
        assert err == "n8n-backup: FAILED n8n database dump: interrupted\n"
    else:
        assert "exited 1 (details in" in err
    supa = db_calls(fake, SUPA_URL)
    assert len(supa) == 2 and DB_DUMP in supa[-1].cmd  # version, dump (its counts in the same session)
    assert not restic_calls(fake, "backup") and not os.path.exists(stage(s))
    assert threading.active_count() == threads


def test_ctrl_c_while_only_a_dump_runs_names_that_dump(s, fake, capsys):
    def interrupt(argv, kw):
        raise KeyboardInterrupt

    fake.on(DB_DUMP, call=interrupt)
    assert backup(s, fake) == 130
    assert capsys.readouterr().err == "n8n-backup: FAILED supabase dump: interrupted\n"
    assert not restic_calls(fake, "backup")


@pytest.mark.parametrize("sources,message", [
    ([SUPA_SOURCE], "the backup sources have no n8n source"),
    ([N8N_SOURCE, SUPA_SOURCE, dict(SUPA_SOURCE, url=ANALYTICS_URL)], "two backup sources are named supabase"),
    ([N8N_SOURCE, dict(SUPA_SOURCE, kind="mysql")], "backup source supabase: kind 'mysql' is not one of n8n, postgres"),
    ([N8N_SOURCE, dict(SUPA_SOURCE, name="../etc")], "backup source '../etc': a name is lower-case letters"),
    ([N8N_SOURCE, dict(SUPA_SOURCE, name="config")], "backup source 'config': a name is lower-case letters"),
    ([{"name": "main", "kind": "n8n"}], "backup source main: the source of kind n8n is named n8n"),
    ([N8N_SOURCE, dict(SUPA_SOURCE, schemas=["public; drop"])], "backup source supabase: schemas ['public; drop']"),
    ([N8N_SOURCE, dict(SUPA_SOURCE, schemas=[])], "backup source supabase: schemas []"),
])
def test_bad_backup_sources_fail_before_any_dump(tmp_path, fake, capsys, sources, message):
    s = make_settings(tmp_path, sources=sources)
    assert backup(s, fake) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"n8n-backup: FAILED settings: {message}"), err
    assert not fake.ran("pg_dump") and not restic_calls(fake, "backup")
    assert hook_calls(fake, FAIL_HOOK)
    assert SUPA_PASSWORD not in err and ANALYTICS_PASSWORD not in err


def test_counts_sql_names_tables_by_schema_unless_the_one_schema_is_public():
    assert stack.counts_sql() == stack.counts_sql(["public"]) == stack.COUNTS_SQL
    sql = stack.counts_sql(("reporting",))
    assert sql.startswith("select table_schema || '.' || table_name,")
    assert "table_schema in ('reporting')" in sql
    with pytest.raises(ValueError):
        stack.counts_sql(["x') or true --"])


def test_ctrl_c_is_one_interrupted_line_exit_130_and_the_staging_goes(s, fake, capsys):
    def interrupt(argv, kw):
        raise KeyboardInterrupt

    fake.on("restic backup --json", call=interrupt)
    assert backup(s, fake) == 130
    out, err = capsys.readouterr()
    assert err == "n8n-backup: FAILED local repository: interrupted\n" and "FAILED" not in out
    assert posted(hook_calls(fake, FAIL_HOOK)[0]) == f"n8n-backup on {HOST} failed: local repository: interrupted"
    assert not os.path.exists(stage(s))


def test_a_hook_that_does_not_answer_is_logged_not_fatal(s, fake, capsys):
    fake.on(lambda c: c.startswith("curl") and "--cacert" not in c, rc=28, stderr=f"curl: (28) timeout on {OK_HOOK}\n")
    assert backup(s, fake) == 0
    assert "backup ok" in capsys.readouterr().out
    assert "success hook (heartbeat) did not answer" in log_of(s)
    assert "ok-TOKEN-1234" not in log_of(s)


# --- the lock --------------------------------------------------------------------------------
def test_a_second_backup_refuses_with_75_and_leaves_the_first_ones_staging(s, fake, capsys):
    os.makedirs(os.path.dirname(s.backup.lock))
    os.makedirs(stage(s))
    marker = os.path.join(stage(s), "being-written")
    open(marker, "w").close()
    fd = os.open(s.backup.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert backup(s, fake) == 75
    finally:
        os.close(fd)
    out, err = capsys.readouterr()
    assert err == f"n8n-backup: FAILED lock: another n8n-backup is running (lock {s.backup.lock})\n"
    assert "FAILED" not in out
    assert os.path.exists(marker)
    assert [c.argv[0] for c in fake.calls] == ["curl"]  # the failure hook, nothing else
    assert hook_calls(fake, FAIL_HOOK)


def test_the_lock_is_released_after_a_run(s, fake, capsys):
    assert backup(s, fake) == 0
    assert backup(s, fake) == 0
    assert len(restic_calls(fake, "backup")) == 2


# --- off-host copies -------------------------------------------------------------------------
def test_one_off_host_failure_still_copies_to_the_other_and_keeps_the_local_snapshot(s, fake, capsys):
    fake.on(lambda c: "--cacert" in c and " copy " in c, rc=1,
            stderr="Fatal: unable to open repository at rest:https://n8n-test-1:***@vault:8000/n8n-test-1/: "
                   "dial tcp: connect: connection refused\n")
    assert backup(s, fake) == 1
    out, err = capsys.readouterr()
    msg = (f"done: snapshot 0123abcd kept locally, but the off-host copy failed for {VAULT} "
           f"(details in {s.backup.log})")
    assert err == f"n8n-backup: FAILED {msg}\n"
    assert (out + err).count("FAILED") == 1 and "backup ok" not in out
    assert restic_calls(fake, "copy", SNAP, repo=BUCKET) and restic_calls(fake, "forget", repo=BUCKET)
    assert not restic_calls(fake, "forget", repo=VAULT)
    assert restic_calls(fake, "forget", repo=s.backup.local_repository)  # the local snapshot stays
    assert os.path.exists(os.path.join(s.backup.dir, "last-manifest.json"))
    assert not os.path.exists(os.path.join(s.backup.dir, "last-success"))
    (hook,) = hook_calls(fake, FAIL_HOOK)
    # the alert names no URL (a URL may carry a password: every one is replaced)
    assert posted(hook) == f"n8n-backup on {HOST} failed: {msg.replace(VAULT, 'rest:<url>')}"
    assert not hook_calls(fake, OK_HOOK)
    log = log_of(s)
    assert f"off-host copy to {VAULT} failed: `restic copy {SNAP}` exited 1" in log and "connection refused" in log
    assert not os.path.exists(stage(s))


def test_a_missing_off_host_repository_is_initialised(s, fake, capsys):
    def cat_config(argv, kw):
        if kw["env"]["RESTIC_REPOSITORY"] == BUCKET:
            return 1, "", NO_REPO
        return None

    fake.on(lambda c: "cat config --no-lock" in c, call=cat_config)
    assert backup(s, fake) == 0
    (init,) = restic_calls(fake, "init", repo=BUCKET)
    assert init.argv[1:] == ["init", "--copy-chunker-params"]
    assert init.kw["env"]["RESTIC_FROM_REPOSITORY"] == s.backup.local_repository
    assert fake.calls.index(init) < fake.calls.index(restic_calls(fake, "copy", repo=BUCKET)[0])
    assert not restic_calls(fake, "init", repo=VAULT) and not restic_calls(fake, "init", repo=s.backup.local_repository)


def test_a_vault_that_does_not_answer_fails_its_copy_at_once_and_the_bucket_still_gets_it(s, fake, capsys):
    """restic retries a REST server it cannot reach for 15 minutes; one quick probe first (curl,
    --max-time 10) fails the vault's copy at once, naming why, without running restic there."""
    fake.on(lambda c: c.startswith("curl") and "--cacert" in c, rc=7,
            stderr="curl: (7) Failed to connect to vault.example.test port 8000: Connection refused\n")
    assert backup(s, fake) == 1
    assert f"the off-host copy failed for {VAULT}" in capsys.readouterr().err
    assert not restic_calls(fake, repo=VAULT) and restic_calls(fake, "copy", SNAP, repo=BUCKET)
    probes = [c for c in fake.calls if c.argv[0] == "curl" and "--cacert" in c.argv]
    assert len(probes) == 1 and probes[0].argv[-1] == "https://vault.example.test:8000/"
    assert "--max-time" in probes[0].argv and VAULT_PASSWORD not in probes[0].cmd
    assert "the vault does not answer: curl: (7) Failed to connect to vault.example.test port 8000" in log_of(s)


def test_a_vault_certificate_this_server_does_not_trust_fails_at_once_and_names_the_fix(s, fake, capsys):
    fake.on(lambda c: c.startswith("curl") and "--cacert" in c, rc=60,
            stderr="curl: (60) SSL certificate problem: self-signed certificate\n")
    assert backup(s, fake) == 1
    assert not restic_calls(fake, repo=VAULT) and restic_calls(fake, "copy", SNAP, repo=BUCKET)
    assert ("curl: (60) SSL certificate problem: self-signed certificate - the vault's certificate is not the one "
            "this server trusts: deploy again") in log_of(s)


def test_an_off_host_repository_that_does_not_open_is_not_initialised(s, fake, capsys):
    def cat_config(argv, kw):
        if kw["env"]["RESTIC_REPOSITORY"] == VAULT_FOR_RESTIC:
            return 1, "", "Fatal: unable to open repository at rest:https://x: tls: failed to verify certificate\n"
        return None

    fake.on(lambda c: "cat config --no-lock" in c, call=cat_config)
    assert backup(s, fake) == 1
    assert f"the off-host copy failed for {VAULT} (details" in capsys.readouterr().err
    assert not restic_calls(fake, "init") and not restic_calls(fake, "copy", repo=VAULT)
    assert restic_calls(fake, "copy", repo=BUCKET)
    assert "tls: failed to verify certificate" in log_of(s)


def test_no_offsite_skips_every_copy(s, fake, capsys):
    assert backup(s, fake, "--no-offsite") == 0
    assert "off-host: none in 0s" in capsys.readouterr().out
    assert not restic_calls(fake, "copy") and not restic_calls(fake, "cat", repo=VAULT)
    assert not restic_calls(fake, "cat", repo=BUCKET)
    assert "no off-host repository configured" not in log_of(s)


def test_no_off_host_repository_configured_is_logged(tmp_path, fake, capsys):
    s = make_settings(tmp_path, offsite_repositories=[])
    assert backup(s, fake) == 0
    assert "off-host: none" in capsys.readouterr().out
    assert "no off-host repository configured (BACKUP_VAULT / BACKUP_S3_REPOSITORY)" in log_of(s)


# --- the weekly check ------------------------------------------------------------------------
@pytest.mark.parametrize("weekday,args,checked", [(7, [], True), (3, ["--check"], True), (3, [], False),
                                                  (7, ["--no-offsite"], True)])
def test_restic_check_on_the_check_day_or_when_asked(s, fake, capsys, monkeypatch, weekday, args, checked):
    monkeypatch.setattr(common, "weekday", lambda: weekday)
    assert backup(s, fake, *args) == 0
    repos = [s.backup.local_repository] + ([] if "--no-offsite" in args else [VAULT, BUCKET])
    for url in repos:
        calls = restic_calls(fake, "check", repo=url)
        assert [c.argv[-1] for c in calls] == (["--read-data-subset=10%"] if checked else [])


CHECK_URL = "https://status.test/ping/tok-secret/check-n1"


def test_the_weekly_check_reports_to_its_own_heartbeat_and_a_daily_backup_does_not(s, fake, capsys, monkeypatch):
    import dataclasses

    s = dataclasses.replace(s, reports=settings.Reports(jobs={"check": CHECK_URL}))
    sent = lambda: [c for c in fake.calls if c.argv[0] == "curl" and CHECK_URL in (c.kw.get("input") or "")]  # noqa: E731
    assert backup(s, fake) == 0 and sent() == []  # not the check day
    monkeypatch.setattr(common, "weekday", lambda: 7)
    assert backup(s, fake) == 0
    [ok] = sent()
    assert ok.kw["input"] == f'url = "{CHECK_URL}"\n' and posted(ok) is None
    fake.calls.clear()
    fake.on(lambda c: c.startswith("restic") and " check " in f" {c} ", rc=1, stderr="Fatal: pack 1a2b damaged\n")
    assert backup(s, fake) != 0
    [bad] = sent()
    assert bad.kw["input"].startswith(f'url = "{CHECK_URL}/fail"\n')
    assert posted(bad).startswith("n8n-backup --check failed: check (local)")


def test_a_check_day_backup_failing_after_its_checks_still_reports_the_check_done(s, fake, capsys, monkeypatch):
    import dataclasses

    s = dataclasses.replace(s, reports=settings.Reports(jobs={"check": CHECK_URL}))
    monkeypatch.setattr(common, "weekday", lambda: 7)
    # the vault's copy fails (no check happens there); the local and the bucket's checks pass
    fake.on(lambda c: "--cacert" in c and " copy " in c, rc=1, stderr="Fatal: dial tcp vault:8000: refused\n")
    assert backup(s, fake) == 1
    [ok] = hook_calls(fake, CHECK_URL)
    assert posted(ok) is None  # the checks that ran all passed: no week of false warnings
    assert hook_calls(fake, FAIL_HOOK)  # the backup itself still failed, and says so


def test_an_overdue_check_runs_with_the_next_daily_backup(s, fake, capsys):
    last = os.path.join(s.backup.dir, "last-check")
    os.makedirs(s.backup.dir, exist_ok=True)
    with open(last, "w") as f:
        f.write("2020-01-05T03:17:00+00:00\n")  # a check day whose backup failed, long ago
    assert backup(s, fake) == 0  # weekday 3, not the check day
    assert restic_calls(fake, "check", repo=s.backup.local_repository)
    fake.calls.clear()
    assert backup(s, fake) == 0  # the check is fresh again: daily backups do not check
    assert not restic_calls(fake, "check", repo=s.backup.local_repository)


def test_staging_left_by_a_killed_run_is_replaced(s, fake, capsys):
    os.makedirs(os.path.join(stage(s), "n8n"))
    with open(os.path.join(stage(s), "n8n", "stale.dump"), "w") as f:
        f.write("half")
    assert backup(s, fake) == 0
    with open(os.path.join(s.backup.dir, "last-manifest.json")) as f:
        assert "n8n/stale.dump" not in json.load(f)["files"]


def test_output_lines_match_what_the_runbooks_read(s, fake, capsys):
    assert backup(s, fake, "--tag", "manual") == 0
    assert re.search(r"backup ok: snapshot ([0-9a-f]{8})", capsys.readouterr().out)


def test_a_backup_that_would_not_fit_fails_before_it_starts(s, fake, capsys, monkeypatch):
    """The last backup's files (its manifest) need that much room again in the staging directory:
    with less free, nothing is dumped, the line names both numbers and what to do, and the failure
    hook is told."""
    import json as _json

    os.makedirs(s.backup.dir, exist_ok=True)
    with open(os.path.join(s.backup.dir, "last-manifest.json"), "w") as f:
        _json.dump({"files": {"n8n/n8n-db.dump": {"size": 3_000_000_000}, "supabase/supabase.dump": {"size": 1}}}, f)
    with open(os.path.join(s.backup.dir, "last-dump-compression"), "w") as f:
        f.write("0\n")  # the last backup's dumps were plain, as this one's
    real = os.statvfs

    class Small:
        f_bavail, f_frsize = 1_000, 1_000_000  # 1 GB free

    monkeypatch.setattr(os, "statvfs", lambda p: Small() if os.path.realpath(p).startswith(os.path.realpath(s.backup.dir)) else real(p))
    assert backup(s, fake) == 1
    err = capsys.readouterr().err
    assert err.count("FAILED") == 1 and "not enough free space" in err
    assert "3000 MB" in err and "1000 MB free" in err and s.backup.dir in err
    assert not fake.ran("pg_dump") and not restic_calls(fake, "backup")
    assert hook_calls(fake, FAIL_HOOK)


def test_without_an_earlier_manifest_the_space_check_does_not_stop_a_first_backup(s, fake, capsys):
    assert not os.path.exists(os.path.join(s.backup.dir, "last-manifest.json"))
    assert backup(s, fake) == 0


def test_on_a_terminal_each_phase_is_reported_as_it_ends_with_size_and_time(s, fake, capsys, monkeypatch):
    """A person watching (a runbook, by hand) sees progress on stderr; the log always has it;
    stdout keeps the one result line that cron and the calling programs read."""
    monkeypatch.setattr(common, "on_terminal", lambda: True)
    fake.on("restic backup --json", stdout=summary_json())
    assert backup(s, fake) == 0
    out, err = capsys.readouterr()
    assert out.startswith("backup ok: snapshot 0123abcd") and out.count("\n") == 1
    lines = err.splitlines()
    assert [re.sub(r"\(.*\)$", "", x).strip() for x in lines if not x.startswith("n8n-backup: supabase")] == [
        "n8n-backup: n8n database dumped", "n8n-backup: n8n workflows and credentials exported",
        "n8n-backup: stored in the local repository", f"n8n-backup: copied off-host to {VAULT}",
        f"n8n-backup: copied off-host to {BUCKET}"]
    assert re.fullmatch(r"n8n-backup: n8n database dumped \(\d+\.\d MB, \d+\.\d s\)", lines[[
        i for i, x in enumerate(lines) if "n8n database" in x][0]])
    assert any(re.fullmatch(r"n8n-backup: supabase dumped \(public\) \(\d+\.\d MB, \d+\.\d s\)", x) for x in lines)
    with open(s.backup.log) as f:
        log = f.read()
    assert "stored in the local repository (" in log and f"copied off-host to {BUCKET} (" in log


# --- n8n's files (files.py) ---------------------------------------------------------------------
def test_n8ns_files_are_archived_from_each_volume_and_listed_in_the_manifest(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[{**N8N_SOURCE, "volumes": ["n8n_data", "n8n_files"],
                                          "exclude": ["n8nEventLog*.log"]}, SUPA_SOURCE])
    for volume, content in (("n8n_data", {"binaryData/upload": b"x" * 3000, "n8nEventLog.log": b"log"}),
                            ("n8n_files", {"out/report.pdf": b"%PDF-1.7"})):
        d = tmp_path / "volumes" / f"n8n_{volume}" / "_data"
        for rel, data in content.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(data)
        fake.on(f"docker volume inspect -f {{{{.Mountpoint}}}} n8n_{volume}", stdout=f"{d}\n")
    fake.on(lambda c: c.startswith("tar "), call=run_for_real)
    assert backup(s, fake) == 0
    out = capsys.readouterr().out
    assert out.startswith("backup ok: snapshot 0123abcd (n8n: 4 workflows, 1 credentials, 2 files (3.0 kB); "
                          "supabase: 2 tables, 3020 rows in public)")
    m = manifest_of(s)
    assert m["sources"]["n8n"]["files"] == {
        "n8n_data": {"archive": "n8n/files/n8n_data.tar", "entries": 2, "files": 1, "bytes": 3000},
        "n8n_files": {"archive": "n8n/files/n8n_files.tar", "entries": 2, "files": 1, "bytes": 8}}
    assert {"n8n/files/n8n_data.tar", "n8n/files/n8n_files.tar"} <= set(m["files"])
    # archived while the n8n part runs, before the snapshot, from the volume's own directory
    (tar,) = [c for c in fake.calls if c.argv[0] == "tar" and "n8n_data.tar" in c.cmd]
    assert "--exclude=n8nEventLog*.log" in tar.argv and "--numeric-owner" in tar.argv
    assert fake.index("export:workflow") < fake.index("n8n_data.tar") < fake.index("restic backup")
    assert "n8n files archived (n8n_data, n8n_files)" in log_of(s)


def test_a_volume_the_stack_lacks_fails_the_backup_with_the_fix(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[{**N8N_SOURCE, "volumes": ["n8n_files"]}])
    fake.on("docker volume inspect", rc=1, stderr="Error: No such volume: n8n_n8n_files")
    assert backup(s, fake) == 1
    assert ("n8n-backup: FAILED n8n files: the stack has no volume n8n_files (n8n_n8n_files): run `pyinfra inventory.py "
            "deploy.py`") in capsys.readouterr().err
    assert not restic_calls(fake, "backup")


# --- schemas "all": the whole database as Supabase has it ------------------------------------------
SHAPE = ("extension pgcrypto extensions\nextension vector extensions\nrole anon\nrole authenticated\nrole postgres\n"
         "role service_role\nschema auth\nschema crm\nschema extensions\nschema graphql\nschema public\n"
         "schema storage\n")
ALL_COUNTS = "auth.users 30\ncrm.leads 60\npublic.agent_metrics 3000\nstorage.objects 30\n"


def all_schemas(fake, shape=SHAPE):
    fake.on(DB_DUMP, call=lambda argv, kw: session(argv, kw, SUPA_DUMP, ALL_COUNTS, shape))
    return dict(SUPA_SOURCE, schemas="all", exclude_schemas=["extensions", "graphql"],
                exclude_tables=["auth.schema_migrations"], managed_schemas=["auth", "storage", "vault"])


def test_every_schema_but_the_excluded_is_dumped_with_its_roles_and_extensions(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, all_schemas(fake)])
    assert backup(s, fake) == 0
    out = capsys.readouterr().out
    # the summary lists every schema the snapshot holds
    assert "supabase: 4 tables, 3120 rows in auth, crm, public, storage)" in out
    _, session_call = db_calls(fake, SUPA_URL)
    script = session_call.kw["input"]
    # one snapshot: the shape, then the dump, then the counts
    assert script.index("from pg_namespace") < script.index("pg_dump") < script.index("query_to_xml")
    # the whole database (its extensions, grants, policies) less the excluded schemas
    assert ('pg_dump -Fc --snapshot="$MOTTIVME_SNAPSHOT" -Z0 --exclude-schema=extensions --exclude-schema=graphql '
            "--exclude-table=auth.schema_migrations -f /out/supabase.dump") in script
    assert ("table_schema !~ '^pg_' and table_schema <> 'information_schema' and table_schema <> 'extensions' and "
            "table_schema <> 'graphql'") in script
    assert "table_schema || '.' || table_name <> 'auth.schema_migrations'" in script
    sb = manifest_of(s)["sources"]["supabase"]
    assert sb["schemas"] == ["auth", "crm", "public", "storage"]
    assert sb["roles"] == ["anon", "authenticated", "postgres", "service_role"]
    assert sb["extensions"] == {"pgcrypto": "extensions", "vector": "extensions"}
    assert sb["managed_schemas"] == ["auth", "storage"]  # vault: not in this database
    assert sb["exclude_tables"] == ["auth.schema_migrations"]  # the restore's counts leave it out too
    assert sb["row_counts"]["crm.leads"] == 60


def test_a_schema_whose_name_is_not_plain_stops_the_backup_naming_the_fix(tmp_path, fake, capsys):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, all_schemas(fake, SHAPE + "schema Vendas\n")])
    assert backup(s, fake) == 1
    err = capsys.readouterr().err
    assert ("FAILED supabase dump: supabase has the schema 'Vendas', not a plain lower-case name: add it to its "
            "exclude_schemas (group_data backup_sources) or rename it") in err
    assert not fake.ran("restic backup")


@pytest.mark.parametrize("source, message", [
    (dict(SUPA_SOURCE, schemas="everything"), "schemas 'everything'"),
    (dict(SUPA_SOURCE, schemas="all", exclude_schemas=["Bad"]), "exclude_tables: schema.table): Bad"),
])
def test_bad_schema_settings_fail_before_any_dump(tmp_path, fake, capsys, source, message):
    s = make_settings(tmp_path, sources=[N8N_SOURCE, source])
    assert backup(s, fake) == 1
    assert message in capsys.readouterr().err
    assert not fake.ran("pg_dump")


def test_plain_dumps_after_compressed_ones_need_five_times_their_room(s, fake, capsys, monkeypatch):
    """The first backup with dump_compression 0 after compressed ones (no level recorded: pg_dump's
    default, 6): the last manifest's dumps are counted 5 times over; a good backup records its level."""
    import json as _json

    os.makedirs(s.backup.dir, exist_ok=True)
    with open(os.path.join(s.backup.dir, "last-manifest.json"), "w") as f:
        _json.dump({"files": {"supabase/supabase.dump": {"size": 300_000_000}, "n8n/config/.env": {"size": 1}}}, f)
    real = os.statvfs

    class Small:
        f_bavail, f_frsize = 1_000, 1_000_000  # 1 GB free: room for the 300 MB, not for 5 times it

    monkeypatch.setattr(os, "statvfs", lambda p: Small() if os.path.realpath(p).startswith(os.path.realpath(s.backup.dir)) else real(p))
    assert backup(s, fake) == 1
    assert "the last one was 1500 MB, 1000 MB free" in capsys.readouterr().err
    monkeypatch.setattr(os, "statvfs", real)
    fake.on("restic backup --json", stdout=summary_json())
    assert backup(s, fake) == 0, capsys.readouterr()
    with open(os.path.join(s.backup.dir, "last-dump-compression")) as f:
        assert f.read() == "0\n"
