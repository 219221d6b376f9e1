"""The host programs' entry point: signals, settings it cannot read, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys

from mottivme_host import cli, settings
from tests.helpers import ROOT, FakeRunner

PROBE = """
import signal, sys
sys.path.insert(0, {root!r})
from mottivme_host import cli, settings
def fake_main(ns, s, runner):
    print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
    return 0
cli._commands = lambda: {{"set-version": type("M", (), {{"__doc__": "x", "add_arguments": staticmethod(lambda p: None),
                                                     "main": staticmethod(fake_main)}})}}
sys.exit(cli.main(["mottivme-host", "set-version"], settings=settings.Settings()))
"""


def test_signals_the_caller_ignores_stay_ignored():
    """deploy-version ignores interrupts from its switch on and then runs n8n-restore: that child must
    not make SIGTERM/SIGHUP stop it again (the bash it replaces could not)."""
    def ignore():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)

    r = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT))], preexec_fn=ignore,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["True", "True"], r.stderr
    r = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT))], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["False", "False"], r.stderr  # otherwise: they interrupt, with its clean-up


def test_settings_it_cannot_read_are_one_line(tmp_path, capsys):
    bad = tmp_path / "host.json"
    for text in ("{not json", json.dumps({"no_such_key": 1}), json.dumps({"backup": {"keep": {"hourly": 1}}})):
        bad.write_text(text)
        try:
            settings.load(str(bad))
        except SystemExit as e:
            message = str(e)
        assert message.startswith(f"mottivme-host: cannot read the settings {bad}") and "\n" not in message
    bad.write_text("{}")
    bad.chmod(0)
    if os.geteuid() == 0:  # root reads it anyway: as nobody
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                            f"import sys; sys.path.insert(0, {str(ROOT)!r}); from mottivme_host import settings; "
                            f"settings.load({str(bad)!r})"], capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "run it as root" in r.stderr, r.stderr


def test_ctrl_c_before_a_program_handles_it_is_one_line(capsys):
    def interrupted(ns, s, runner):
        raise KeyboardInterrupt

    module = type("M", (), {"__doc__": "x", "add_arguments": staticmethod(lambda p: None),
                            "main": staticmethod(interrupted)})
    saved = cli._commands
    cli._commands = lambda: {"restart": module}
    try:
        assert cli.main(["n8n-restart"], runner=FakeRunner(), settings=settings.Settings()) == 130
    finally:
        cli._commands = saved
    assert capsys.readouterr().err == "n8n-restart: FAILED interrupted\n"


def test_a_database_url_loses_only_its_password():
    from mottivme_host.stack import without_password

    assert without_password("postgresql://postgres:pa%40ss%3Aw@db.x.supabase.co:5432/postgres?sslmode=require") == (
        "postgresql://postgres@db.x.supabase.co:5432/postgres?sslmode=require", "pa@ss:w")
    assert without_password("postgres://u@h/db") == ("postgres://u@h/db", "")
    assert without_password("postgresql://postgres.ref:p@aws-0.pooler.supabase.com:6543/postgres")[0] == \
        "postgresql://postgres.ref@aws-0.pooler.supabase.com:6543/postgres"


def test_the_pgpass_file_is_private_escaped_and_removed(tmp_path):
    from mottivme_host.stack import PgPass

    with PgPass("postgresql://u:a%3Ab%5Cc@h:5432/d", str(tmp_path)) as pg:
        assert oct(os.stat(pg.path).st_mode & 0o777) == "0o600"
        assert open(pg.path).read() == "*:*:*:*:a\\:b\\\\c\n"  # libpq's escapes for : and \
        assert pg.url == "postgresql://u@h:5432/d" and f"{pg.path}:/run/mottivme-pgpass:ro" in pg.docker_args
    assert not os.path.exists(pg.path)
