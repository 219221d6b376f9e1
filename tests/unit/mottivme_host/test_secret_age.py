"""mottivme-host secret-age: each rotatable secret's age from the day the server first held its
value, a warning secret_warn_days before SOP 05's 90 days, the oldest age reported to the monitor;
the rotation starts the count again."""

import datetime as dt
import json
import os
import stat

import pytest

from mottivme_host import cli, common, secret_age, settings
from tests.helpers import FakeRunner, posted

PG, RESTIC = "pg-secret-value-0123", "restic-secret-value-4567"
URL = "https://status.test/ping/secrets-n1?token=hb-token-secret"
DAY0 = dt.datetime(2026, 9, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def server(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / ".env").write_text(f"N8N_VERSION=2.41.1\nPOSTGRES_PASSWORD={PG}\n")
    pw = tmp_path / "restic-password"
    pw.write_text(RESTIC + "\n")
    s = settings.from_dict({"stack_dir": str(stack), "secret_ages": str(tmp_path / "lib" / "secret-ages.json"),
                            "backup": {"password_file": str(pw)},
                            "reports": {"secrets_url": URL, "curl_args": ["-k"]}})
    return s, stack / ".env", pw


def at(days: int) -> dt.datetime:
    return DAY0 + dt.timedelta(days=days)


def test_a_fresh_server_counts_from_today_in_a_private_record_without_the_values(server):
    s, _, _ = server
    since = secret_age.refresh(s, at(0))
    assert since == {"POSTGRES_PASSWORD": at(0).date(), "RESTIC_PASSWORD": at(0).date()}
    mode = os.stat(s.secret_ages).st_mode
    assert stat.S_IMODE(mode) == 0o600 and stat.S_IMODE(os.stat(os.path.dirname(s.secret_ages)).st_mode) == 0o700
    text = open(s.secret_ages).read()
    assert PG not in text and RESTIC not in text
    assert secret_age.lines(s, since, at(0)) == ["POSTGRES_PASSWORD: 0 days old, due on 2026-11-30",
                                                 "RESTIC_PASSWORD: 0 days old, due on 2026-11-30"]
    # the same values later: the record is kept as it was, the count goes on
    before = open(s.secret_ages).read()
    assert secret_age.refresh(s, at(40)) == since and open(s.secret_ages).read() == before


def test_the_warning_starts_seven_days_before_ninety_and_says_what_to_run(server):
    s, _, _ = server
    since = secret_age.refresh(s, at(0))
    assert not any(line.startswith("!") for line in secret_age.lines(s, since, at(82)))
    warned = secret_age.lines(s, since, at(83))
    assert warned[1] == "! RESTIC_PASSWORD: 83 days old, due on 2026-11-30: rotate it (mottivme rotate-secrets)"
    assert secret_age.lines(s, since, at(95))[0].endswith("95 days old, due on 2026-11-30: rotate it now "
                                                         "(mottivme rotate-secrets)")


def test_a_value_changed_by_hand_counts_from_that_day(server):
    s, env, pw = server
    secret_age.refresh(s, at(0))
    pw.write_text("changed-by-hand-value\n")
    since = secret_age.refresh(s, at(50))
    assert since == {"POSTGRES_PASSWORD": at(0).date(), "RESTIC_PASSWORD": at(50).date()}
    assert secret_age.oldest(since, at(60)) == ("POSTGRES_PASSWORD", 60)


def test_report_sends_the_oldest_age_with_the_url_on_stdin_only(server, capsys):
    s, _, _ = server
    fake = FakeRunner()
    assert cli.main(["mottivme-host", "secret-age", "--report"], runner=fake, settings=s) == 0
    [call] = fake.calls
    assert call.argv[0] == "curl" and posted(call) == "0" and call.kw["input"] == common.curl_config(URL, "0")
    assert not any(URL in a or "hb-token-secret" in a for a in call.argv)
    out = capsys.readouterr().out
    assert "POSTGRES_PASSWORD: 0 days old" in out and PG not in out and RESTIC not in out


def test_a_report_the_monitor_refuses_fails_with_the_reason(server, capsys):
    s, _, _ = server
    fake = FakeRunner()
    fake.on("curl", rc=22, stderr="curl: (22) The requested URL returned error: 403\n")
    assert cli.main(["mottivme-host", "secret-age", "--report"], runner=fake, settings=s) != 0
    assert "the monitor did not take the secret-age report (curl: (22)" in capsys.readouterr().err


def test_a_broken_record_names_the_fix(server, capsys):
    s, _, _ = server
    os.makedirs(os.path.dirname(s.secret_ages))
    open(s.secret_ages, "w").write("{not json")
    assert cli.main(["mottivme-host", "secret-age"], runner=FakeRunner(), settings=s) != 0
    assert "move it aside and run again" in capsys.readouterr().err


def test_the_record_holds_one_fingerprint_per_secret_under_its_own_key(server):
    s, _, _ = server
    secret_age.refresh(s, at(0))
    record = json.load(open(s.secret_ages))
    assert set(record["secrets"]) == {"POSTGRES_PASSWORD", "RESTIC_PASSWORD"} and len(record["key"]) == 64


@pytest.mark.parametrize("content", ['["a list"]', '{"key": "not-hex", "secrets": {}}',
                                     '{"key": "' + "a" * 64 + '", "secrets": {"X": {"fingerprint": "f", "since": "soon"}}}'])
def test_a_damaged_record_is_one_line_with_its_fix_in_status_and_doctor(server, content):
    from mottivme_host import doctor, status

    s, _, _ = server
    os.makedirs(os.path.dirname(s.secret_ages))
    open(s.secret_ages, "w").write(content)
    with pytest.raises(common.Fail, match="is damaged: move it aside and run again"):
        secret_age.refresh(s)
    assert any(line.startswith("! secret ages:") and "damaged" in line for line in status.lines(s, FakeRunner()))
    assert any(level == "WARN" and check == "secret age" for level, check, *_ in doctor.check(s, FakeRunner()))


@pytest.fixture
def sao_paulo(monkeypatch):
    """The server's clock zone as the deploy sets it."""
    import time

    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_days_turn_at_the_servers_midnight_not_utcs(server, sao_paulo):
    """22:30 in São Paulo is 01:30 UTC the next day: the value first held then dates from the local
    day, and the next morning it is a day old (UTC days would say 0, and turn at 21:00 local)."""
    s, _, _ = server
    since = secret_age.refresh(s, dt.datetime(2026, 9, 1, 1, 30, tzinfo=dt.UTC))
    assert since == {"POSTGRES_PASSWORD": dt.date(2026, 8, 31), "RESTIC_PASSWORD": dt.date(2026, 8, 31)}
    assert secret_age.oldest(since, dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC))[1] == 1
    assert secret_age.lines(s, since, dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC))[0] == \
        "POSTGRES_PASSWORD: 1 days old, due on 2026-11-29"
