"""n8n-restore (mottivme_host/restore.py) driven by the recording fake: snapshot selection, the checks
that change nothing, the live swap and its undo, the drill, the database sources (Supabase, ...):
scratch checks, named targets, --source, and snapshots of manifest format 1. No docker, no restic."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import tarfile
import threading
from pathlib import Path

import pytest

from mottivme_host import cli, common, settings, stack
from mottivme_host import files as files_mod
from mottivme_host import restore as restore_mod
from tests.helpers import Call, FakeRunner, libpq_url, run_for_real
from tests.helpers import run_runbook as run_a_runbook

KEY = "0123456789abcdef" * 4
LOCAL = "/var/backups/n8n/restic"
VAULT = "rest:https://tst-1@vault:8000/tst-1/"  # as logs show it; restic gets it with the password
VAULT_PASSWORD = "vault-Acc0unt-pw"
HOST = "tst-1"  # the name this server's snapshots carry
BUCKET = "s3:http://bucket.example.test/n8n"
SECRET_URL = "postgresql://postgres:s3cr3t-pass@db.supabase.example.test:5432/postgres"
# the phases of a database source's check in a scratch PostgreSQL, as the table prints them
SCRATCH_LAPS = ("supabase: start a scratch PostgreSQL", "supabase: roles, extensions, the dump's list",
                f"supabase: pg_restore -j {restore_mod.JOBS}", "supabase: row counts", "supabase: scratch removed")


def snap(short: str, time: str, *tags: str) -> dict:
    return {"id": short + "0" * 56, "short_id": short, "time": time, "tags": ["n8n", *tags], "hostname": HOST}


SNAPS = [
    snap("aaaa1111", "2026-11-27T03:17:01.123456789-03:00", "scheduled"),
    snap("cccc3333", "2026-11-29T10:00:00.5-03:00", "pre-restore"),  # newest, but a safety snapshot
    snap("bbbb2222", "2026-11-28T03:17:01.5-03:00", "scheduled"),
]

N8N_COUNTS = {"credentials_entity": 2, "execution_entity": 40, "project": 1, "shared_credentials": 2,
              "shared_workflow": 3, "user": 1, "workflow_entity": 3}
SUPA_COUNTS = {"agent_metrics": 5, "conversation_history": 7}
ANALYTICS_COUNTS = {"public.visits": 2500, "reporting.daily": 30}
ANALYTICS_URL = "postgresql://reader:an4lytics-pw@analytics.example.test:5432/analytics"
SUPABASE = {"supabase": (["public"], SUPA_COUNTS, 150008)}
BOTH = {**SUPABASE, "analytics": (["public", "reporting"], ANALYTICS_COUNTS, 160004)}
COMPOSE_YML = "services:\n  n8n:\n    image: docker.n8n.io/n8nio/n8n:${N8N_VERSION}\n"


def counts_text(counts: dict) -> str:
    return "".join(f"{t} {n}\n" for t, n in sorted(counts.items()))


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch):
    f = FakeRunner()
    # the real one would make this very pytest process deaf to Ctrl-C; recorded in the command order
    monkeypatch.setattr(common, "ignore_interrupts", lambda: f.calls.append(Call(["<ignore interrupts>"])))
    return f


class Host:
    """A provisioned host on disk (stack dir, backup dir) and one snapshot tree restic 'restores'."""

    def __init__(self, tmp_path, fake: FakeRunner):
        self.tmp, self.fake = tmp_path, fake
        (tmp_path / "vault-password").write_text(VAULT_PASSWORD + "\n")
        self.stack = tmp_path / "opt" / "n8n"
        self.stack.mkdir(parents=True)
        (self.stack / "docker-compose.yml").write_text(COMPOSE_YML)
        (self.stack / ".env").write_text(f"POSTGRES_PASSWORD=pg\nN8N_ENCRYPTION_KEY={KEY}\nN8N_VERSION=2.41.1\n")
        self.backup_dir = tmp_path / "backups"
        self.log = tmp_path / "log" / "n8n-backup.log"
        self.snapshot_root = tmp_path / "snapshot-tree"  # what `restic restore` brings back
        self.staging = self.snapshot_root / "var" / "backups" / "n8n" / "staging"
        self.answers = {LOCAL: (0, json.dumps(SNAPS), "")}
        self.offsite = [VAULT]
        self.restored_into: list[str] = []
        self.write_snapshot()
        self.default_rules()

    def settings(self, sources=None, **over):
        backup = {"dir": str(self.backup_dir), "local_repository": LOCAL, "offsite_repositories": self.offsite,
                  "host": HOST, "vault_password_file": str(self.tmp / "vault-password"),
                  "vault_cert_file": "/etc/mottivme/vault-cert.pem",
                  "password_file": str(self.tmp / "restic-password"), "log": str(self.log),
                  "lock": str(self.tmp / "lock" / "n8n-backup.lock")}
        if sources is not None:
            backup["sources"] = sources
        data = {"stack_dir": str(self.stack), "n8n_host": "n8n.example.test", "services": ["n8n", "n8n-worker"],
                "backup": backup, "run_dir": str(self.stack.parent / "run")}
        data.update(over)
        return settings.from_dict(data)

    def write_snapshot(self, key: str = KEY, supabase: bool = True, n8n_counts: dict | None = None,
                       compose: str = COMPOSE_YML, fmt: int = 2, databases: dict | None = None,
                       volumes: dict | None = None):
        """A backup's staging tree and manifest. `databases`: name -> (schemas, row counts, server
        version number) of the postgres sources (default: Supabase, unless supabase=False).
        fmt=1: the manifest as the first version of the backup wrote it (n8n and supabase keys)."""
        shutil.rmtree(self.snapshot_root, ignore_errors=True)
        if databases is None:
            databases = SUPABASE if supabase else {}
        assert fmt == 2 or set(databases) <= {"supabase"}
        st = self.staging
        for d in ("n8n/export", "config/caddy", *databases):
            (st / d).mkdir(parents=True, exist_ok=True)
        n8n_counts = N8N_COUNTS if n8n_counts is None else n8n_counts
        (st / "n8n" / "n8n-db.dump").write_bytes(b"PGDMP n8n " * 1000)
        (st / "n8n" / "row-counts.txt").write_text(counts_text(n8n_counts))
        (st / "n8n" / "export" / "n8n-version.txt").write_text("2.41.1\n")
        (st / "config" / ".env").write_text(f"POSTGRES_PASSWORD=pg\nN8N_ENCRYPTION_KEY={key}\nN8N_VERSION=2.41.1\n")
        (st / "config" / "docker-compose.yml").write_text(compose)
        (st / "config" / "caddy" / "Caddyfile").write_text("n8n.example.test { reverse_proxy n8n:5678 }\n")
        for name in databases:
            (st / name / f"{name}.dump").write_bytes(f"PGDMP {name} ".encode() * 1000)
        held = {}
        for volume, content in (volumes or {}).items():  # n8n's files: an archive per volume (files.py)
            src = self.tmp / "volume-source" / volume
            shutil.rmtree(src, ignore_errors=True)
            for rel, data in content.items():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                (src / rel).write_bytes(data)
            archive = st / files_mod.archive_path(volume)
            archive.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive, "w") as t:
                t.add(src, arcname=".")
            held[volume] = {"archive": files_mod.archive_path(volume), **files_mod.contents(str(archive))}
        files = {}
        for root, _, names in os.walk(st):
            for n in sorted(names):
                p = os.path.join(root, n)
                data = open(p, "rb").read()
                files[os.path.relpath(p, st)] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        n8n = {"version": "2.41.1", "postgres_version": "17.2", "workflows": n8n_counts.get("workflow_entity", 0),
               "credentials": n8n_counts.get("credentials_entity", 0), "row_counts": n8n_counts}
        head = {"host": "n8n-1", "tags": ["n8n", "scheduled"], "started": "2026-11-28T03:17:00-03:00",
                "finished": "2026-11-28T03:17:40-03:00"}
        if fmt == 1:
            sb = databases.get("supabase")
            manifest = {"format": 1, **head, "n8n": n8n,
                        "supabase": {"server_version_num": sb[2], "row_counts": sb[1]} if sb else None,
                        "files": files}
        else:
            sources = {"n8n": {"kind": "n8n", **n8n, "dump": "n8n/n8n-db.dump", **({"files": held} if held else {})}}
            for name, (schemas, counts, num, *shape) in databases.items():  # shape: roles, extensions, ...
                sources[name] = {"kind": "postgres", "server_version_num": num, "schemas": schemas,
                                 "row_counts": counts, "dump": f"{name}/{name}.dump", **(shape[0] if shape else {})}
            manifest = {"format": 2, **head, "sources": sources, "files": files}
        (st / "manifest.json").write_text(json.dumps(manifest, indent=2))

    def default_rules(self):
        f = self.fake
        f.on("ps -q postgres", stdout="4f2c9a\n")
        f.on("restic", call=self._restic_snapshots)  # snapshots: per repository (RESTIC_REPOSITORY)
        f.on(lambda c: c.startswith("restic") and " restore " in c, call=self._restic_restore)
        f.on("query_to_xml", stdout=counts_text(N8N_COUNTS))  # the n8n database (restoring, drill)
        f.on(lambda c: "n8n-restore-scratch" in c and "query_to_xml" in c, stdout=counts_text(SUPA_COUNTS))
        f.on(lambda c: "n8n-restore-scratch" in c and "-analytics" in c and "query_to_xml" in c,
             stdout=counts_text(ANALYTICS_COUNTS))
        f.on("curl", stdout="200")
        # a database target's preparation (roles, extensions) answers with its schemas
        f.on(lambda c: c.endswith("psql -U postgres -qAtX -v ON_ERROR_STOP=1") or c.endswith("psql -qAtX -v ON_ERROR_STOP=1"),
             stdout="schema public\nschema extensions\n")
        f.on("fetch(", stdout="200\n")
        f.on("export:credentials", stdout="2\n")
        f.on("pg_restore -l", stdout=";\n1; 2615 2200 SCHEMA - public pg_database_owner\n"
                                     "215; 1259 16390 TABLE public agent_metrics postgres\n"
                                     "216; 1259 16391 TABLE public conversation_history postgres\n")
        f.on("n8n-backup", stdout="backup ok: snapshot dddd4444 (n8n: 3 workflows, 2 credentials; supabase: "
                                  "2 tables, 12 rows) off-host: none in 7s\n")

    def _restic_snapshots(self, argv, kw):
        if "snapshots" not in argv:
            return None
        return self.answers.get(repo_of(kw), (0, "[]", ""))

    def _restic_restore(self, argv, kw):
        target = argv[argv.index("--target") + 1]
        self.restored_into.append(target)
        shutil.copytree(self.snapshot_root, target, dirs_exist_ok=True)
        return None

    def logtext(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def host(tmp_path, fake):
    return Host(tmp_path, fake)


NEWEST_SNAPSHOT = restore_mod.newest_snapshot  # the real one (the fixture below stands it in)


@pytest.fixture(autouse=True)
def no_repository_here(monkeypatch):
    """The tests' local repository is a name only: no snapshot of it is on this machine's disk."""
    monkeypatch.setattr(restore_mod, "newest_snapshot", lambda repo: None)


def restore(host: Host, *args: str, **settings_over) -> int:
    return cli.main(["n8n-restore", *args], runner=host.fake, settings=host.settings(**settings_over))


def cmds(fake: FakeRunner) -> list[str]:
    return fake.commands()


def restic_calls(fake: FakeRunner, sub: str) -> list:
    return [c for c in fake.calls if c.argv[0] == "restic" and sub in c.argv]


def scratch_file(fake: FakeRunner, in_box: str) -> str:
    """The file a scratch box reads at `in_box`: this run's directory is mounted on /tmp/restore."""
    run = next(c for c in reversed(fake.calls) if c.argv[:3] == ["docker", "run", "-d"]
               and "n8n-restore-scratch" in c.cmd)
    mount = next(a for a in run.argv if a.endswith(f":{restore_mod.SCRATCH_DIR}:ro"))
    return mount.removesuffix(f":{restore_mod.SCRATCH_DIR}:ro") + in_box.removeprefix(restore_mod.SCRATCH_DIR)


def on_scratch_restore(fake: FakeRunner, got) -> None:
    """`got(path, mode)` of the list a scratch box's pg_restore is given, when it is given it."""
    def call(argv, kw):
        path = scratch_file(fake, argv[argv.index("-L") + 1])
        got(open(path).read(), os.stat(path).st_mode & 0o777)

    fake.on(lambda cmd: "pg_restore -U postgres -d postgres" in cmd and "n8n-restore-scratch" in cmd, call=call)



def repo_of(kw: dict) -> str:
    """A restic call's RESTIC_REPOSITORY as logs show it (the vault's password taken out)."""
    return kw["env"]["RESTIC_REPOSITORY"].replace(f":{VAULT_PASSWORD}@", "@")


# --- validation: nothing changes -------------------------------------------------------------
def test_not_provisioned_without_compose_file_exits_4(host, capsys):
    (host.stack / "docker-compose.yml").unlink()
    assert restore(host) == 4
    err = capsys.readouterr().err
    assert (f"n8n-restore: FAILED check host: this host is not provisioned (no n8n stack in {host.stack}): "
            "run `pyinfra inventory.py deploy.py` first") in err
    assert not host.fake.ran("restic")
    assert "FAILED check host: this host is not provisioned" in host.logtext()


def test_not_provisioned_without_postgres_container_exits_4(host, capsys):
    host.fake.on("ps -q postgres", stdout="")
    assert restore(host) == 4
    assert "not provisioned" in capsys.readouterr().err
    assert not host.fake.ran("restic")


def test_named_supabase_target_without_confirmation_exits_2_before_any_restic(host, capsys):
    assert restore(host, "--supabase-target", SECRET_URL) == 2
    err = capsys.readouterr().err
    assert "check host: --supabase-target other than scratch overwrites that database: add " \
           "--confirm-supabase-overwrite" in err
    assert not host.fake.ran("restic")
    assert SECRET_URL not in err + host.logtext()


def test_unknown_argument_exits_2(host):
    with pytest.raises(SystemExit) as e:
        restore(host, "--bogus")
    assert e.value.code == 2
    assert host.fake.calls == []


# --- which snapshot --------------------------------------------------------------------------
def test_latest_is_the_newest_that_is_not_a_safety_snapshot(host, capsys):
    assert restore(host, "--drill") == 0
    assert f"snapshot bbbb2222 from {LOCAL}" in capsys.readouterr().out
    [r] = restic_calls(host.fake, "restore")
    assert r.argv[r.argv.index("restore") + 1] == "bbbb2222" + "0" * 56
    assert r.kw["env"]["RESTIC_REPOSITORY"] == LOCAL
    # the JSON list comes apart from stderr (ssh notices), of the n8n tag only
    [s] = restic_calls(host.fake, "snapshots")
    assert s.argv[-4:] == ["--json", "--no-lock", "--tag", "n8n"]  # a read of the list: no lock taken


def test_date_picks_the_last_snapshot_of_that_day_or_before(host, capsys):
    assert restore(host, "--drill", "--snapshot", "2026-11-27") == 0
    assert "snapshot aaaa1111 from" in capsys.readouterr().out
    assert restore(host, "--drill", "--snapshot", "2026-11-30") == 0  # a safety snapshot counts by date
    assert "snapshot cccc3333 from" in capsys.readouterr().out


def test_id_prefix_picks_that_snapshot_even_a_safety_one(host, capsys):
    assert restore(host, "--drill", "--snapshot", "cccc33") == 0
    assert f"snapshot cccc3333 from {LOCAL}" in capsys.readouterr().out


def test_no_snapshot_exits_3_naming_each_repositorys_problem(host, capsys):
    host.offsite = [VAULT, BUCKET]
    host.answers = {
        LOCAL: (1, "", "Fatal: unable to open config file: stat /var/backups/n8n/restic/config: no such file\n"
                       "Is there a repository at the following location?\n" + LOCAL + "\n"),
        VAULT: (1, "", "Fatal: wrong password or no key found\n"),
        BUCKET: (0, json.dumps(SNAPS), ""),
    }
    assert restore(host, "--snapshot", "0123abcd") == 3
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if "FAILED" in x][0]
    assert line == ("n8n-restore: FAILED find snapshot: no snapshot '0123abcd' found: "
                    f"{LOCAL}: no repository there ({LOCAL});"
                    f"{VAULT}: RESTIC_PASSWORD does not open it (wrong password?);"
                    f"{BUCKET}: no snapshot '0123abcd'")
    assert [repo_of(c.kw) for c in restic_calls(host.fake, "snapshots")] == [LOCAL, VAULT, BUCKET]
    # only the vault's repository gets its certificate, and this server's password (in the environment)
    vault_call = restic_calls(host.fake, "snapshots")[1]
    assert vault_call.argv[1:3] == ["--cacert", "/etc/mottivme/vault-cert.pem"]
    assert vault_call.kw["env"]["RESTIC_REPOSITORY"] == f"rest:https://tst-1:{VAULT_PASSWORD}@vault:8000/tst-1/"
    assert "--cacert" not in restic_calls(host.fake, "snapshots")[2].argv
    assert not any(VAULT_PASSWORD in a for c in host.fake.calls for a in c.argv) and VAULT_PASSWORD not in err
    assert not restic_calls(host.fake, "restore") and not host.fake.ran("n8n-backup") and not host.fake.ran("stop")


def test_no_repository_message_is_cut_to_120_characters(host, capsys):
    host.answers = {LOCAL: (1, "", "ssh: notice\nFatal: " + "x" * 300 + "\n")}
    assert restore(host, "--from", "local") == 3
    err = capsys.readouterr().err
    assert f"{LOCAL}: no repository there (Fatal: {'x' * 113})" in err


def test_auto_falls_through_from_the_local_repository_to_the_off_host_one(host, capsys):
    host.answers = {LOCAL: (0, "[]", ""), VAULT: (0, json.dumps(SNAPS[:1]), "")}
    assert restore(host, "--drill") == 0
    assert f"snapshot aaaa1111 from {VAULT}" in capsys.readouterr().out
    [r] = restic_calls(host.fake, "restore")
    assert repo_of(r.kw) == VAULT and r.argv[1] == "--cacert"


def test_the_id_the_backup_printed_finds_its_copy_in_an_off_host_repository(host, capsys):
    """`restic copy` gives the copy another id; it keeps the backup's id as `original`."""
    copy = {**snap("9f8e7d6c", "2026-11-28T03:17:00Z"), "original": "bbbb2222" + "0" * 56}
    other = {**snap("5a5a5a5a", "2026-11-29T03:17:00Z"), "original": "cccc3333" + "0" * 56}
    host.answers = {LOCAL: (0, "[]", ""), VAULT: (0, json.dumps([copy, other]), "")}
    assert restore(host, "--drill", "--from", "offsite", "--snapshot", "bbbb2222") == 0
    out = capsys.readouterr().out
    assert f"snapshot bbbb2222 (stored as 9f8e7d6c in {VAULT})" in out and "drill ok: snapshot bbbb2222" in out
    [r] = restic_calls(host.fake, "restore")
    assert r.argv[r.argv.index("restore") + 1] == "9f8e7d6c" + "0" * 56  # restic is given the copy's own id


def test_a_vault_that_does_not_answer_is_passed_over_at_once(host, capsys):
    """One quick probe, not restic's 15 minutes of retries: the bucket's snapshot restores."""
    host.offsite = [VAULT, BUCKET]
    host.answers = {LOCAL: (0, "[]", ""), BUCKET: (0, json.dumps(SNAPS[:1]), "")}
    host.fake.on(lambda c: c.startswith("curl") and "--cacert" in c, rc=28,
                 stderr="curl: (28) Connection timed out after 10001 milliseconds\n")
    assert restore(host, "--drill", "--from", "offsite") == 0
    assert f"snapshot aaaa1111 from {BUCKET}" in capsys.readouterr().out
    assert [repo_of(c.kw) for c in restic_calls(host.fake, "snapshots")] == [BUCKET]
    # nowhere else: the vault named as not answering, with curl's reason
    host.answers = {LOCAL: (0, "[]", "")}
    assert restore(host, "--drill", "--from", "offsite") == 3
    assert (f"{VAULT}: the vault does not answer: curl: (28) Connection timed out after 10001 milliseconds;"
            in capsys.readouterr().err)


def test_a_restore_never_picks_another_servers_snapshot_unless_told(host, capsys):
    """Every lookup - latest, a date, an id - is filtered by the name this server's backups carry;
    --from-host NAME reaches another server's (a migration, a snapshot made before a rename)."""
    theirs = {**snap("eeee5555", "2026-11-30T03:17:00Z"), "hostname": "other-1"}
    host.answers = {LOCAL: (0, json.dumps([theirs]), ""), VAULT: (0, json.dumps([theirs]), "")}
    for args in ([], ["--snapshot", "eeee5555"], ["--snapshot", "2026-11-30"]):
        assert restore(host, "--drill", *args) == 3
        err = capsys.readouterr().err
        assert f"{LOCAL}: no snapshot of tst-1, only of other-1 (restore one of theirs with --from-host NAME)" in err
    assert not restic_calls(host.fake, "restore")
    # mixed: this server's older snapshot wins over another server's newer one
    host.answers = {LOCAL: (0, json.dumps([*SNAPS, theirs]), "")}
    assert restore(host, "--drill") == 0
    [r] = restic_calls(host.fake, "restore")
    assert r.argv[r.argv.index("restore") + 1] != theirs["id"]
    # asked by id: named, with the way to it
    assert restore(host, "--drill", "--snapshot", "eeee5555") == 3
    assert f"{LOCAL}: no snapshot 'eeee5555' of tst-1; eeee5555 is other-1's (--from-host other-1)" in \
        capsys.readouterr().err
    # told: the other server's
    host.fake.calls.clear()
    host.answers = {LOCAL: (0, json.dumps([theirs]), "")}
    assert restore(host, "--drill", "--from-host", "other-1") == 0
    [r] = restic_calls(host.fake, "restore")
    assert r.argv[r.argv.index("restore") + 1] == theirs["id"]


def test_from_local_never_asks_the_off_host_repository(host, capsys):
    host.answers = {LOCAL: (0, "[]", ""), VAULT: (0, json.dumps(SNAPS), "")}
    assert restore(host, "--from", "local") == 3
    assert f"{LOCAL}: no snapshot 'latest'" in capsys.readouterr().err
    assert [repo_of(c.kw) for c in restic_calls(host.fake, "snapshots")] == [LOCAL]


def test_from_offsite_without_an_off_host_repository_exits_2(host, capsys):
    host.offsite = []
    assert restore(host, "--from", "offsite") == 2
    assert "find snapshot: no off-host repository is configured" in capsys.readouterr().err
    assert not host.fake.ran("restic")


# --- the snapshot's files --------------------------------------------------------------------
def test_a_file_that_does_not_match_its_sha256_fails_before_anything_is_stopped(host, capsys):
    with open(host.staging / "n8n" / "n8n-db.dump", "ab") as f:
        f.write(b"bit rot")
    assert restore(host) == 1
    err = capsys.readouterr().err
    assert "n8n-restore: FAILED verify files: files of snapshot bbbb2222 do not match its manifest" in err
    assert "n8n/n8n-db.dump: sha256 mismatch" in host.logtext()
    for never in ("n8n-backup", "stop", "create database", "pg_restore", "docker run"):
        assert not host.fake.ran(never), never
    assert not os.path.exists(host.restored_into[0])  # the work dir is removed


def test_a_snapshot_without_manifest_is_refused(host, capsys):
    (host.staging / "manifest.json").unlink()
    assert restore(host) == 1
    assert "restore files: snapshot bbbb2222 has no manifest.json: not a complete n8n-backup snapshot" in \
        capsys.readouterr().err


def test_another_encryption_key_exits_5(host, capsys):
    host.write_snapshot(key="f" * 64)
    assert restore(host) == 5
    err = capsys.readouterr().err
    assert (f"verify files: snapshot bbbb2222 was made with another N8N_ENCRYPTION_KEY than the one in "
            f"{host.stack}/.env: its credentials could not be decrypted. Put the snapshot's key in your .env "
            "(see config/.env in the snapshot) and deploy first") in err
    assert not host.fake.ran("n8n-backup") and not host.fake.ran("stop")
    assert KEY not in err and "f" * 64 not in err


# --- restore over the live stack -------------------------------------------------------------
def test_good_live_restore_swaps_in_the_checked_database(host, capsys):
    lists = []
    on_scratch_restore(host.fake, lambda text, mode: lists.append(text))
    assert restore(host) == 0
    out = capsys.readouterr().out
    c = cmds(host.fake)
    i = host.fake.index
    assert i("n8n-backup --tag pre-restore --no-offsite") < i('create database "n8n_restoring" owner "n8n"')
    assert i('create database "n8n_restoring"') < i("pg_restore -U n8n -d n8n_restoring --no-owner --exit-on-error")
    assert i("-d n8n_restoring") < i("<ignore interrupts>") < i("stop n8n n8n-worker")
    assert i('drop database if exists "n8n_before_restore"') < i("stop n8n n8n-worker")
    assert i("stop n8n n8n-worker") < i('alter database "n8n" rename to "n8n_before_restore"; '
                                        'alter database "n8n_restoring" rename to "n8n"')
    assert i("alter database") < i("up -d n8n n8n-worker") < i("curl")
    assert i("curl") < i("n8n-restore-scratch")  # Supabase after n8n is back
    swap = next(x for x in c if "alter database" in x)
    assert "pg_terminate_backend" in swap  # terminate and rename in one psql
    assert "--resolve n8n.example.test:443:127.0.0.1 https://n8n.example.test/healthz/readiness" in c[i("curl")]
    assert all(x.kw["cwd"] == str(host.stack) for x in host.fake.calls if x.argv[:2] == ["docker", "compose"])
    lines = out.splitlines()
    assert "safety snapshot: snapshot dddd4444 (n8n: 3 workflows, 2 credentials; supabase: 2 tables, 12 rows) " \
           "off-host: none in 7s" in lines
    assert "restoring n8n's database into n8n_restoring (n8n keeps running)" in lines
    assert "previous database kept as n8n_before_restore until the next restore (undo: docs/runbooks/restore.md)" \
        in lines
    assert ("supabase: dump restored into a scratch database, row counts match the manifest (2 tables, 12 rows); "
            "production untouched") in lines
    assert "restore ok: snapshot bbbb2222; n8n ready; 3 workflows, 2 credentials as in the manifest" in lines
    assert not any(x.startswith("note:") for x in lines)  # the same compose file
    for label in ("find snapshot", "restore files from restic", "verify sha256 and encryption key", "safety snapshot",
                  "pg_restore into n8n_restoring, verify counts", "swap databases, start n8n, wait for readiness",
                  *SCRATCH_LAPS):
        assert re.search(rf"^  {re.escape(label)}\s+[0-9.]+ s$", out, re.M), label
    # the snapshot's config kept aside, the work dir gone, no throwaway container left
    kept = host.backup_dir / "restored-config" / "bbbb2222"
    assert (kept / ".env").read_text().startswith("POSTGRES_PASSWORD=") and (kept / "caddy" / "Caddyfile").exists()
    assert os.listdir(host.backup_dir / "restore") == []
    assert i("docker rm -f -v n8n-restore-scratch") > i("n8n-restore-scratch")
    # the dump's own `CREATE SCHEMA public` is left out of the restore list
    assert "SCHEMA - public" not in lists[0] and "TABLE public agent_metrics" in lists[0]
    assert "restore: restore ok: snapshot bbbb2222" in host.logtext()


def test_no_safety_snapshot_skips_the_backup(host, capsys):
    assert restore(host, "--no-safety-snapshot") == 0
    assert not host.fake.ran("n8n-backup")
    assert "safety snapshot" not in capsys.readouterr().out


def test_a_failed_safety_snapshot_changes_nothing(host, capsys):
    host.fake.on("n8n-backup", rc=1, stderr="n8n-backup: FAILED lock: another n8n-backup is running\n")
    assert restore(host) == 1
    err = capsys.readouterr().err
    assert ("n8n-restore: FAILED safety snapshot: the safety snapshot failed, nothing was changed (n8n-backup: "
            "FAILED lock: another n8n-backup is running); --no-safety-snapshot skips it") in err
    assert not host.fake.ran("create database") and not host.fake.ran("stop")


def test_counts_that_differ_in_the_restoring_database_leave_the_live_one_untouched(host, capsys):
    bad = dict(N8N_COUNTS, workflow_entity=2, execution_entity=7)
    host.fake.on(lambda c: "-d n8n_restoring" in c and "query_to_xml" in c, stdout=counts_text(bad))
    assert restore(host) == 1
    cap = capsys.readouterr()
    assert ("n8n-restore: FAILED restore n8n database: the restored n8n database differs from the manifest; "
            "the live one is untouched") in cap.err
    assert "  n8n workflow_entity: 2 rows, manifest 3" in cap.out
    assert "execution_entity" not in cap.out  # not one of the exact tables
    c = cmds(host.fake)
    assert not any(" stop " in x for x in c) and not host.fake.ran("alter database")
    assert not host.fake.ran("<ignore interrupts>")
    assert 'drop database if exists "n8n_restoring" with (force)' in c[-1]  # the clean-up
    assert "restore: FAILED restore n8n database: the restored n8n database differs" in host.logtext()


def test_a_table_missing_from_the_manifest_counts_as_a_difference(host, capsys):
    host.write_snapshot(n8n_counts={k: v for k, v in N8N_COUNTS.items() if k != "user"})
    assert restore(host) == 1
    assert "  n8n user: 1 rows, manifest missing" in capsys.readouterr().out


def test_an_exact_table_missing_after_the_restore_is_a_difference(host, capsys):
    gone = {k: v for k, v in N8N_COUNTS.items() if k not in ("credentials_entity", "execution_entity")}
    host.fake.on(lambda c: "-d n8n_restoring" in c and "query_to_xml" in c, stdout=counts_text(gone))
    assert restore(host) == 1
    cap = capsys.readouterr()
    assert "FAILED restore n8n database: the restored n8n database differs from the manifest" in cap.err
    assert "  n8n credentials_entity: 0 rows (not in the restored database), manifest 2" in cap.out
    assert "execution_entity" not in cap.out  # not one of the exact tables
    assert not host.fake.ran("alter database")


def test_an_other_n8n_table_missing_after_the_restore_is_no_difference(host, capsys):
    gone = {k: v for k, v in N8N_COUNTS.items() if k != "execution_entity"}
    host.fake.on(lambda c: "-d n8n_restoring" in c and "query_to_xml" in c, stdout=counts_text(gone))
    assert restore(host, "--no-safety-snapshot") == 0


def test_swap_that_fails_five_times_starts_n8n_again_on_its_own_database(host, capsys):
    host.fake.on("alter database", rc=1, stderr="ERROR: database \"n8n\" is being accessed by other users")
    assert restore(host) == 1
    err = capsys.readouterr().err
    assert (f"n8n-restore: FAILED swap databases: could not swap in the restored database: n8n is started again "
            f"on its own database (details in {host.log})") in err
    c = cmds(host.fake)
    alters = [k for k, x in enumerate(c) if "alter database" in x]
    assert len(alters) == 5
    assert host.fake.index("stop n8n n8n-worker") < alters[0]
    ups = [k for k, x in enumerate(c) if "up -d n8n n8n-worker" in x]
    assert ups and ups[0] > alters[-1]
    assert not host.fake.ran("curl")
    assert 'drop database if exists "n8n_restoring"' in c[-1]
    assert "is being accessed by other users" in host.logtext()


def test_swap_succeeding_on_a_later_try(host, capsys):
    host.fake.on("alter database", rc=1, times=2)
    assert restore(host) == 0
    assert sum("alter database" in x for x in cmds(host.fake)) == 3
    assert host.fake.sleeps.count(1) >= 2


def test_not_ready_after_the_swap_puts_the_previous_database_back(host, capsys):
    host.fake.on("curl", stdout="502")
    assert restore(host, "--no-safety-snapshot") == 1
    err = capsys.readouterr().err
    assert ("n8n-restore: FAILED start n8n: n8n was not ready after 300s on the restored database, so its previous "
            "database is back in service; the restored one is kept as n8n_restore_failed and "
            "`docker compose -p n8n logs n8n` says why") in err
    i = host.fake.index
    c = cmds(host.fake)
    swap_back = ('alter database "n8n" rename to "n8n_restore_failed"; '
                 'alter database "n8n_before_restore" rename to "n8n"')
    stops = [k for k, x in enumerate(c) if "stop n8n n8n-worker" in x]
    ups = [k for k, x in enumerate(c) if "up -d n8n n8n-worker" in x]
    assert len(stops) == 2 and len(ups) == 2
    assert ups[0] < i("curl") < stops[1] < i('drop database if exists "n8n_restore_failed"') < i(swap_back) < ups[1]
    assert not host.fake.ran("n8n-restore-scratch")  # no Supabase part, no "restore ok"


def test_not_ready_and_a_failing_swap_back_says_rollback_incomplete(host, capsys):
    host.fake.on("curl", stdout="502")
    host.fake.on('rename to "n8n_restore_failed"', rc=1, stderr="ERROR: database is being accessed by other users")
    assert restore(host, "--no-safety-snapshot") == 6
    err = capsys.readouterr().err
    assert "is back in service" not in err
    assert ("n8n-restore: FAILED ROLLBACK INCOMPLETE: n8n was not ready after 300s on the restored database and "
            "the previous one could not be swapped back: n8n is started on the restored database (n8n), which it "
            "was not ready on; the previous data is in n8n_before_restore. To put it back: ") in err
    assert (f"cd {host.stack} && docker compose -p n8n stop n8n n8n-worker && docker compose -p n8n exec -T postgres "
            "psql -U n8n -d postgres -c 'alter database \"n8n\" rename to \"n8n_restore_failed\"; "
            "alter database \"n8n_before_restore\" rename to \"n8n\"' && docker compose -p n8n up -d") in err
    c = cmds(host.fake)
    assert sum('rename to "n8n_restore_failed"' in x for x in c) == restore_mod.SWAP_TRIES
    ups = [k for k, x in enumerate(c) if "up -d n8n n8n-worker" in x]
    assert len(ups) == 2 and ups[1] > max(k for k, x in enumerate(c) if "n8n_restore_failed" in x)
    assert "FAILED ROLLBACK INCOMPLETE" in host.logtext()


def test_not_ready_and_an_error_during_the_undo_still_starts_n8n(host, capsys):
    host.fake.on("curl", stdout="502")

    def boom(argv, kw):
        raise OSError("docker socket gone")

    host.fake.on('drop database if exists "n8n_restore_failed"', call=boom)
    assert restore(host, "--no-safety-snapshot") == 1
    assert "docker socket gone" in capsys.readouterr().err
    c = cmds(host.fake)
    ups = [k for k, x in enumerate(c) if "up -d n8n n8n-worker" in x]
    assert len(ups) == 2 and ups[1] > host.fake.index('drop database if exists "n8n_restore_failed"')


def test_the_lock_held_by_a_backup_stops_the_restore_before_any_change(host, capsys):
    holder = common.Lock(str(host.tmp / "lock" / "n8n-backup.lock"))
    assert holder.try_acquire()
    try:
        assert restore(host, "--no-safety-snapshot") == 1
    finally:
        os.close(holder.fd)
    assert "lock: a backup has held the lock for 10 minutes" in capsys.readouterr().err
    assert sum(host.fake.sleeps) >= 600
    assert not host.fake.ran("create database")


def test_interrupted_while_restoring_leaves_n8n_running_and_drops_the_copy(host, capsys):
    def interrupt(argv, kw):
        raise KeyboardInterrupt

    host.fake.on("pg_restore -U n8n -d n8n_restoring", call=interrupt)
    assert restore(host, "--no-safety-snapshot") == 130
    assert "n8n-restore: FAILED restore n8n database: interrupted" in capsys.readouterr().err
    assert "restore: FAILED restore n8n database: interrupted" in host.logtext()
    c = cmds(host.fake)
    assert not any(" stop " in x for x in c)
    assert 'drop database if exists "n8n_restoring" with (force)' in c[-1]


def test_an_interrupt_while_the_copy_is_made_waits_until_it_is_whole_then_drops_it(host, capsys):
    """A hang-up while `create database` runs (inside the container, by `docker exec`): the command
    runs in a session of its own and is not cut; the interrupt counts once it is done, and the
    clean-up's drop comes after it (cut, the container would go on making the copy after the drop)."""
    made = []

    def hang_up(argv, kw):
        os.kill(os.getpid(), signal.SIGHUP)  # n8n-restore's handler: an interrupt, here deferred
        made.append(kw["new_session"])

    host.fake.on('create database "n8n_restoring"', call=hang_up)
    assert restore(host, "--no-safety-snapshot") == 130
    assert made == [True]
    assert "n8n-restore: FAILED restore n8n database: interrupted" in capsys.readouterr().err
    c = cmds(host.fake)
    assert not any("pg_restore -U n8n -d n8n_restoring" in x for x in c)
    assert 'create database "n8n_restoring"' in c[-2] and 'drop database if exists "n8n_restoring" with (force)' in c[-1]


def test_an_unexpected_command_failure_names_the_command_and_the_log(host, capsys):
    host.fake.on("pg_restore -U n8n -d n8n_restoring", rc=1, stderr="pg_restore: error: could not read input")
    assert restore(host, "--no-safety-snapshot") == 1
    err = capsys.readouterr().err
    assert re.search(r"FAILED restore n8n database: `docker compose -p n8n exec -T postgres pg_restore .*` exited 1 "
                     rf"\(details in {re.escape(str(host.log))}\)", err)
    assert err.count("FAILED") == 1
    assert "could not read input" in host.logtext()


def test_a_different_compose_file_in_the_snapshot_is_noted(host, capsys):
    host.write_snapshot(compose="services: {}\n")
    assert restore(host, "--no-safety-snapshot") == 0
    kept = host.backup_dir / "restored-config" / "bbbb2222"
    assert (f"note: the snapshot's compose file differs from the deployed one (kept in {kept})"
            in capsys.readouterr().out.splitlines())


# --- Supabase --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", [1, 2])
def test_a_snapshot_without_a_configured_database_says_so(host, capsys, fmt):
    host.write_snapshot(supabase=False, fmt=fmt)
    sources = [{"name": "n8n", "kind": "n8n"}, {"name": "supabase", "kind": "postgres", "url": SECRET_URL}]
    assert restore(host, "--no-safety-snapshot", sources=sources) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "supabase: not in this snapshot" in lines
    assert "restore ok: snapshot bbbb2222; n8n ready; 3 workflows, 2 credentials as in the manifest" in lines
    assert not host.fake.ran("n8n-restore-scratch")
    assert "s3cr3t" not in host.logtext()


def test_a_supabase_target_for_a_snapshot_without_supabase_says_so(host, capsys):
    host.write_snapshot(supabase=False)
    assert restore(host, "--no-safety-snapshot", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 0
    assert "supabase: not in this snapshot" in capsys.readouterr().out.splitlines()
    assert not host.fake.ran("--clean")


def test_a_dump_of_a_major_version_with_no_image_fails_naming_the_fix(host, capsys):
    host.write_snapshot(databases={"supabase": (["public"], SUPA_COUNTS, 180001)})
    assert restore(host, "--no-safety-snapshot") != 0
    assert ("supabase: no image for PostgreSQL 18 (group data's supabase_majors: add it and its images, "
            "`make images-add`, deploy)") in capsys.readouterr().err
    assert not host.fake.ran("n8n-restore-scratch") and not host.fake.ran("docker pull")


def test_scratch_check_uses_the_servers_major_and_no_network(host, capsys):
    seen = {}

    def look(argv, kw):  # what the box sees when its pg_restore runs
        box_dir = scratch_file(host.fake, "/tmp/restore")
        seen.update({x: os.stat(os.path.join(box_dir, x)) for x in os.listdir(box_dir)})

    host.fake.on(lambda c: "pg_restore -U postgres -d postgres" in c, call=look)
    assert restore(host, "--no-safety-snapshot") == 0
    run = next(x for x in cmds(host.fake) if x.startswith("docker run -d --name n8n-restore-scratch"))
    assert "--network none" in run and run.endswith("pgvector/pgvector:pg15")
    # a directory of its own, read-only (pg_restore's parallel jobs need a file): the verified dump
    # (a hard link, no copy) and the lists, never the snapshot's config/.env nor n8n's dump
    mount = re.search(r" -v (\S+):/tmp/restore:ro ", run).group(1)
    assert os.path.dirname(mount) == str(host.backup_dir / "restore") and os.path.basename(mount).startswith("box-")
    assert sorted(seen) == ["supabase.dump", "supabase.scratch.list"]
    assert seen["supabase.dump"].st_nlink == 2 and seen["supabase.scratch.list"].st_mode & 0o777 == 0o600
    restored = next(c for c in host.fake.calls if "pg_restore -U postgres -d postgres" in c.cmd)
    assert restored.argv[-6:] == ["--exit-on-error", "-j", restore_mod.JOBS, "-L", "/tmp/restore/supabase.scratch.list",
                                  "/tmp/restore/supabase.dump"]


def test_scratch_counts_that_differ_fail(host, capsys):
    host.fake.on(lambda c: "n8n-restore-scratch" in c and "query_to_xml" in c,
                 stdout=counts_text(dict(SUPA_COUNTS, agent_metrics=4, extra_table=1)))
    assert restore(host, "--no-safety-snapshot") == 1
    cap = capsys.readouterr()
    assert ("FAILED supabase scratch restore: n8n restored and running; supabase NOT restored: the supabase dump "
            "restored into a scratch database but its row counts differ from the manifest") in cap.err
    assert "  supabase agent_metrics: 4 rows, manifest 5" in cap.out
    assert "  supabase extra_table: 1 rows, manifest missing" in cap.out
    assert host.fake.index("query_to_xml") < len(cmds(host.fake)) - 1
    assert any(x.startswith("docker rm -f -v n8n-restore-scratch") for x in cmds(host.fake))  # clean-up


def test_a_scratch_table_missing_after_the_restore_fails(host, capsys):
    host.fake.on(lambda c: "n8n-restore-scratch" in c and "query_to_xml" in c,
                 stdout=counts_text({"agent_metrics": 5}))
    assert restore(host, "--source", "supabase") == 1
    cap = capsys.readouterr()
    assert ("FAILED supabase scratch restore: the supabase dump restored into a scratch database but its row counts "
            "differ from the manifest") in cap.err
    assert "  supabase conversation_history: 0 rows (not in the restored database), manifest 7" in cap.out


def test_a_scratch_table_empty_in_the_manifest_may_be_missing(host, capsys):
    host.write_snapshot(databases={"supabase": (["public"], dict(SUPA_COUNTS, empty_table=0), 150008)})
    assert restore(host, "--source", "supabase") == 0
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out.splitlines()


def test_a_named_supabase_target_gets_its_password_only_in_a_pgpass_file(host, capsys):
    assert restore(host, "--no-safety-snapshot", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 0
    cap = capsys.readouterr()
    # the dump's list becomes one script (no network, no credentials) ...
    [script] = [c for c in host.fake.calls if "--clean" in c.cmd]
    assert script.argv[:5] == ["docker", "run", "--rm", "--network", "none"] and script.kw["env"] is None
    assert script.argv[-9:] == ["pg_restore", "--clean", "--if-exists", "--no-owner", "-L", "/tmp/restore.list",
                                "-f", "-", "/tmp/restore.dump"] and "postgres:15" in script.argv
    # ... run over the target in one transaction: all of it or nothing
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert host.fake.index("--clean") < host.fake.index("psql -1")
    assert target_run.argv[:6] == ["docker", "run", "--rm", "--network", "host", "-e"]
    # libpq's variables by name, the password in a 0600 pgpass file: no URL in any argv or environment
    assert "postgres:15" in target_run.argv and libpq_url(target_run) == SECRET_URL
    assert target_run.kw["env"] == {"PGHOST": "db.supabase.example.test", "PGPORT": "5432", "PGUSER": "postgres",
                                    "PGDATABASE": "postgres"}
    assert target_run.argv[-8:] == ["psql", "-1", "-v", "ON_ERROR_STOP=1", "-qX", "-f", "/tmp/pre.sql", "-f",
                                    "/tmp/restore.sql"][-8:]
    assert os.listdir(host.settings().run_dir) == []
    assert "supabase: restored over the named target database in one transaction" in cap.out.splitlines()
    assert not host.fake.ran("n8n-restore-scratch")
    # --supabase-target names its source; by default n8n is restored too (the DR drill relies on it)
    assert host.fake.ran("alter database") and "restore ok: snapshot bbbb2222; n8n ready" in cap.out
    for c in host.fake.calls:
        assert "s3cr3t" not in c.cmd
    assert "s3cr3t" not in cap.out + cap.err + host.logtext()


def test_a_failing_named_target_restore_does_not_print_its_url(host, capsys):
    host.fake.on("psql -1", rc=3, stderr="psql:/tmp/restore.sql:12: ERROR:  permission denied for schema public\n")
    assert restore(host, "--no-safety-snapshot", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 1
    cap = capsys.readouterr()
    # the last line: what was restored, what was not
    assert ("FAILED supabase restore into the named target: n8n restored and running; supabase NOT restored: "
            "psql:/tmp/restore.sql:12: ERROR:  permission denied for schema public (details in ") in cap.err
    assert cap.err.rstrip().endswith("the restore ran in one transaction: the target is as it was")
    assert "s3cr3t" not in cap.out + cap.err + host.logtext()


# --- drill -----------------------------------------------------------------------------------
def test_drill_restores_into_throwaway_containers_and_never_touches_the_live_stack(host, capsys):
    env_files = []

    def app_started(argv, kw):
        path = argv[argv.index("--env-file") + 1]
        env_files.append((open(path).read(), os.stat(path).st_mode & 0o777))

    host.fake.on(lambda c: c.startswith("docker run -d --name n8n-drill-n8n-"), call=app_started)
    assert restore(host, "--drill") == 0
    out = capsys.readouterr().out
    assert "drill ok: snapshot bbbb2222 restores; n8n ready on it; 3 workflows, 2 credentials (2 decrypt)" in \
        out.splitlines()
    assert re.search(r"drill: throwaway n8n ready\s+[0-9.]+ s", out)
    for label in ("drill: start throwaway PostgreSQL", "drill: pg_restore n8n database",
                  "drill: counts + credentials decrypt", *SCRATCH_LAPS):
        assert re.search(rf"^  {re.escape(label)}\s+[0-9.]+ s$", out, re.M), label
    c = cmds(host.fake)
    # the live stack: only the provisioning check
    assert [x for x in c if x.startswith("docker compose")] == ["docker compose -p n8n ps -q postgres"]
    assert not host.fake.ran("n8n-backup") and not host.fake.ran("curl")
    i = host.fake.index
    pid = os.getpid()
    assert c[i("docker network create")] == f"docker network create --internal n8n-drill-{pid}"
    pg_run = c[i(f"--name n8n-drill-pg-{pid}")]
    assert f"--network n8n-drill-{pid} --network-alias db" in pg_run and pg_run.endswith("postgres:17")
    app_run = c[i(f"docker run -d --name n8n-drill-n8n-{pid}")]
    assert app_run.endswith("docker.n8n.io/n8nio/n8n:2.41.1") and "-e DB_POSTGRESDB_HOST=db" in app_run
    assert KEY not in " ".join(c)  # the key only in a 0600 file
    assert env_files == [(f"N8N_ENCRYPTION_KEY={KEY}\n", 0o600)]
    assert i("pg_isready") < i("pg_restore -U n8n -d n8n") < i(f"docker run -d --name n8n-drill-n8n-{pid}")
    assert i("fetch(") < i(f"docker exec n8n-drill-pg-{pid} psql") < i("export:credentials")
    assert c[i("export:credentials")].startswith(f"docker exec -e N8N_RUNNERS_BROKER_PORT=5691 n8n-drill-n8n-{pid} sh")
    # removed at the end: containers (volumes too), then the network; the work dir
    assert i(f"docker rm -f -v n8n-drill-n8n-{pid} n8n-drill-pg-{pid}") < i(f"docker network rm n8n-drill-{pid}")
    assert os.listdir(host.backup_dir / "restore") == []


def test_drill_where_n8n_never_gets_ready_fails_and_cleans_up(host, capsys):
    host.fake.on("fetch(", stdout="0\n")
    assert restore(host, "--drill") == 1
    assert "n8n-restore: FAILED drill: the throwaway n8n did not become ready on the restored database" in \
        capsys.readouterr().err
    assert sum(host.fake.sleeps) >= 300
    assert host.fake.ran("docker network rm n8n-drill-") and host.fake.ran("docker rm -f -v n8n-drill-n8n-")


def test_drill_with_credentials_that_do_not_decrypt_fails(host, capsys):
    host.fake.on("export:credentials", stdout="1\n")
    assert restore(host, "--drill") == 1
    assert "FAILED drill: only 1 of 2 credentials decrypt with the snapshot's key" in capsys.readouterr().err


def test_drill_counts_that_differ_fail(host, capsys):
    host.fake.on(lambda c: "n8n-drill-pg" in c and "query_to_xml" in c,
                 stdout=counts_text(dict(N8N_COUNTS, shared_credentials=1)))
    assert restore(host, "--drill") == 1
    cap = capsys.readouterr()
    assert "FAILED drill: restored n8n database differs from the manifest" in cap.err
    assert "  n8n shared_credentials: 1 rows, manifest 2" in cap.out


def test_a_failing_stop_starts_n8n_again_before_failing(host, capsys):
    host.fake.on("stop n8n n8n-worker", rc=1, stderr="ERROR: for n8n  timeout")
    assert restore(host, "--no-safety-snapshot") == 1
    assert re.search(r"FAILED swap databases: `docker compose -p n8n stop n8n n8n-worker` exited 1",
                     capsys.readouterr().err)
    assert host.fake.index("stop n8n n8n-worker") < host.fake.index("up -d n8n n8n-worker")
    assert not host.fake.ran("alter database")


def test_each_run_restores_into_its_own_work_directory(host, capsys):
    # another run of the same snapshot (a drill from cron beside a live restore) keeps its files
    other = host.backup_dir / "restore" / "bbbb2222"
    other.mkdir(parents=True)
    (other / "n8n-db.dump").write_bytes(b"another run's verified file")
    modes = []

    def restic_restore(argv, kw):
        modes.append(os.stat(argv[argv.index("--target") + 1]).st_mode & 0o777)
        return host._restic_restore(argv, kw)

    host.fake.on(lambda c: c.startswith("restic") and " restore " in c, call=restic_restore)
    assert restore(host, "--drill") == 0
    assert (other / "n8n-db.dump").read_bytes() == b"another run's verified file"
    [work] = host.restored_into
    assert os.path.dirname(work) == str(host.backup_dir / "restore") and work != str(other)
    assert os.path.basename(work).startswith("bbbb2222-")
    assert modes == [0o700]
    assert os.listdir(host.backup_dir / "restore") == ["bbbb2222"]  # this run's directory is removed


def test_the_restored_files_and_kept_config_are_private(host, capsys):
    modes = []
    on_scratch_restore(host.fake, lambda text, mode: modes.append(mode))
    old = os.umask(0o022)
    try:
        assert restore(host, "--no-safety-snapshot") == 0
        assert os.umask(0o022) == 0o022  # the program gives the umask back
    finally:
        os.umask(old)
    assert modes == [0o600]
    # the copy keeps the snapshot's modes (cp -a); the directory holding the copies is root's only
    assert os.stat(host.backup_dir / "restored-config").st_mode & 0o777 == 0o700


# --- the manifest's formats --------------------------------------------------------------------
FORMAT_1 = {"format": 1, "host": "n8n-1", "tags": ["n8n", "scheduled"], "started": "s", "finished": "f",
            "n8n": {"version": "2.41.1", "postgres_version": "17.2", "workflows": 3, "credentials": 2,
                    "row_counts": N8N_COUNTS},
            "supabase": {"server_version_num": 150008, "row_counts": SUPA_COUNTS},
            "files": {"n8n/n8n-db.dump": {}, "supabase/supabase.dump": {}}}


def test_a_format_1_manifest_reads_as_format_2():
    assert restore_mod.manifest_v2(FORMAT_1) == {
        "format": 2, "host": "n8n-1", "tags": ["n8n", "scheduled"], "started": "s", "finished": "f",
        "sources": {
            "n8n": {"kind": "n8n", "version": "2.41.1", "postgres_version": "17.2", "workflows": 3, "credentials": 2,
                    "row_counts": N8N_COUNTS, "dump": "n8n/n8n-db.dump"},
            "supabase": {"kind": "postgres", "server_version_num": 150008, "schemas": ["public"],
                         "row_counts": SUPA_COUNTS, "dump": "supabase/supabase.dump"}},
        "files": FORMAT_1["files"]}
    without = restore_mod.manifest_v2(dict(FORMAT_1, supabase=None))
    assert list(without["sources"]) == ["n8n"]
    v2 = restore_mod.manifest_v2(FORMAT_1)
    assert restore_mod.manifest_v2(v2) == v2  # format 2 as it is


@pytest.mark.parametrize("change,message", [
    ({"format": 3}, "manifest format 3 is not one this program reads"),
    ({"format": 2, "sources": {"n8n": {"kind": "n8n", "dump": "n8n/n8n-db.dump"},
                               "../x": {"kind": "postgres", "dump": "n8n/n8n-db.dump"}}}, "source '../x'"),
    ({"format": 2, "sources": {"n8n": {"kind": "n8n", "dump": "n8n/n8n-db.dump"},
                               "x": {"kind": "postgres", "dump": "x/elsewhere.dump"}}}, "is not among the files"),
    ({"format": 2, "sources": {"n8n": {"kind": "n8n", "dump": "n8n/n8n-db.dump"},
                               "x": {"kind": "postgres", "dump": "n8n/n8n-db.dump", "schemas": ["a'b"]}}},
     "source x: schemas"),
    ({"format": 2, "sources": {"n8n": {"kind": "n8n", "dump": "n8n/n8n-db.dump"},
                               "x": {"kind": "postgres", "dump": "n8n/n8n-db.dump", "row_counts": {}}}},
     "source x: no server_version_num or row_counts"),
    ({"format": 2, "sources": {"x": {"kind": "postgres", "dump": "n8n/n8n-db.dump", "server_version_num": 150008,
                                     "row_counts": {}}}}, "no source n8n"),
    ({"format": 2, "sources": {"n8n": {"kind": "postgres", "dump": "n8n/n8n-db.dump"}}}, "source 'n8n' of kind"),
])
def test_a_manifest_this_program_cannot_read_is_refused(change, message):
    with pytest.raises(restore_mod.ManifestError, match=re.escape(message)):
        restore_mod.manifest_v2(dict(FORMAT_1, **change))


def test_a_format_1_snapshot_restores_end_to_end(host, capsys):
    host.write_snapshot(fmt=1)
    assert json.loads((host.staging / "manifest.json").read_text())["format"] == 1
    assert restore(host) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("supabase: dump restored into a scratch database, row counts match the manifest (2 tables, 12 rows); "
            "production untouched") in lines
    assert "restore ok: snapshot bbbb2222; n8n ready; 3 workflows, 2 credentials as in the manifest" in lines
    assert host.fake.index("n8n-backup --tag pre-restore") < host.fake.index("alter database") < \
        host.fake.index("n8n-restore-scratch")
    assert host.fake.ran("pg_restore -U postgres -d postgres --no-owner --exit-on-error "
                         f"-j {restore_mod.JOBS} -L /tmp/restore/supabase.scratch.list /tmp/restore/")
    scratch_counts = next(c for c in host.fake.calls if "n8n-restore-scratch" in c.cmd and "query_to_xml" in c.cmd)
    assert scratch_counts.argv[-1] == stack.COUNTS_SQL


def test_a_format_1_snapshot_restores_supabase_over_a_named_target(host, capsys):
    host.write_snapshot(fmt=1)
    assert restore(host, "--no-safety-snapshot", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 0
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == SECRET_URL and "postgres:15" in target_run.argv
    [script] = [c for c in host.fake.calls if "--clean" in c.cmd]
    assert any(a.endswith("supabase/supabase.dump:/tmp/restore.dump:ro") for a in script.argv)
    assert "supabase: restored over the named target database in one transaction" in capsys.readouterr().out.splitlines()


def test_an_unknown_manifest_format_is_named(host, capsys):
    m = json.loads((host.staging / "manifest.json").read_text())
    (host.staging / "manifest.json").write_text(json.dumps(dict(m, format=3)))
    assert restore(host) == 1
    assert ("FAILED verify files: snapshot bbbb2222: manifest.json: manifest format 3 is not one this program reads"
            in capsys.readouterr().err)
    assert not host.fake.ran("n8n-backup") and not host.fake.ran("stop")


# --- choosing sources and targets --------------------------------------------------------------
def live_stack_commands(fake) -> list[str]:
    return [x for x in cmds(fake) if x.startswith("docker compose")]


def test_source_supabase_alone_never_touches_n8n(host, capsys):
    host.write_snapshot(key="f" * 64)  # n8n's key does not matter to a database source
    assert restore(host, "--source", "supabase") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert ("supabase: dump restored into a scratch database, row counts match the manifest (2 tables, 12 rows); "
            "production untouched") in lines
    assert "restore ok: snapshot bbbb2222; supabase checked" in lines
    assert live_stack_commands(host.fake) == ["docker compose -p n8n ps -q postgres"]  # the provisioning check
    for never in ("n8n-backup", "curl", "<ignore interrupts>", "alter database", "create database", "n8n-drill"):
        assert not host.fake.ran(never), never
    for label in SCRATCH_LAPS:
        assert re.search(rf"^  {re.escape(label)}\s+[0-9.]+ s$", out, re.M), label
    assert "safety snapshot" not in out and "n8n ready" not in out
    # the dump's list is read where the dump already is, once, before the restore that uses it
    box = f"n8n-restore-scratch-{os.getpid()}-supabase"
    listed = host.fake.index(f"docker exec {box} pg_restore -l /tmp/restore/supabase.dump")
    assert listed < host.fake.index(f"docker exec {box} pg_restore -U postgres")
    assert sum("pg_restore -l" in c for c in host.fake.commands()) == 1


def last_backup_dumped(host, major: int) -> None:
    """This server's last backup (last-manifest.json) as the snapshot's manifest, Supabase's major `major`."""
    m = json.loads((host.staging / "manifest.json").read_text())
    m["sources"]["supabase"]["server_version_num"] = major * 10000 + 8
    host.backup_dir.mkdir(parents=True, exist_ok=True)
    (host.backup_dir / "last-manifest.json").write_text(json.dumps(m))


def test_a_database_alone_gets_its_scratch_started_while_restic_restores_the_dump(host, capsys):
    """PostgreSQL initialises itself while the snapshot is found and the dump comes (the box
    mounts a directory of its own, which the dump enters afterwards); the major is the last
    backup's, checked against the snapshot's before the box is used."""
    last_backup_dumped(host, 15)
    assert restore(host, "--source", "supabase") == 0
    i, c = host.fake.index, cmds(host.fake)
    runs = [x for x in c if x.startswith("docker run -d --name n8n-restore-scratch")]
    assert len(runs) == 1 and runs[0].endswith("pgvector/pgvector:pg15")
    assert i("docker run -d --name n8n-restore-scratch") < i("restic snapshots") < i("restic restore") < i("pg_isready")
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out


def test_a_scratch_started_early_for_another_major_is_replaced_by_the_snapshots(host, capsys):
    last_backup_dumped(host, 16)  # the server dumps 16 now; the snapshot chosen is older, 15
    assert restore(host, "--source", "supabase") == 0
    box = f"n8n-restore-scratch-{os.getpid()}-supabase"
    runs = [x for x in cmds(host.fake) if x.startswith(f"docker run -d --name {box}")]
    assert [r.rsplit(" ", 1)[1] for r in runs] == ["pgvector/pgvector:pg16", "pgvector/pgvector:pg15"]
    i = host.fake.index
    assert i("restic restore") < i(f"docker rm -f -v {box}") < i("pgvector/pgvector:pg15") < i("pg_isready")
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out
    assert "the scratch box started early (pgvector/pgvector:pg16) is not the snapshot's" in host.logtext()


@pytest.mark.parametrize("args", [(), ("--source", "n8n", "--source", "supabase")], ids=["everything", "with n8n"])
def test_no_scratch_is_started_early_when_n8n_comes_first(host, args):
    """n8n's own restore comes first: a box started early would wait idle beside it."""
    last_backup_dumped(host, 15)
    assert restore(host, "--no-safety-snapshot", *args) == 0
    run = host.fake.index("docker run -d --name n8n-restore-scratch")
    assert run > host.fake.index("restic restore") and run > host.fake.index("curl")  # after n8n is ready


def test_the_early_scratch_is_the_snapshots_first_database_and_best_effort(host, capsys):
    """The box started early is for the database the restore comes to first (the snapshot's order,
    not the command line's); an image not on the server starts none early, and the restore goes on."""
    host.write_snapshot(databases=BOTH)
    last_backup_dumped(host, 15)
    assert restore(host, "--source", "analytics", "--source", "supabase") == 0
    pid, i = os.getpid(), host.fake.index
    assert i(f"docker run -d --name n8n-restore-scratch-{pid}-supabase") < i("restic restore") \
        < i(f"docker run -d --name n8n-restore-scratch-{pid}-analytics")
    assert "restore ok: snapshot bbbb2222; supabase, analytics checked" in capsys.readouterr().out

    host.fake.calls.clear()
    host.fake.on("docker image inspect pgvector/pgvector:pg15", rc=1, stderr="Error: No such image\n")
    assert restore(host, "--source", "supabase") == 0
    assert i("restic restore") < i("docker run -d --name n8n-restore-scratch")
    assert "supabase checked" in capsys.readouterr().out


def test_an_early_scratch_goes_when_no_snapshot_is_found(host, capsys):
    last_backup_dumped(host, 15)
    assert restore(host, "--source", "supabase", "--snapshot", "deadbeef") == 3
    box = f"n8n-restore-scratch-{os.getpid()}-supabase"
    assert host.fake.index(f"docker run -d --name {box}") < host.fake.index(f"docker rm -f -v {box}")
    assert os.listdir(host.backup_dir / "restore") == []
    assert "no snapshot 'deadbeef' found" in capsys.readouterr().err


def test_an_early_scratch_that_does_not_start_leaves_the_restore_to_start_its_own(host, capsys):
    last_backup_dumped(host, 15)
    host.fake.on("docker run -d --name n8n-restore-scratch", rc=125, stderr="docker: Error response from daemon\n",
                 times=1)
    assert restore(host, "--source", "supabase") == 0
    runs = [i for i, c in enumerate(cmds(host.fake)) if c.startswith("docker run -d --name n8n-restore-scratch")]
    assert len(runs) == 2 and runs[0] < host.fake.index("restic restore") < runs[1]
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out


def last_backup_was(host, short: str, made_as: str = HOST) -> None:
    """This server's last backup in its local repository (last-snapshot, as n8n-backup writes it)."""
    host.backup_dir.mkdir(parents=True, exist_ok=True)
    (host.backup_dir / "last-snapshot").write_text(f"{short}{'0' * 56} {made_as}\n")


def test_the_newest_snapshot_is_read_from_the_repositorys_directory(tmp_path):
    snaps = tmp_path / "restic" / "snapshots"
    snaps.mkdir(parents=True)
    for short, when in (("aaaa1111", 100), ("bbbb2222", 300), ("cccc3333", 200)):
        (snaps / f"{short}{'0' * 56}").write_text("encrypted")
        os.utime(snaps / f"{short}{'0' * 56}", (when, when))
    upload = snaps / f"dddd4444{'0' * 56}-tmp-3035644187"  # restic writing a snapshot: not one yet
    upload.write_text("")
    os.utime(upload, (900, 900))
    assert NEWEST_SNAPSHOT(str(tmp_path / "restic")) == "bbbb2222" + "0" * 56
    os.utime(snaps / f"cccc3333{'0' * 56}", (300, 300))  # two as new: restic's list decides
    assert NEWEST_SNAPSHOT(str(tmp_path / "restic")) is None
    assert NEWEST_SNAPSHOT(str(tmp_path / "none")) is None
    assert NEWEST_SNAPSHOT("rest:https://vault:8000/tst-1/") is None


def test_the_last_backup_when_newest_is_restored_without_restics_list(host, monkeypatch, capsys):
    """This server's last backup is the newest snapshot in its local repository: restic's list
    (its key derivation) is not read at all; the fetch that started at once is the restore's."""
    last_backup_was(host, "bbbb2222")
    monkeypatch.setattr(restore_mod, "newest_snapshot", lambda repo: "bbbb2222" + "0" * 56 if repo == LOCAL else None)
    assert restore(host, "--source", "supabase") == 0
    assert not restic_calls(host.fake, "snapshots") and restored_ids(host.fake) == ["bbbb2222"]
    out = capsys.readouterr().out
    assert f"snapshot bbbb2222 from {LOCAL}" in out and "restore ok: snapshot bbbb2222; supabase checked" in out
    assert f"bbbb2222: this server's last backup, the newest snapshot in {LOCAL}" in host.logtext()
    assert os.listdir(host.backup_dir / "restore") == []


@pytest.mark.parametrize("made_as,newest", [
    ("n8n-old", "bbbb2222"),  # the server's inventory name changed since: `latest` is this name's
    ("", "bbbb2222"),  # a last-snapshot without the name (written before it held one)
    (HOST, "cccc3333"),  # something newer in the repository (a safety snapshot)
], ids=["renamed", "no-name", "newer"])
def test_restics_list_is_read_unless_the_last_backup_is_surely_the_latest(host, monkeypatch, made_as, newest):
    last_backup_was(host, "bbbb2222", made_as=made_as)
    if not made_as:
        (host.backup_dir / "last-snapshot").write_text("bbbb2222" + "0" * 56 + "\n")
    monkeypatch.setattr(restore_mod, "newest_snapshot", lambda repo: newest + "0" * 56)
    assert restore(host, "--source", "supabase") == 0
    assert restic_calls(host.fake, "snapshots") and restored_ids(host.fake) == ["bbbb2222"]
    assert "newest snapshot" not in host.logtext() and "fetched early" in host.logtext()


def test_a_newest_last_backup_that_does_not_fetch_fails_as_the_list_tells(host, monkeypatch, capsys):
    """The fetch started without the list fails (a password that no longer opens the repository):
    the list is read then, for the reason it gives."""
    last_backup_was(host, "bbbb2222")
    monkeypatch.setattr(restore_mod, "newest_snapshot", lambda repo: "bbbb2222" + "0" * 56)
    wrong = "Fatal: wrong password or no key found\n"
    host.fake.on(lambda c: c.startswith("restic") and " restore " in c, rc=1, stderr=wrong)
    host.answers = {LOCAL: (1, "", wrong), VAULT: (1, "", wrong)}
    assert restore(host, "--source", "supabase") == 3
    err = capsys.readouterr().err
    assert "RESTIC_PASSWORD does not open it" in err
    assert os.listdir(host.backup_dir / "restore") == []


def test_a_newest_last_backup_that_did_not_fetch_is_fetched_again_as_the_list_chooses(host, monkeypatch, capsys):
    last_backup_was(host, "bbbb2222")
    monkeypatch.setattr(restore_mod, "newest_snapshot", lambda repo: "bbbb2222" + "0" * 56)
    host.fake.on(lambda c: c.startswith("restic") and " restore " in c, rc=1, stderr="Fatal: read error\n", times=1)
    assert restore(host, "--source", "supabase") == 0
    assert restic_calls(host.fake, "snapshots") and restored_ids(host.fake) == ["bbbb2222", "bbbb2222"]
    assert "bbbb2222: the early fetch failed; reading restic's snapshot list" in host.logtext()
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out
    assert os.listdir(host.backup_dir / "restore") == []


def restored_ids(fake: FakeRunner) -> list[str]:
    return [c.argv[c.argv.index("restore") + 1][:8] for c in restic_calls(fake, "restore")]


def test_the_last_backup_is_fetched_while_the_snapshot_list_is_read(host, capsys):
    """A database source alone, from the latest snapshot: restic fetches this server's last backup
    beside the list (restic's key derivation is not waited for twice); the list chooses that one,
    so it is fetched once, and nothing of the fetch is left behind."""
    last_backup_was(host, "bbbb2222")
    fetching = threading.Event()

    def fetch(argv, kw):
        fetching.set()
        return host._restic_restore(argv, kw)

    def listing(argv, kw):
        assert fetching.wait(5), "the snapshot list was read before the fetch began"
        return host._restic_snapshots(argv, kw)

    host.fake.on(lambda c: c.startswith("restic") and " restore " in c, call=fetch)
    host.fake.on(lambda c: c.startswith("restic") and " snapshots " in c, call=listing)
    assert restore(host, "--source", "supabase") == 0
    assert restored_ids(host.fake) == ["bbbb2222"]
    assert [c.kw["process"].signals for c in restic_calls(host.fake, "restore")] == [[]]  # early, used, not stopped
    assert "bbbb2222: fetched early (this server's last backup)" in host.logtext()
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out
    assert os.listdir(host.backup_dir / "restore") == []


@pytest.mark.parametrize("last,failing", [("aaaa1111", False), ("dddd4444", True)], ids=["older", "forgotten"])
def test_a_fetch_the_list_does_not_choose_is_thrown_away(host, capsys, last, failing):
    """The list decides: a last backup that is not the latest snapshot (an older one here; one
    that retention forgot, whose fetch fails) is thrown away, and the chosen one fetched."""
    last_backup_was(host, last)
    if failing:
        host.fake.on(lambda c: c.startswith("restic") and f" restore {last}" in c, rc=1,
                     stderr=f"Fatal: no matching ID found for prefix \"{last}\"\n")
    assert restore(host, "--source", "supabase") == 0
    assert restored_ids(host.fake) == [last, "bbbb2222"]
    assert host.fake.index("restic snapshots") < host.fake.index(" restore bbbb2222")
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out
    assert f"fetched {last} early, but the list chose bbbb2222" in host.logtext()
    assert os.listdir(host.backup_dir / "restore") == []


def fetch_until_stopped(host, short: str) -> list:
    """The early fetch of `short` runs until it is told to stop (5 s at most); the signals it got."""
    signals = []

    def fetch(argv, kw):
        process = kw["process"]
        signals.append(process.signals)
        process.stopped.wait(5)
        return 143, "", "signal terminated received, cleaning up\n"

    host.fake.on(lambda c: c.startswith("restic") and f" restore {short}" in c, call=fetch)
    return signals


def test_a_fetch_not_wanted_is_stopped_at_once_and_leaves_nothing(host, capsys):
    """A fetch the list did not choose, or one of a restore that finds no snapshot, is stopped
    (SIGTERM: restic cleans up its lock) rather than waited for, and its files go."""
    last_backup_was(host, "aaaa1111")
    signals = fetch_until_stopped(host, "aaaa1111")
    assert restore(host, "--source", "supabase") == 0
    assert signals == [["TERM"]] and restored_ids(host.fake) == ["aaaa1111", "bbbb2222"]
    assert os.listdir(host.backup_dir / "restore") == []

    host.fake.calls.clear()
    last_backup_was(host, "bbbb2222")
    signals = fetch_until_stopped(host, "bbbb2222")
    host.answers = {}  # no snapshot anywhere
    assert restore(host, "--source", "supabase") == 3
    assert signals == [["TERM"]] and restored_ids(host.fake) == ["bbbb2222"]
    assert os.listdir(host.backup_dir / "restore") == []
    assert "no snapshot 'latest' found" in capsys.readouterr().err


def test_a_failed_fetch_of_the_chosen_snapshot_fails_the_restore_as_its_own_would(host, capsys):
    last_backup_was(host, "bbbb2222")
    host.fake.on(lambda c: c.startswith("restic") and " restore " in c, rc=1, stderr="Fatal: read error\n")
    assert restore(host, "--source", "supabase") == 1
    assert restored_ids(host.fake) == ["bbbb2222"]
    err = capsys.readouterr().err
    assert "restore files:" in err and "restic" in err and str(host.log) in err
    assert os.listdir(host.backup_dir / "restore") == []


@pytest.mark.parametrize("args", [
    ("--source", "supabase", "--snapshot", "aaaa1111"),  # a snapshot asked for by name: the list finds it
    ("--source", "supabase", "--from", "offsite"),  # not the local repository
    ("--source", "supabase", "--from-host", "n8n-old"),  # another server's
    ("--no-safety-snapshot",),  # n8n too: its live restore comes first
    ("--source", "supabase", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite"),  # over a database
], ids=["named", "offsite", "other-host", "everything", "over-supabase"])
def test_nothing_is_fetched_before_the_list_when_it_may_not_be_the_last_backup(host, args):
    last_backup_was(host, "bbbb2222")
    restore(host, *args)
    assert not any(c.kw.get("process") for c in host.fake.calls), "a restic restore ran as an early fetch"
    restic = [c.argv for c in host.fake.calls if c.argv[0] == "restic"]
    listed = next(i for i, argv in enumerate(restic) if "snapshots" in argv)
    assert all(i > listed for i, argv in enumerate(restic) if "restore" in argv), restic


@pytest.mark.parametrize("isready,asked", [
    (dict(rc=2, stderr="127.0.0.1:5432 - no response\n"), 240),  # a minute, every 0.25 s
    (dict(rc=1, stderr="Error response from daemon: container 1f2e is not running\n"), 1)])  # it stopped
def test_a_scratch_postgresql_that_never_starts_is_named_with_its_last_lines_and_removed(host, capsys, isready,
                                                                                        asked):
    host.fake.on("pg_isready", **isready)
    host.fake.on("docker logs --tail 30", stdout="FATAL:  could not create shared memory segment\n")
    assert restore(host, "--source", "supabase") == 1
    box = f"n8n-restore-scratch-{os.getpid()}-supabase"
    err = capsys.readouterr().err
    assert ("supabase: the scratch PostgreSQL (pgvector/pgvector:pg15) did not start: its last lines are in "
            f"{host.log}; nothing of supabase was restored") in err
    assert "FATAL:  could not create shared memory segment" in host.logtext()  # kept before the box goes
    assert sum("pg_isready" in c for c in host.fake.commands()) == asked
    assert set(host.fake.sleeps) <= {0.25}
    assert not host.fake.ran(f"docker exec -i {box} psql")  # nothing sent to it
    assert host.fake.index("docker logs --tail 30") < host.fake.index(f"docker rm -f -v {box}")


def test_a_drill_whose_postgresql_never_starts_fails_naming_it(host, capsys):
    pg = f"n8n-drill-pg-{os.getpid()}"
    host.fake.on(f"docker exec {pg} pg_isready", rc=1, stderr=f"Error response from daemon: container {pg} is not running\n")
    assert restore(host, "--drill") == 1
    err = capsys.readouterr().err
    assert re.search(rf"the drill's PostgreSQL \(\S+\) did not start: its last lines are in {re.escape(str(host.log))}; "
                     "production untouched", err), err
    assert not host.fake.ran(f"docker exec -i {pg} pg_restore")
    assert host.fake.ran(f"docker rm -f -v n8n-drill-n8n-{os.getpid()} {pg}")


def lock_held(host) -> bool:
    """Whether someone (the restore) holds the backup lock now."""
    probe = common.Lock(str(host.tmp / "lock" / "n8n-backup.lock"))
    if not probe.try_acquire():
        return True
    os.close(probe.fd)
    return False


def test_source_supabase_over_a_named_target_restores_it_alone(host, capsys):
    locked = []
    host.fake.on("--clean --if-exists", call=lambda argv, kw: locked.append(lock_held(host)))
    backup_locked = []
    host.fake.on("n8n-backup", call=lambda argv, kw: backup_locked.append(lock_held(host)),
                 stdout="backup ok: snapshot dddd4444 (n8n: 3 workflows, 2 credentials) off-host: none in 7s\n")
    assert restore(host, "--source", "supabase", "--target", SECRET_URL, "--confirm-overwrite") == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert "supabase: restored over the named target database in one transaction" in lines
    assert "restore ok: snapshot bbbb2222; supabase restored" in lines
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == SECRET_URL and target_run.kw["env"]["PGDATABASE"] == "postgres"
    assert locked == [True]  # no backup dumps it meanwhile
    # a copy of what is overwritten is taken first, before the lock (the backup takes it itself)
    assert "safety snapshot: snapshot dddd4444 (n8n: 3 workflows, 2 credentials) off-host: none in 7s" in lines
    assert host.fake.index("n8n-backup --tag pre-restore --no-offsite") < host.fake.index("--clean --if-exists")
    assert backup_locked == [False]
    assert re.search(r"^  safety snapshot\s+[0-9.]+ s$", cap.out, re.M)
    assert live_stack_commands(host.fake) == ["docker compose -p n8n ps -q postgres"]
    assert not host.fake.ran("n8n-restore-scratch")
    for c in host.fake.calls:
        assert "s3cr3t" not in c.cmd
    assert "s3cr3t" not in cap.out + cap.err + host.logtext()


def test_an_unknown_source_exits_2_naming_the_snapshots_sources(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--source", "nope", "--source", "supabase") == 2
    err = capsys.readouterr().err
    assert "n8n-restore: FAILED select sources: no source nope in snapshot bbbb2222: it has n8n, supabase, " \
           "analytics\n" == err
    for never in ("n8n-backup", "stop", "create database", "pg_restore", "docker run"):
        assert not host.fake.ran(never), never
    assert not os.path.exists(host.restored_into[0])


@pytest.mark.parametrize("sources", [[], ["--source", "n8n"]])
def test_target_url_without_a_database_source_exits_2_before_any_restic(host, capsys, sources):
    # the snapshot has one database, but the operator named none: nothing is guessed over a URL
    assert restore(host, *sources, "--target", SECRET_URL, "--confirm-overwrite") == 2
    err = capsys.readouterr().err
    assert ("n8n-restore: FAILED check host: --target URL needs --source NAME (the database to restore over it)\n"
            == err)
    assert not host.fake.ran("restic")
    for never in ("n8n-backup", "stop", "create database", "--clean", "pg_restore"):
        assert not host.fake.ran(never), never
    assert "s3cr3t" not in err + host.logtext()


def test_target_url_with_two_database_sources_exits_2(host, capsys):
    host.write_snapshot(databases=BOTH)
    # two named: before any restic
    assert restore(host, "--source", "supabase", "--source", "analytics", "--target", SECRET_URL,
                   "--confirm-overwrite") == 2
    err = capsys.readouterr().err
    assert "FAILED check host: --target URL needs exactly one --source" in err
    assert not host.fake.ran("restic")
    for never in ("n8n-backup", "stop", "create database", "--clean", "pg_restore"):
        assert not host.fake.ran(never), never
    assert "s3cr3t" not in err + host.logtext()


def test_target_url_without_confirmation_exits_2(host, capsys):
    assert restore(host, "--source", "supabase", "--target", SECRET_URL) == 2
    err = capsys.readouterr().err
    assert "FAILED check host: --target other than scratch overwrites that database: add --confirm-overwrite" in err
    assert not host.fake.ran("restic") and "s3cr3t" not in err + host.logtext()


def test_two_database_sources_are_each_checked_in_scratch(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--no-safety-snapshot") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert ("analytics: dump restored into a scratch database, row counts match the manifest (2 tables, 2530 rows); "
            "production untouched") in lines
    assert "restore ok: snapshot bbbb2222; n8n ready; 3 workflows, 2 credentials as in the manifest" in lines
    pid = os.getpid()
    runs = [x for x in cmds(host.fake) if x.startswith("docker run -d --name n8n-restore-scratch")]
    assert [r.split()[4] for r in runs] == [f"n8n-restore-scratch-{pid}-supabase", f"n8n-restore-scratch-{pid}-analytics"]
    assert runs[0].endswith("pgvector/pgvector:pg15") and runs[1].endswith("pgvector/pgvector:pg16")
    counts = next(c for c in host.fake.calls if f"n8n-restore-scratch-{pid}-analytics" in c.cmd and "query_to_xml" in c.cmd)
    assert counts.argv[-1] == stack.counts_sql(["public", "reporting"])
    assert host.fake.ran("-L /tmp/restore/analytics.scratch.list")
    for label in (*SCRATCH_LAPS, *(x.replace("supabase", "analytics") for x in SCRATCH_LAPS)):
        assert re.search(rf"^  {re.escape(label)}\s+[0-9.]+ s$", out, re.M), label
    assert host.fake.index(f"docker rm -f -v n8n-restore-scratch-{pid}-supabase") < \
        host.fake.index(f"n8n-restore-scratch-{pid}-analytics")


def test_one_named_database_over_its_target_and_the_others_untouched(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--source", "analytics", "--target", ANALYTICS_URL, "--confirm-overwrite") == 0
    lines = capsys.readouterr().out.splitlines()
    assert "analytics: restored over the named target database in one transaction" in lines
    assert "restore ok: snapshot bbbb2222; analytics restored" in lines
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == ANALYTICS_URL and "postgres:16" in target_run.argv
    assert any(a.endswith("analytics/analytics.dump:/tmp/restore.dump:ro")
               for c in host.fake.calls if "--clean" in c.cmd for a in c.argv)
    assert not host.fake.ran("n8n-restore-scratch")
    # the dump's list, read from the file (mounted read-only, no network) in a container of its own
    [listed] = [c for c in host.fake.calls if "pg_restore -l" in c.cmd]
    assert re.fullmatch(r"docker run --rm --network none -v \S+/analytics/analytics\.dump:/tmp/restore\.dump:ro "
                        r"\S+ pg_restore -l /tmp/restore\.dump", listed.cmd), listed.cmd
    assert host.fake.index("n8n-backup --tag pre-restore --no-offsite") < host.fake.index("--clean --if-exists")
    assert live_stack_commands(host.fake) == ["docker compose -p n8n ps -q postgres"]
    assert "an4lytics" not in " ".join(cmds(host.fake)) + host.logtext()


def test_a_named_target_without_safety_snapshot_skips_it(host, capsys):
    assert restore(host, "--source", "supabase", "--target", SECRET_URL, "--confirm-overwrite",
                   "--no-safety-snapshot") == 0
    out = capsys.readouterr().out
    assert "restore ok: snapshot bbbb2222; supabase restored" in out.splitlines()
    assert not host.fake.ran("n8n-backup") and "safety snapshot" not in out


def test_a_failed_safety_snapshot_leaves_the_named_target_untouched(host, capsys):
    host.fake.on("n8n-backup", rc=1, stderr="n8n-backup: FAILED supabase: connection refused\n")
    assert restore(host, "--source", "supabase", "--target", SECRET_URL, "--confirm-overwrite") == 1
    err = capsys.readouterr().err
    assert ("n8n-restore: FAILED safety snapshot: the safety snapshot failed, nothing was changed (n8n-backup: "
            "FAILED supabase: connection refused); --no-safety-snapshot skips it") in err
    assert not host.fake.ran("--clean") and not host.fake.ran("docker run --rm --network host")
    assert "s3cr3t" not in err + host.logtext()


def test_a_scratch_check_alone_takes_no_safety_snapshot(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--source", "supabase", "--source", "analytics") == 0
    assert not host.fake.ran("n8n-backup") and "safety snapshot" not in capsys.readouterr().out


def test_supabase_target_and_target_for_another_source_together(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--source", "supabase", "--source", "analytics", "--supabase-target", SECRET_URL,
                   "--confirm-supabase-overwrite") == 0
    assert "restore ok: snapshot bbbb2222; supabase restored; analytics checked" in capsys.readouterr().out
    assert restore(host, "--source", "analytics", "--supabase-target", SECRET_URL,
                   "--confirm-supabase-overwrite") == 2
    assert "--supabase-target is the target of the source supabase, which no --source chose" in \
        capsys.readouterr().err
    assert restore(host, "--source", "supabase", "--target", ANALYTICS_URL, "--supabase-target", SECRET_URL,
                   "--confirm-overwrite") == 2
    assert "--target and --supabase-target name two databases for the source supabase" in capsys.readouterr().err


def test_drill_checks_every_database_in_scratch(host, capsys):
    host.write_snapshot(databases=BOTH)
    assert restore(host, "--drill") == 0
    out = capsys.readouterr().out
    assert "drill ok: snapshot bbbb2222 restores; n8n ready on it; 3 workflows, 2 credentials (2 decrypt)" in \
        out.splitlines()
    pid = os.getpid()
    for name in ("supabase", "analytics"):
        assert host.fake.ran(f"docker run -d --name n8n-restore-scratch-{pid}-{name}")
        for label in SCRATCH_LAPS:
            label = label.replace("supabase", name)
            assert re.search(rf"^  {re.escape(label)}\s+[0-9.]+ s$", out, re.M), label
    assert live_stack_commands(host.fake) == ["docker compose -p n8n ps -q postgres"]


def test_drill_of_a_database_source_alone(host, capsys):
    assert restore(host, "--drill", "--source", "supabase") == 0
    assert "drill ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out.splitlines()
    assert not host.fake.ran("n8n-drill")


def test_drill_refuses_a_target(host, capsys):
    assert restore(host, "--drill", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 2
    assert "FAILED check host: --supabase-target: a drill restores into throwaway containers only" in \
        capsys.readouterr().err
    assert not host.fake.ran("restic")


# --- the runbook (runbooks/restore.py): its input, checked before any host runs it --------------
def run_runbook(monkeypatch, **data) -> list[dict]:
    """runbooks/restore.py with `--data` values, on an n8n server; the command it would run."""
    return run_a_runbook(monkeypatch, "restore", data)


@pytest.mark.parametrize("sources", ["", "n8n"])
def test_runbook_target_without_a_database_source_is_refused(monkeypatch, capsys, sources):
    with pytest.raises(SystemExit) as e:
        run_runbook(monkeypatch, target=SECRET_URL, confirm_overwrite="yes", sources=sources)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == ("runbook: --data target=URL needs --data sources=NAME (the database source to restore over "
                   "it, e.g. sources=supabase)\n")
    assert "s3cr3t" not in err


def test_runbook_target_with_its_source_runs_the_restore(monkeypatch):
    [op] = run_runbook(monkeypatch, target=SECRET_URL, confirm_overwrite="yes", sources="supabase")
    assert op["command"] == (f"n8n-restore --snapshot latest --from auto --source supabase --target {SECRET_URL} "
                             "--confirm-overwrite")
    # --supabase-target names its source: no sources= needed (the DR drill restores n8n and supabase)
    [op] = run_runbook(monkeypatch, supabase_target=SECRET_URL, confirm_supabase_overwrite="yes")
    assert op["command"] == (f"n8n-restore --snapshot latest --from auto --supabase-target {SECRET_URL} "
                             "--confirm-supabase-overwrite")


CONFIGURED = [{"name": "n8n", "kind": "n8n"}, {"name": "supabase", "kind": "postgres", "url": SECRET_URL}]


def test_a_target_named_by_its_source_takes_the_configured_url_and_never_shows_it(host, capsys):
    """`--source supabase --target supabase`: the operator types no password; the URL comes from the
    server's settings (.env at deploy time) and reaches pg_restore only through the environment."""
    host.fake.on("n8n-backup", stdout="backup ok: snapshot dddd4444 (n8n: 3 workflows, 2 credentials) off-host: none in 7s\n")
    assert restore(host, "--source", "supabase", "--target", "supabase", "--confirm-overwrite", sources=CONFIGURED) == 0
    cap = capsys.readouterr()
    assert "restore ok: snapshot bbbb2222; supabase restored" in cap.out.splitlines()
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == SECRET_URL
    assert all("s3cr3t" not in c.cmd for c in host.fake.calls)
    assert "s3cr3t" not in cap.out + cap.err + host.logtext()


def test_a_target_name_that_is_no_database_source_exits_2_naming_the_choices(host, capsys):
    assert restore(host, "--source", "supabase", "--target", "supabse", "--confirm-overwrite", sources=CONFIGURED) == 2
    err = capsys.readouterr().err
    assert err == ("n8n-restore: FAILED check host: --target supabse: not a database source of this server "
                   "(scratch, or one of: supabase)\n")
    assert not [c for c in host.fake.calls if c.argv[0] == "restic" or c.argv[:2] == ["docker", "run"]]


DRILL_DB_URL = "postgresql://postgres:dr1ll-pass@db.supabase.example.test:5432/drill"
WITH_DRILL = [{"name": "n8n", "kind": "n8n"},
              {"name": "supabase", "kind": "postgres", "url": SECRET_URL, "drill_url": DRILL_DB_URL}]


def test_the_drill_target_takes_the_drill_database_in_one_transaction_and_checks_its_counts(host, capsys):
    host.fake.on(lambda c: "psql -AtF" in c and c.startswith("docker run"),
                 stdout="agent_metrics 5\nconversation_history 7\n")
    assert restore(host, "--source", "supabase", "--target", "drill", "--confirm-overwrite", sources=WITH_DRILL) == 0
    cap = capsys.readouterr()
    assert ("supabase: restored into the drill database in one transaction, row counts match the manifest "
            "(2 tables, 12 rows); production untouched") in cap.out.splitlines()
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == DRILL_DB_URL  # never the database it backs up
    assert "-1" in target_run.argv and "-j" not in target_run.argv
    assert target_run.kw["env"]["PGDATABASE"] == "drill"
    runs = [c for c in host.fake.calls if c.argv[:2] == ["docker", "run"] and c.kw.get("pgpass")]
    assert all(libpq_url(c) == DRILL_DB_URL for c in runs) and len(runs) == 3  # extension, restore, counts
    assert "dr1ll-pass" not in cap.out + cap.err + host.logtext()


def test_a_drill_database_whose_counts_differ_fails(host, capsys):
    host.fake.on(lambda c: "psql -AtF" in c and c.startswith("docker run"), stdout="agent_metrics 5\n")
    assert restore(host, "--source", "supabase", "--target", "drill", "--confirm-overwrite", sources=WITH_DRILL) == 1
    err = capsys.readouterr().err
    assert "the supabase dump restored into the drill database but its row counts differ from the manifest" in err


@pytest.mark.parametrize("args,message", [
    (["--source", "supabase", "--target", "drill"], "--target drill: supabase has no drill database on this server: "
                                                     "set its drill URL in .env (DR_DRILL_SUPABASE_URL"),
    (["--target", "drill"], "--target drill needs exactly one --source"),
])
def test_a_drill_target_without_its_database_or_its_source_is_refused_first(host, capsys, args, message):
    assert restore(host, *args, "--confirm-overwrite", sources=CONFIGURED) == 2
    assert message in capsys.readouterr().err
    assert not [c for c in host.fake.calls if "--clean" in c.cmd]


def test_supabase_target_drill_is_the_drill_database_of_supabase(host, capsys):
    host.fake.on(lambda c: "psql -AtF" in c and c.startswith("docker run"),
                 stdout="agent_metrics 5\nconversation_history 7\n")
    assert restore(host, "--no-safety-snapshot", "--supabase-target", "drill", "--confirm-supabase-overwrite",
                   sources=WITH_DRILL) == 0
    [target_run] = [c for c in host.fake.calls if "psql -1" in c.cmd]
    assert libpq_url(target_run) == DRILL_DB_URL and "-1" in target_run.argv


def test_a_snapshot_of_a_newer_n8n_is_never_restored_under_an_older_one(host, capsys):
    """A rebuilt server on group_data's 2.41.0 and a backup that n8n 2.41.1 wrote: refused before
    anything is changed (no safety snapshot, n8n not stopped)."""
    (host.stack / ".env").write_text(f"POSTGRES_PASSWORD=pg\nN8N_ENCRYPTION_KEY={KEY}\nN8N_VERSION=2.41.0\n")
    assert restore(host) == 2
    err = capsys.readouterr().err
    assert ("snapshot bbbb2222 was taken on n8n 2.41.1, newer than this server's 2.41.0: its database is migrated "
            "past 2.41.0. Move this server to 2.41.1 first (pyinfra inventory.py runbooks/emergency_deploy.py "
            "--data n8n_version=2.41.1), then restore; nothing was changed") in err
    assert not host.fake.ran("n8n-backup") and not host.fake.ran("stop")
    # the databases alone (n8n untouched) still restore
    assert restore(host, "--source", "supabase") == 0


def test_on_a_terminal_each_phase_is_reported_as_it_ends(host, capsys, monkeypatch):
    monkeypatch.setattr(common, "on_terminal", lambda: True)
    assert restore(host) == 0
    err = capsys.readouterr().err.splitlines()
    assert [re.sub(r" \([0-9.]+ s\)$", "", x) for x in err] == [
        "n8n-restore: find snapshot", "n8n-restore: restore files from restic",
        "n8n-restore: verify sha256 and encryption key", "n8n-restore: safety snapshot",
        "n8n-restore: pg_restore into n8n_restoring, verify counts",
        "n8n-restore: swap databases, start n8n, wait for readiness", *(f"n8n-restore: {x}" for x in SCRATCH_LAPS)]
    assert "restore: verify sha256 and encryption key (" in host.logtext()


def test_a_target_named_by_another_source_is_refused(host, capsys):
    """`--source a --target b` would put a's dump over b's live database."""
    sources = [*CONFIGURED, {"name": "analytics", "kind": "postgres", "url": "postgresql://a:b@h/analytics"}]
    assert restore(host, "--source", "supabase", "--target", "analytics", "--confirm-overwrite", sources=sources) == 2
    assert capsys.readouterr().err == ("n8n-restore: FAILED check host: --target analytics: that database takes only "
                                       "the dump of its own source (--source analytics)\n")


# --- the monthly drill tells the monitor -----------------------------------------------------
DRILL_URL = "https://status.test/ping/tok-secret/drill-n1"


def job_calls(fake, url):
    return [c for c in fake.calls if c.argv[0] == "curl" and url in (c.kw.get("input") or "")]


def test_a_drill_reports_success_and_failure_to_its_heartbeat_and_a_restore_does_not(host, capsys):
    reports = {"jobs": {"drill": DRILL_URL}, "curl_args": ["-k"]}
    assert restore(host, "--drill", reports=reports) == 0
    [ok] = job_calls(host.fake, DRILL_URL)
    assert "--data-binary" not in ok.argv and ok.kw["input"] == f'url = "{DRILL_URL}"\n'
    assert not any("tok-secret" in a for c in host.fake.calls for a in c.argv)
    host.fake.calls.clear()
    assert restore(host, "--drill", "--snapshot", "0123abcd", reports=reports) == 3
    [bad] = job_calls(host.fake, DRILL_URL + "/fail")
    assert "--data-binary" not in bad.argv  # the reason goes on stdin, beside the URL
    body = bad.kw["input"].split("\n")[1]
    assert body.startswith('data-binary = "restore drill failed: find snapshot: no snapshot \'0123abcd\' found')
    host.fake.calls.clear()
    assert restore(host, "--no-safety-snapshot", reports=reports) == 0
    assert job_calls(host.fake, DRILL_URL) == []  # a restore is not the drill


def test_a_prefix_naming_two_backups_is_refused_and_an_own_id_wins_over_a_copy(host, capsys):
    a = {**snap("abcd1111", "2026-11-28T03:17:00Z")}
    b = {**snap("abcd2222", "2026-11-29T03:17:00Z")}
    copy = {**snap("77770000", "2026-11-29T04:00:00Z"), "original": "abcd9999" + "0" * 56}
    host.answers = {LOCAL: (0, json.dumps([a, b, copy]), "")}
    assert restore(host, "--drill", "--snapshot", "abcd") == 2
    assert "'abcd' names several snapshots (abcd11110000, abcd22220000): give more of its digits" in \
        capsys.readouterr().err
    assert restore(host, "--drill", "--snapshot", "abcd2") == 0
    assert "snapshot abcd2222 from" in capsys.readouterr().out


# --- n8n's files (files.py): unpacked beside each volume while n8n runs, swapped in with the database
UPLOAD = bytes(range(256)) * 8
N8N_WITH_VOLUMES = {"name": "n8n", "kind": "n8n", "volumes": {"n8n_data": "/home/node/.n8n",
                                                              "n8n_files": "/home/node/.n8n-files"}}
VOLUMES = {"n8n_data": {"binaryData/workflows/w1/executions/7/upload": UPLOAD, "custom/echo/package.json": b"{}\n"},
           "n8n_files": {"report.pdf": b"%PDF-1.7"}}


def with_volumes(host: Host) -> dict:
    """The snapshot holds n8n's files; this host's volumes (other files now) answer `docker volume
    inspect`, and tar runs for real. Returns volume -> its directory."""
    host.write_snapshot(volumes=VOLUMES)
    dirs = {}
    for volume in VOLUMES:
        d = host.tmp / "docker-volumes" / f"n8n_{volume}" / "_data"
        d.mkdir(parents=True)
        (d / "written-since").write_text("a file the backup did not have\n")
        dirs[volume] = d
        host.fake.on(f"docker volume inspect -f {{{{.Mountpoint}}}} n8n_{volume}", stdout=f"{d}\n")
    host.fake.on(lambda c: c.startswith("tar "), call=run_for_real)
    return dirs


def files_restore(host: Host, *args: str) -> int:
    """A restore on a server whose n8n source has the two volumes (its settings, as the deploy writes them)."""
    return restore(host, *args, sources=[N8N_WITH_VOLUMES])


def listing(d) -> list[str]:
    return sorted(os.path.relpath(os.path.join(r, n), d) for r, _, names in os.walk(d) for n in names)


def test_n8ns_files_are_swapped_in_with_the_database_and_the_previous_ones_kept(host, capsys):
    dirs = with_volumes(host)
    assert files_restore(host, "--no-safety-snapshot") == 0
    out = capsys.readouterr().out
    i = host.fake.index
    # unpacked while n8n runs, swapped while it is stopped, before the databases
    assert i("-d n8n_restoring") < i(f"tar --numeric-owner --same-permissions --same-owner -C {dirs['n8n_data']}.restoring")
    assert i("-C " + str(dirs["n8n_files"]) + ".restoring") < i("stop n8n n8n-worker")
    assert listing(dirs["n8n_data"]) == ["binaryData/workflows/w1/executions/7/upload", "custom/echo/package.json"]
    assert (dirs["n8n_data"] / "binaryData/workflows/w1/executions/7/upload").read_bytes() == UPLOAD
    assert listing(dirs["n8n_files"]) == ["report.pdf"]
    for d in dirs.values():
        assert listing(f"{d}.before-restore") == ["written-since"] and not os.path.exists(f"{d}.restoring")
    lines = out.splitlines()
    assert (f"n8n files: n8n_data restored (2 files); the previous ones kept as {dirs['n8n_data']}.before-restore "
            "until the next restore") in lines
    assert "restore ok: snapshot bbbb2222; n8n ready; 3 workflows, 2 credentials, 3 files as in the manifest" in lines
    assert re.search(r"^  unpack n8n files \(n8n_data, n8n_files\)\s+[0-9.]+ s$", out, re.M)


def test_not_ready_puts_the_previous_files_back_with_the_database(host, capsys):
    dirs = with_volumes(host)
    host.fake.on("curl", stdout="502")
    assert files_restore(host, "--no-safety-snapshot") == 1
    assert "the restored one is kept as n8n_restore_failed (its files as <volume>.restore-failed)" in \
        capsys.readouterr().err
    for d in dirs.values():
        assert listing(d) == ["written-since"] and not os.path.exists(f"{d}.before-restore")
    assert listing(f"{dirs['n8n_files']}.restore-failed") == ["report.pdf"]


def test_a_failed_database_swap_leaves_the_files_as_they_were(host, capsys):
    dirs = with_volumes(host)
    host.fake.on("alter database", rc=1, stderr="ERROR: database \"n8n\" is being accessed by other users")
    assert files_restore(host, "--no-safety-snapshot") == 1
    assert "n8n is started again on its own database and files" in capsys.readouterr().err
    for d in dirs.values():
        assert listing(d) == ["written-since"]


def test_a_volume_this_stack_lacks_stops_the_restore_before_any_change(host, capsys):
    with_volumes(host)
    host.fake.on("docker volume inspect -f {{.Mountpoint}} n8n_n8n_files", rc=1, stderr="Error: No such volume")
    assert files_restore(host, "--no-safety-snapshot") == 4
    assert ("FAILED n8n files: this stack has no volume n8n_files (n8n_n8n_files), which snapshot bbbb2222 "
            "holds files of: run `pyinfra inventory.py deploy.py` first; nothing was changed") in capsys.readouterr().err
    assert not host.fake.ran("pg_restore") and not host.fake.ran("create database") and not host.fake.ran("stop n8n")


def test_an_archive_that_unpacks_short_of_the_manifest_changes_nothing(host, capsys):
    dirs = with_volumes(host)
    manifest = json.loads((host.staging / "manifest.json").read_text())
    manifest["sources"]["n8n"]["files"]["n8n_data"]["entries"] = 99
    (host.staging / "manifest.json").write_text(json.dumps(manifest))
    assert files_restore(host, "--no-safety-snapshot") == 1
    assert "the restored files of n8n_data are 9 entries, the manifest says 99; nothing was changed" in \
        capsys.readouterr().err
    assert not host.fake.ran("stop n8n") and listing(dirs["n8n_data"]) == ["written-since"]
    assert not os.path.exists(f"{dirs['n8n_data']}.restoring")  # cleaned up


def test_a_snapshot_made_before_files_were_backed_up_leaves_the_volumes_alone(host, capsys):
    assert files_restore(host, "--no-safety-snapshot") == 0
    assert ("n8n files: none in snapshot bbbb2222 (made before n8n's files were backed up); the volumes are left as "
            "they are") in capsys.readouterr().out.splitlines()
    assert not host.fake.ran("docker volume") and not host.fake.ran("tar ")


def test_the_drill_checks_each_archive_against_the_manifest(host, capsys):
    with_volumes(host)
    assert files_restore(host, "--drill") == 0
    manifest = json.loads((host.staging / "manifest.json").read_text())
    manifest["sources"]["n8n"]["files"]["n8n_files"]["entries"] = 5
    (host.staging / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert files_restore(host, "--drill") == 1
    assert ("the restored files of n8n_files are 1 entries, the manifest says 5; the live stack is not touched"
            in capsys.readouterr().err)


@pytest.mark.parametrize("files_entry", [
    {"../etc": {"archive": "n8n/files/../etc.tar", "entries": 1}},
    {"n8n_data": {"archive": "n8n/files/n8n_data.tar", "entries": "1"}},
    {"n8n_data": {"archive": "n8n/files/other.tar", "entries": 1}},
    ["n8n_data"],
])
def test_a_manifest_whose_files_are_not_its_archives_is_refused(files_entry):
    m = {"format": 2, "sources": {"n8n": {"kind": "n8n", "dump": "n8n/n8n-db.dump", "files": files_entry}},
         "files": {"n8n/n8n-db.dump": {}, "n8n/files/n8n_data.tar": {}}}
    with pytest.raises(restore_mod.ManifestError, match="its files .* are not archives among the files"):
        restore_mod.manifest_v2(m)


# --- one table or one schema of a database source (--table / --schema) ----------------------------
LIVE_COUNT = 'select count(*) from "public"."conversation_history"'
COPY_COUNT = 'select count(*) from "public"."conversation_history_restored_bbbb2222"'


def tables_host(host: Host, live_rows: int = 3, restored_rows: int = 7) -> list[str]:
    """Supabase configured; the live table has `live_rows`, the copy made from the snapshot `restored_rows`
    (the manifest says 7). Returns the rows written to the copy's COPY FROM STDIN."""
    f, copied = host.fake, []
    f.on(lambda c: "postgres:15 psql" in c and LIVE_COUNT in c, stdout=f"{live_rows}\n")
    f.on(lambda c: "postgres:15 psql" in c and COPY_COUNT in c, stdout=f"{restored_rows}\n")
    f.on("string_agg(quote_ident(attname)", stdout="id,lead_id,message\n")
    f.on(lambda c: "n8n-restore-scratch" in c and "to stdout" in c, write="1\tl1\thello\n2\tl2\tolá\n")
    f.on(lambda c: "from stdin" in c, call=lambda argv, kw: copied.append(kw["stdin"].read()))
    return copied


def table_restore(host: Host, *args: str) -> int:
    return restore(host, "--source", "supabase", *args, sources=CONFIGURED)


def test_one_table_is_restored_beside_the_live_one_and_nothing_else_is_touched(host, capsys):
    copied = tables_host(host)
    assert table_restore(host, "--table", "public.conversation_history") == 0
    out = capsys.readouterr().out
    c = cmds(host.fake)
    i = host.fake.index
    # the whole dump into a throwaway scratch database, the one table's rows from there into a new table
    assert i("pg_restore -U postgres -d postgres") < i('copy (select id,lead_id,message from "public".'
                                                       '"conversation_history") to stdout')
    assert i('create table "public"."conversation_history_restored_bbbb2222" (like "public"."conversation_history" '
             'including defaults including constraints)') < i('copy "public"."conversation_history_restored_bbbb2222" '
                                                             '(id,lead_id,message) from stdin')
    assert copied == ["1\tl1\thello\n2\tl2\tolá\n"]
    assert not any("delete from" in x or "insert into" in x for x in c)  # the live table untouched
    assert not host.fake.ran("n8n-backup") and not host.fake.ran("stop n8n") and not host.fake.ran("n8n_restoring")
    assert ("supabase public.conversation_history: 3 rows live; snapshot bbbb2222's 7 rows restored beside it as "
            "public.conversation_history_restored_bbbb2222; the live table untouched") in out.splitlines()
    assert "restore ok: snapshot bbbb2222; 1 table(s) of supabase restored beside the live ones" in out
    assert SECRET_URL not in out + host.logtext() and "s3cr3t" not in " ".join(c)
    assert i("docker rm -f -v n8n-restore-scratch") > i("from stdin")


def test_over_the_live_table_replaces_its_rows_in_one_transaction_keeping_the_old_ones(host, capsys):
    tables_host(host)
    last_backup_dumped(host, 15)  # no scratch started early: the safety snapshot and the lock come first
    answers = iter(["3\n", "7\n"])  # the live table's count before the restore, then after it
    host.fake.on(lambda c: "postgres:15 psql" in c and LIVE_COUNT in c, call=lambda argv, kw: (0, next(answers), ""))
    assert table_restore(host, "--table", "conversation_history", "--over", "--confirm-overwrite") == 0
    out = capsys.readouterr().out
    i = host.fake.index
    (tx,) = [x for x in host.fake.calls if "delete from" in x.cmd]
    assert tx.argv[tx.argv.index("psql"):][:6] == ["psql", "-v", "ON_ERROR_STOP=1", "-qAtX", "-1", "-c"]
    assert tx.argv[-1] == (
        'drop table if exists "public"."conversation_history_before_restore_bbbb2222"; create table '
        '"public"."conversation_history_before_restore_bbbb2222" as table "public"."conversation_history"; delete from '
        '"public"."conversation_history"; insert into "public"."conversation_history" (id,lead_id,message) overriding '
        'system value select id,lead_id,message from "public"."conversation_history_restored_bbbb2222"; drop table '
        '"public"."conversation_history_restored_bbbb2222"')
    assert i("n8n-backup --tag pre-restore") < i("delete from")  # a safety snapshot first
    assert i("n8n-backup --tag pre-restore") < i("docker run -d --name n8n-restore-scratch")
    assert ("supabase public.conversation_history: 3 rows before, 7 after (snapshot bbbb2222's 7); the rows it had are "
            "kept as public.conversation_history_before_restore_bbbb2222") in out.splitlines()


def test_a_copy_whose_count_differs_from_the_manifest_never_replaces_the_live_rows(host, capsys):
    tables_host(host, restored_rows=6)
    assert table_restore(host, "--table", "conversation_history", "--over", "--confirm-overwrite") == 1
    assert ("public.conversation_history: 6 rows restored, the manifest says 7; the live table is untouched (the "
            "restored rows are in public.conversation_history_restored_bbbb2222)") in capsys.readouterr().err
    assert not host.fake.ran("delete from")


def test_a_replacement_the_database_refuses_leaves_the_live_table_as_it_was(host, capsys):
    tables_host(host)
    host.fake.on("delete from", rc=1, stderr="ERROR: update or delete violates foreign key constraint")
    assert table_restore(host, "--table", "conversation_history", "--over", "--confirm-overwrite") == 1
    assert ("its rows could not be replaced (details in " in capsys.readouterr().err)


@pytest.mark.parametrize("args, message", [
    (["--table", "public.leads"], "snapshot bbbb2222 has no table public.leads in supabase (it has: "
                                  "public.agent_metrics, public.conversation_history)"),
    (["--schema", "crm"], "snapshot bbbb2222 has no table in schema crm in supabase"),
])
def test_a_table_the_snapshot_lacks_is_refused_naming_what_it_has(host, capsys, args, message):
    tables_host(host)
    assert table_restore(host, *args) == 2
    assert message in capsys.readouterr().err
    assert not host.fake.ran("n8n-restore-scratch")


def test_a_table_gone_from_the_live_database_is_named_with_the_way_back(host, capsys):
    tables_host(host)
    host.fake.on(lambda c: "postgres:15 psql" in c and LIVE_COUNT in c, rc=1, stderr='relation does not exist')
    assert table_restore(host, "--table", "conversation_history") == 2
    assert "supabase has no table public.conversation_history now: restore the source whole into a scratch or " \
           "named database (--target) to get it back; nothing was changed" in capsys.readouterr().err


def test_a_schema_restores_each_of_its_tables(host, capsys):
    host.write_snapshot(databases={"supabase": (["public"], SUPA_COUNTS, 150008)})
    tables_host(host)
    host.fake.on(lambda c: "postgres:15 psql" in c and "select count(*)" in c and "_restored_" in c, stdout="5\n")
    host.fake.on(lambda c: "postgres:15 psql" in c and COPY_COUNT in c, stdout="7\n")
    assert table_restore(host, "--schema", "public") == 0
    out = capsys.readouterr().out
    assert "agent_metrics_restored_bbbb2222" in out and "conversation_history_restored_bbbb2222" in out
    assert "2 table(s) of supabase restored beside the live ones" in out


@pytest.mark.parametrize("args, message", [
    (["--table", "conversation_history"], "--table / --schema need exactly one database --source"),
    (["--source", "n8n", "--source", "supabase", "--table", "x"], "--table / --schema need exactly one database"),
    (["--source", "supabase", "--drill", "--table", "x"], "--table / --schema need exactly one database --source"),
    (["--source", "supabase", "--table", "x", "--over"], "--over replaces the live table's rows: add "
                                                         "--confirm-overwrite"),
    (["--source", "supabase", "--over", "--confirm-overwrite"], "--over replaces a table's rows: name it with "
                                                                "--table or --schema"),
    (["--source", "supabase", "--table", "Public.X"], "--table SCHEMA.NAME / --schema NAME: plain lower-case names"),
    (["--source", "supabase", "--table", "a.b.c"], "--table SCHEMA.NAME / --schema NAME: plain lower-case names"),
    (["--source", "supabase", "--table", "x", "--target", "supabase", "--confirm-overwrite"],
     "--table / --schema restore into the source's own database: leave out --target"),
])
def test_table_options_that_do_not_fit_exit_2_before_any_restic(host, capsys, args, message):
    assert restore(host, *args, sources=CONFIGURED) == 2
    assert message in capsys.readouterr().err
    assert not host.fake.ran("restic")


def test_runbook_table_and_over_reach_the_host_program(monkeypatch, capsys):
    [op] = run_runbook(monkeypatch, sources="supabase", table="public.conversation_history,leads", over="yes",
                       confirm_overwrite="yes")
    assert op["command"] == ("n8n-restore --snapshot latest --from auto --source supabase --table "
                             "public.conversation_history --table leads --over --confirm-overwrite")
    with pytest.raises(SystemExit) as e:
        run_runbook(monkeypatch, table="leads")
    assert e.value.code == 2 and "--data table=/schema= need --data sources=NAME" in capsys.readouterr().err


def test_a_snapshot_naming_another_volume_of_the_stack_is_refused(host, capsys):
    """Only this server's volumes of n8n's files, never PostgreSQL's or Caddy's by a manifest's say."""
    with_volumes(host)
    assert restore(host, "--no-safety-snapshot",
                   sources=[{**N8N_WITH_VOLUMES, "volumes": {"n8n_data": "/home/node/.n8n"}}]) == 4
    assert ("snapshot bbbb2222 holds files of the volume n8n_files, which is not one of this server's volumes of n8n's "
            "files (n8n_data: group_data n8n_volumes); nothing was changed") in capsys.readouterr().err
    assert not host.fake.ran("tar ") and not host.fake.ran("create database")


def test_the_drill_gives_its_throwaway_n8n_the_restored_home(host, capsys):
    with_volumes(host)
    assert files_restore(host, "--drill") == 0
    (run,) = [c for c in host.fake.calls if c.argv[:2] == ["docker", "run"] and "n8n-drill-n8n-" in c.cmd]
    mounts = [run.argv[i + 1] for i, a in enumerate(run.argv) if a == "-v"]
    assert [m.split(":")[1] for m in mounts] == ["/home/node/.n8n", "/home/node/.n8n-files"]
    assert all(m.split(":")[0].endswith(f"/files/{v}") for m, v in zip(mounts, VOLUMES, strict=True))


def test_a_restore_of_database_sources_alone_leaves_n8ns_files_in_the_repository(host, capsys):
    """n8n's files may be most of a snapshot: a Supabase restore neither brings them back nor needs them."""
    with_volumes(host)
    shutil.rmtree(host.staging / "n8n" / "files")  # as restic leaves them out with the exclude below
    assert files_restore(host, "--source", "supabase") == 0
    (call,) = restic_calls(host.fake, "restore")
    assert call.argv[-2:] == ["--exclude", "staging/n8n/files"]
    # every other file is still checked; a restore with n8n needs the archives and says they are missing
    assert files_restore(host) == 1
    assert "files of snapshot bbbb2222 do not match its manifest" in capsys.readouterr().err
    (call,) = restic_calls(host.fake, "restore")[1:]
    assert "--exclude" not in call.argv


# --- a database as Supabase has it: roles, extensions, auth and storage (pglist.py) ----------------
TOC = (Path(__file__).parent / "fixtures" / "supabase-shaped.toc").read_text()
SHAPED_COUNTS = {"auth.users": 30, "crm.leads": 60, "public.profiles": 3, "storage.buckets": 1, "storage.objects": 30}
SHAPED = {"supabase": (["auth", "crm", "public", "storage"], SHAPED_COUNTS, 170004,
                       {"roles": ["anon", "authenticated", "postgres", "supabase_auth_admin"],
                        "extensions": {"vector": "extensions"}, "managed_schemas": ["auth", "storage"]})}
PREPARE = lambda c: c.endswith(" -qAtX -v ON_ERROR_STOP=1")  # noqa: E731


def shaped(host, target_schemas="schema public\nschema extensions\nschema auth\nschema storage\nschema crm\n"):
    host.write_snapshot(databases=SHAPED)
    host.fake.on("pg_restore -l", stdout=TOC)
    host.fake.on(lambda c: "n8n-restore-scratch" in c and "query_to_xml" in c, stdout=counts_text(SHAPED_COUNTS))
    host.fake.on(PREPARE, stdout=target_schemas, stderr="NOTICE:  role supabase_auth_admin created\n")
    host.fake.on(lambda c: c.endswith("psql -v ON_ERROR_STOP=1 -qAtX -F  "),
                 stdout="auth users\ncrm leads\npublic profiles\nstorage buckets\nstorage objects\n")
    lists = {}
    on_scratch_restore(host.fake, lambda text, mode: lists.update(scratch=text))
    host.fake.on("--clean", call=lambda argv, kw: lists.update(target=open(
        next(a.split(":")[0] for a in argv if a.endswith(":/tmp/restore.list:ro"))).read()))
    host.fake.on("psql -1", call=lambda argv, kw: lists.update(pre=open(
        next(a.split(":")[0] for a in argv if a.endswith(":/tmp/pre.sql:ro"))).read()))
    return lists


def test_a_scratch_check_gets_the_roles_and_extensions_the_dump_names_and_all_of_it(host, capsys):
    lists = shaped(host, target_schemas="schema public\nschema extensions\n")
    assert restore(host, "--source", "supabase") == 0
    [prep] = [c for c in host.fake.calls if PREPARE(c.cmd)]
    assert prep.argv[:4] == ["docker", "exec", "-i", next(a for a in prep.argv if a.startswith("n8n-restore-scratch"))]
    assert "create role \"authenticated\" nologin" in prep.kw["input"]
    assert 'create extension if not exists "vector" with schema "extensions"' in prep.kw["input"]
    assert host.fake.index("-qAtX -v ON_ERROR_STOP=1") < host.fake.index("pg_restore -U postgres -d postgres")
    listed = lists["scratch"]
    assert "SCHEMA - auth" in listed and "POLICY crm leads leads_own" in listed and "ACL crm TABLE leads" in listed
    assert "EXTENSION - vector" not in listed and "EVENT TRIGGER" not in listed and "PUBLICATION" not in listed
    assert "restore ok: snapshot bbbb2222; supabase checked" in capsys.readouterr().out


def test_over_a_target_the_managed_schemas_keep_their_tables_and_get_their_rows_back(host, capsys):
    lists = shaped(host, "schema public\nschema extensions\nschema auth\nschema storage\nschema crm\n"
                         "publication supabase_realtime\n")
    assert restore(host, "--source", "supabase", "--no-safety-snapshot", "--supabase-target", SECRET_URL,
                   "--confirm-supabase-overwrite") == 0
    out = capsys.readouterr().out.splitlines()
    def i(fragment):  # the first call with `fragment` in its command line or its stdin
        return next(n for n, c in enumerate(host.fake.calls) if fragment in c.cmd + (c.kw.get("input") or ""))
    assert i("-qAtX -v ON_ERROR_STOP=1") < i("with recursive") < i("--clean") < i("psql -1")
    # emptied in the restore's own transaction, no trigger firing while the rows load
    assert lists["pre"] == ('set session_replication_role = replica;\ntruncate "auth"."users", "crm"."leads", '
                            '"public"."profiles", "storage"."buckets", "storage"."objects";\n')
    assert not any("truncate" in (c.kw.get("input") or "") for c in host.fake.calls)
    target = lists["target"]
    assert "TABLE DATA auth users" in target and "TABLE auth users" not in target and "SCHEMA - auth" not in target
    assert "TABLE crm leads" in target and "DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES supabase_admin" not in target
    # the target's Realtime publication gets back the table the restore makes again
    assert "PUBLICATION TABLE crm supabase_realtime leads" in target and "PUBLICATION - " not in target
    assert ("supabase: the target lacked the roles supabase_auth_admin: made NOLOGIN, without password (log-in roles "
            "get theirs from whoever runs the database)") in out
    assert ("supabase: rows of auth.users, storage.buckets, storage.objects replaced; those tables kept as the target "
            "has them") in out
    assert ("supabase: the target's own definitions kept, the snapshot's left out: TRIGGER auth.users "
            "on_auth_user_created, POLICY storage.objects objects_own") in out
    assert "restore ok: snapshot bbbb2222; supabase restored" in out
    assert all("s3cr3t" not in c.cmd for c in host.fake.calls)


def test_a_table_outside_the_snapshot_referring_to_a_managed_one_stops_before_any_change(host, capsys):
    shaped(host)
    host.fake.on(lambda c: c.endswith("psql -v ON_ERROR_STOP=1 -qAtX -F  "), stdout="auth users\nbilling invoices\n")
    assert restore(host, "--source", "supabase", "--no-safety-snapshot", "--supabase-target", SECRET_URL,
                   "--confirm-supabase-overwrite") == 1
    err = capsys.readouterr().err
    assert ("billing.invoices refer(s) to supabase's tables whose rows are restored (auth.users, storage.buckets, "
            "storage.objects) but are not in snapshot bbbb2222: they would be emptied; nothing of supabase was "
            "restored") in err
    assert not host.fake.ran("--clean") and not host.fake.ran("psql -1")


def test_a_target_that_cannot_be_given_the_roles_says_so_and_restores_nothing(host, capsys):
    shaped(host)
    host.fake.on(PREPARE, rc=3, stderr="ERROR:  permission denied to create role\n")
    assert restore(host, "--no-safety-snapshot", "--supabase-target", SECRET_URL, "--confirm-supabase-overwrite") == 1
    err = capsys.readouterr().err
    # n8n was restored first: the last line says so, and what was not
    assert ("FAILED supabase restore into the named target: n8n restored and running; supabase NOT restored: the "
            "target lacks roles supabase's dump names and could not be given them: ERROR:  permission denied to "
            "create role; nothing of supabase was restored") in err
    assert not host.fake.ran("--clean")
