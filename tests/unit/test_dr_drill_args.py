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
