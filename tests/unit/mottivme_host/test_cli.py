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


def test_compose_runs_the_recorded_compose_in_the_stack_directory(tmp_path):
    """`mottivme-host compose ARGS` is the one way to call compose on a server: the prefix the deploy
    recorded (Compose v2 on Debian 13, v1 on 12), in the stack's directory, with ARGS as given."""
    probe = ("import sys; sys.path.insert(0, {root!r}); from mottivme_host import cli, settings; "
             "s = settings.Settings(stack_dir={d!r}, compose=({sh!r}, '-c', 'echo \"$PWD|$*\"', 'compose', '-p', 'n8n')); "
             "sys.exit(cli.main(['mottivme-host', 'compose', 'exec', '-T', 'postgres', 'psql', '-c', 'select 1'], "
             "settings=s))").format(root=str(ROOT), d=str(tmp_path), sh="/bin/sh")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{tmp_path}|-p n8n exec -T postgres psql -c select 1"
