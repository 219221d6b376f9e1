"""The DR drill's own options: checked before anything is contacted."""

import pytest

from runbooks import dr_drill


@pytest.mark.parametrize("parts", ["d", "a,,b", "c;rm", ""])
def test_parts_outside_a_b_c_are_refused_before_any_host(parts, capsys):
    with pytest.raises(SystemExit) as e:
        dr_drill.main(["--parts", parts])
    assert e.value.code == 2 and "--parts" in capsys.readouterr().err


def test_a_failed_step_never_shows_a_connection_string_and_the_report_is_private(tmp_path, capsys):
    drill = dr_drill.Drill(source=None, env={}, rebuild="replace", parts={"b"})

    def fails():
        raise RuntimeError("psql: error: connection to postgresql://postgres:s3cr3t-pw@10.0.0.3:5432/postgres failed")

    assert drill.step("b", "marker row", fails) is None
    path = drill.report(tmp_path / "reports", {}, {})
    text = path.read_text() + capsys.readouterr().out
    assert "s3cr3t-pw" not in text and "connection to <url> failed" in text
    assert "- b marker row: psql: error: connection to <url> failed" in text
    assert path.stat().st_mode & 0o777 == 0o600


def test_part_b_without_a_drill_database_is_refused_before_any_host(tmp_path, capsys, monkeypatch):
    """Part (b) restores Supabase: only into DR_DRILL_SUPABASE_URL's database, never SUPABASE_DB_URL's."""
    from tests.helpers import GOOD_SECRETS, write_images_lock

    for k, v in {**GOOD_SECRETS, "N8N_SERVERS": "127.0.0.1:9", "BACKUP_S3_REPOSITORY": "s3:h.test/b/p",
                 "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "DR_DRILL_ENVIRONMENT": "staging",
                 "SUPABASE_DB_URL": "postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres",
                 "MOTTIVME_ENV_FILE": str(tmp_path / "none.env"),
                 "MOTTIVME_IMAGES_LOCK": str(write_images_lock(tmp_path / "images.lock"))}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DR_DRILL_SUPABASE_URL", raising=False)
    monkeypatch.delenv("MOTTIVME_TARGET", raising=False)
    assert dr_drill.main(["--parts", "b", "--rebuild", "wipe"]) == 2
    err = capsys.readouterr().err
    assert "part (b) restores Supabase into a database of its own and DR_DRILL_SUPABASE_URL is not set" in err
