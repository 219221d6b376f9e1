"""`mottivme-host psql` (no password on any command line) and `mottivme-host status`."""

import datetime as dt
import json
import os

import pytest

from mottivme_host import psql, settings, status
from mottivme_host.common import Fail
from tests.helpers import Call, FakeRunner, libpq_url, pgpass_of, pgpass_password

URL = "postgresql://postgres.abcd:s3cr%3Et@db.example.test:6543/postgres?sslmode=require"


def make(tmp_path, **backup):
    return settings.from_dict({
        "stack_dir": str(tmp_path), "compose": ["docker", "compose", "-p", "n8n"], "run_dir": str(tmp_path / "run"),
        "backup": {"dir": str(tmp_path), "sources": [{"name": "n8n", "kind": "n8n"},
                                                     {"name": "supabase", "kind": "postgres", "url": URL}], **backup}})


def test_a_source_url_becomes_libpq_environment_and_a_pgpass_file_never_arguments(tmp_path):
    s = make(tmp_path)
    with psql.access(s, psql.source(s, "supabase")) as db:
        argv = psql.command(s, None, True, db)
        call = Call(argv, {"env": db.env, "pgpass": pgpass_of(argv)})
        assert libpq_url(call) == "postgresql://postgres.abcd:s3cr>t@db.example.test:6543/postgres"
    assert db.env == {"PGHOST": "db.example.test", "PGPORT": "6543", "PGUSER": "postgres.abcd",
                      "PGDATABASE": "postgres", "PGSSLMODE": "require"}
    assert argv[:5] == ["docker", "run", "--rm", "-i", "-t"]
    assert argv[-5:] == ["postgres:17", "psql", "-X", "-v", "ON_ERROR_STOP=1"]
    assert not any("s3cr" in a or "abcd@" in a for a in argv)  # only names: values come from the environment
    assert os.listdir(s.run_dir) == []  # the pgpass file lives as long as psql


def test_drill_is_the_sources_drill_database_and_refused_without_one(tmp_path):
    drill = "postgresql://postgres:dr1ll@db.example.test:6543/drill"
    s = settings.from_dict({"run_dir": str(tmp_path / "run"), "backup": {"sources": [
        {"name": "n8n", "kind": "n8n"}, {"name": "supabase", "kind": "postgres", "url": URL, "drill_url": drill}]}})
    with psql.access(s, psql.source(s, "supabase"), drill=True) as db:
        argv = psql.command(s, "select 1", False, db, rows=True)
        assert libpq_url(Call(argv, {"env": db.env, "pgpass": pgpass_of(argv)})) == drill
    assert argv[-4:] == ["ON_ERROR_STOP=1", "-Atq", "-c", "select 1"]
    with pytest.raises(Fail) as e:
        psql.access(make(tmp_path), psql.source(make(tmp_path), "supabase"), drill=True)
    assert e.value.message.startswith("supabase has no drill database on this server")


@pytest.mark.parametrize("password", ["a:b", "a\\b", "a\\:b", "ends\\", ":", "#x*", "spa ce", "ü:ñ"])
def test_a_password_with_colons_and_backslashes_reaches_libpq_exactly(tmp_path, password):
    from urllib.parse import quote

    from mottivme_host.pgaccess import Access, pgpass_line

    line = pgpass_line(password)
    assert line.count("\n") == 1 and pgpass_password(line) == password
    url = f"postgresql://u:{quote(password, safe='')}@db.example.test:5432/d"
    with Access(url, str(tmp_path / "run")) as db:
        argv = ["docker", "run", *db.docker_args(), "postgres:17", "psql"]
        assert libpq_url(Call(argv, {"env": db.env, "pgpass": pgpass_of(argv)})) == f"postgresql://u:{password}@db.example.test:5432/d"


def test_a_pgpass_file_that_cannot_be_written_is_not_left_behind(tmp_path, monkeypatch):
    from mottivme_host import pgaccess

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pgaccess, "pgpass_line", full)
    with pytest.raises(OSError):
        with pgaccess.Access("postgresql://u:pw@h/d", str(tmp_path / "run")):
            pass
    assert os.listdir(tmp_path / "run") == []


def test_n8n_is_the_stack_database_and_one_statement_needs_no_tty(tmp_path):
    s = make(tmp_path)
    assert psql.source(s, "n8n") is None
    assert psql.n8n_command(s, "select 1", tty=True) == [
        "docker", "compose", "-p", "n8n", "exec", "-T", "postgres", "psql", "-U", "n8n", "-d", "n8n", "-c", "select 1"]
    # --rows (scripts, `mottivme access`): unaligned rows, no headers
    assert psql.n8n_command(s, "select 1", tty=False, rows=True)[-3:] == ["-Atq", "-c", "select 1"]


def test_an_unknown_database_names_the_choices(tmp_path):
    with pytest.raises(Fail) as e:
        psql.source(make(tmp_path), "supabse")
    assert e.value.message == "no database 'supabse' on this server: choose one of n8n, supabase"


def test_status_flags_what_needs_attention(tmp_path):
    (tmp_path / ".env").write_text("N8N_VERSION=2.41.1\n")
    finished = "2026-12-01T03:17:00+00:00"
    (tmp_path / "last-manifest.json").write_text(json.dumps(
        {"finished": finished, "files": {"a": {"size": 2_500_000}}, "sources": {"n8n": {}, "supabase": {}}}))
    fake = FakeRunner()
    fake.on(lambda c: c.startswith("docker ps"), stdout="n8n\tUp 2 hours (healthy)\npostgres\tRestarting (1) 5 seconds ago\n")
    now = dt.datetime(2026, 12, 1, 9, 17, tzinfo=dt.UTC)
    out = status.lines(make(tmp_path), fake, now)
    assert out[:3] == ["n8n 2.41.1", "n8n: Up 2 hours (healthy)", "! postgres: Restarting (1) 5 seconds ago"]
    assert out[3] == f"last backup: {finished} (6.0 h ago), 2.5 MB, sources n8n, supabase"
    late = status.lines(make(tmp_path), fake, now + dt.timedelta(days=2))
    assert late[3].startswith("! last backup:") and "54.0 h ago" in late[3]
    assert out[-1].startswith(("disk /:", "! disk /:"))


def test_status_shows_each_secret_age_and_flags_one_due_within_a_week(tmp_path):
    from mottivme_host import secret_age, settings

    (tmp_path / ".env").write_text("N8N_VERSION=2.41.1\nPOSTGRES_PASSWORD=pg-value-123\n")
    s = settings.from_dict({"stack_dir": str(tmp_path), "secret_ages": str(tmp_path / "lib" / "ages.json")})
    now = dt.datetime(2026, 12, 1, 9, 17, tzinfo=dt.UTC)
    secret_age.refresh(s, now - dt.timedelta(days=10))
    fake = FakeRunner()
    assert "POSTGRES_PASSWORD: 10 days old, due on 2027-02-19" in status.lines(s, fake, now)
    assert ("! POSTGRES_PASSWORD: 85 days old, due on 2027-02-19: rotate it (mottivme rotate-secrets)"
            in status.lines(s, fake, now + dt.timedelta(days=75)))
    assert "pg-value-123" not in "\n".join(status.lines(s, fake, now))


def test_a_failed_container_command_is_shown_by_its_image_and_program():
    """`docker run`'s options (names, mounts: the pgpass file's path) are left out of the one line."""
    from mottivme_host.run import CommandFailed, Result

    argv = ["docker", "run", "--rm", "-i", "--network", "host", "-e", "PGHOST", "-v", "/run/mottivme/pgpass.x:/run/pgpass:ro",
            "-e", "PGPASSFILE=/run/pgpass", "postgres:17", "psql", "-X", "-Atc", "show server_version_num"]
    assert str(CommandFailed(Result(argv, 2))) == "`docker run … postgres:17 psql -X -Atc show server_version_num` exited 2"
    assert str(CommandFailed(Result(["restic", "check"], 1))) == "`restic check` exited 1"
