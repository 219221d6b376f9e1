"""n8n-supabase-cleanup (mottivme_host/cleanup.py) driven by the recording fake: the dry-run counts,
the batch loop and its totals, the settings it refuses, the lock, and the URL kept out of argv."""

from __future__ import annotations

import fcntl
import os
import re

import pytest

from mottivme_host import cli, settings
from tests.helpers import FakeRunner, libpq_url, posted

SUPA_PASSWORD = "supa-S3cret-pw"
SUPA_URL = f"postgresql://postgres:{SUPA_PASSWORD}@db.example.test:5432/postgres"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
PSQL = ["postgres:17", "psql", "-v", "ON_ERROR_STOP=1", "-Atq"]  # the end of each psql's argv


def make_settings(tmp_path, url=SUPA_URL, retention=None, batch_size=3) -> settings.Settings:
    retention = {"workflow_executions": 90, "conversation_history": 180} if retention is None else retention
    return settings.from_dict({
        "postgres_image": "postgres:17", "run_dir": str(tmp_path / "run"),
        "backup": {"sources": [{"name": "n8n", "kind": "n8n"}, {"name": "analytics", "kind": "postgres", "url": "postgresql://other"}]
                   + ([{"name": "supabase", "kind": "postgres", "url": url}] if url else []),
                   "log": str(tmp_path / "log" / "n8n-backup.log")},
        "cleanup": {"retention_days": retention, "batch_size": batch_size, "log": str(tmp_path / "log" / "cleanup.log"),
                    "lock": str(tmp_path / "lock" / "cleanup.lock")}})


def answering(counts: dict[str, list[int]]):
    """A fake psql: the next number of `counts[table]` for each statement on that table."""
    r = FakeRunner()

    def psql(argv, kw):
        (table,) = re.findall(r'from "(\w+)"', kw["input"])[:1]
        return 0, f"{counts[table].pop(0)}\n", ""

    r.on("psql", call=psql)
    return r


def cleanup(s, r, *args) -> int:
    return cli.main(["n8n-supabase-cleanup", *args], runner=r, settings=s)


def log_of(s) -> str:
    with open(s.cleanup.log) as f:
        return f.read()


def test_dry_run_only_counts(tmp_path, capsys):
    s = make_settings(tmp_path)
    r = answering({"workflow_executions": [7], "conversation_history": [0]})
    assert cleanup(s, r, "--dry-run") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(STAMP + "dry-run: workflow_executions: 7 rows older than 90 days would be deleted", lines[0])
    assert re.fullmatch(STAMP + "dry-run: conversation_history: 0 rows older than 180 days would be deleted", lines[1])
    assert [c.kw["input"] for c in r.calls] == [
        "select count(*) from \"workflow_executions\" where created_at < now() - interval '90 days';\n",
        "select count(*) from \"conversation_history\" where created_at < now() - interval '180 days';\n"]
    assert log_of(s) == out  # the same lines, with their time, in the log


def test_deletes_in_batches_until_a_short_batch_and_totals(tmp_path, capsys):
    s = make_settings(tmp_path, batch_size=3)
    r = answering({"workflow_executions": [3, 3, 1], "conversation_history": [3, 0]})
    assert cleanup(s, r) == 0
    out = capsys.readouterr().out
    assert re.search(STAMP + "workflow_executions: deleted 7 rows older than 90 days\n", out)
    assert re.search(STAMP + "conversation_history: deleted 3 rows older than 180 days\n", out)
    inputs = [c.kw["input"] for c in r.calls]
    assert len(inputs) == 5  # 3 + 2 statements: each table stops at its first short batch
    assert inputs[0] == ('with d as (delete from "workflow_executions" where ctid in (select ctid from '
                         "\"workflow_executions\" where created_at < now() - interval '90 days' limit 3) "
                         "returning 1) select count(*) from d;\n")
    assert "interval '180 days' limit 3" in inputs[3]
    assert "deleted 7 rows" in log_of(s)


def test_the_password_reaches_psql_only_in_a_private_pgpass_file(tmp_path, capsys):
    s = make_settings(tmp_path)
    r = answering({"workflow_executions": [0], "conversation_history": [0]})
    assert cleanup(s, r) == 0
    assert len(r.calls) == 2
    for c in r.calls:
        assert c.argv[:6] == ["docker", "run", "--rm", "-i", "--network", "host"] and c.argv[-5:] == PSQL
        assert c.kw["env"] == {"PGHOST": "db.example.test", "PGPORT": "5432", "PGUSER": "postgres",
                               "PGDATABASE": "postgres"}
        assert libpq_url(c) == SUPA_URL and SUPA_PASSWORD not in c.cmd
    assert os.listdir(s.run_dir) == []  # removed after the last psql
    out, err = capsys.readouterr()
    assert SUPA_PASSWORD not in out + err + log_of(s)


@pytest.mark.parametrize("retention,what", [
    ({"x; drop table users": 90}, "'x; drop table users' is not a table name"),
    ({'bad"quote': 90}, "is not a table name"),
    ({"a.b.c": 90}, "is not a table name"),
    ({"workflow_executions": 0}, "workflow_executions: days kept: 0 is not a whole number"),
    ({"workflow_executions": "90 days"}, "'90 days' is not a whole number"),
    ({"workflow_executions": True}, "True is not a whole number"),
])
def test_bad_settings_are_refused_before_any_statement(tmp_path, capsys, retention, what):
    s = make_settings(tmp_path, retention={"conversation_history": 180, **retention})
    r = FakeRunner()
    assert cleanup(s, r) == 1
    out = capsys.readouterr().out
    assert "FAILED: cleanup_retention_days: " in out and what in out
    assert len(out.splitlines()) == 1
    assert r.calls == []


def test_schema_qualified_names_are_quoted_as_postgresql_reads_them(tmp_path, capsys):
    s = make_settings(tmp_path, retention={"public.Conversation_History": 30})
    r = FakeRunner()
    r.on("psql", stdout="0\n")
    assert cleanup(s, r, "--dry-run") == 0
    assert r.calls[0].kw["input"].startswith('select count(*) from "public"."conversation_history" where')
    assert "dry-run: public.Conversation_History: 0 rows older than 30 days" in capsys.readouterr().out


def test_without_a_url_there_is_nothing_to_do(tmp_path, capsys):
    s = make_settings(tmp_path, url="")
    r = FakeRunner()
    assert cleanup(s, r) == 0
    assert re.fullmatch(STAMP + r"the database supabase is not configured \(its URL is not set\): nothing to clean\n",
                        capsys.readouterr().out)
    assert r.calls == []


def test_a_second_cleanup_refuses_with_75(tmp_path, capsys):
    s = make_settings(tmp_path)
    os.makedirs(os.path.dirname(s.cleanup.lock))
    fd = os.open(s.cleanup.lock, os.O_RDWR | os.O_CREAT, 0o600)
    r = FakeRunner()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert cleanup(s, r) == 75
    finally:
        os.close(fd)
    assert "another cleanup is running" in capsys.readouterr().out
    assert r.calls == []
    assert cleanup(s, answering({"workflow_executions": [0], "conversation_history": [0]})) == 0  # released


def test_a_failed_statement_stops_with_one_failed_line(tmp_path, capsys):
    s = make_settings(tmp_path)
    r = FakeRunner()
    r.on("psql", rc=3, stderr="psql:<stdin>:1: ERROR:  relation \"workflow_executions\" does not exist\n")
    assert cleanup(s, r) == 1
    out = capsys.readouterr().out
    assert len(r.calls) == 1  # the next table is not tried
    (line,) = out.splitlines()
    assert re.fullmatch(STAMP + r"FAILED: workflow_executions: `docker run .*` exited 3: "
                        r'psql:<stdin>:1: ERROR:  relation "workflow_executions" does not exist', line)
    assert SUPA_PASSWORD not in out and line in log_of(s)


def test_an_answer_that_is_not_a_number_fails(tmp_path, capsys):
    s = make_settings(tmp_path)
    r = FakeRunner()
    r.on("psql", stdout="NOTICE: something\n")
    assert cleanup(s, r) == 1
    assert "FAILED: workflow_executions: psql answered 'NOTICE: something', not a number" in capsys.readouterr().out


CLEANUP_URL = "https://status.test/ping/tok-secret/cleanup-n1"


def with_reports(s):
    import dataclasses

    return dataclasses.replace(s, reports=settings.Reports(jobs={"cleanup": CLEANUP_URL}))


def reports_sent(r):
    """(URL line, POSTed body) of each report: both on curl's stdin, never in argv."""
    calls = [c for c in r.calls if c.argv[0] == "curl"]
    assert not any("tok-secret" in c.cmd for c in calls)
    return [(c.kw["input"].splitlines()[0] + "\n", posted(c)) for c in calls]


def test_the_cleanup_reports_success_and_failure_to_its_heartbeat_not_a_dry_run(tmp_path, capsys):
    s = with_reports(make_settings(tmp_path))
    r = answering({"workflow_executions": [2], "conversation_history": [0]})
    assert cleanup(s, r) == 0
    assert reports_sent(r) == [(f'url = "{CLEANUP_URL}"\n', None)]
    r = answering({"workflow_executions": [7], "conversation_history": [0]})
    assert cleanup(s, r, "--dry-run") == 0 and reports_sent(r) == []
    r = FakeRunner()
    # libpq quotes a connection string it cannot parse, password and all: the monitor never gets it
    r.on("psql", rc=2, stderr=f'psql: error: invalid URI query parameter: "{SUPA_URL}?x"\n')
    assert cleanup(s, r) == 1
    [(url, body)] = reports_sent(r)
    assert url == f'url = "{CLEANUP_URL}/fail"\n' and body.startswith("FAILED") and "<url>" in body
    assert SUPA_PASSWORD not in body
