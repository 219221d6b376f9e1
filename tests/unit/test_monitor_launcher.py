"""The monitor's command (mottivme_monitor/launcher.py): the monitor as its own user, with its secrets."""

import json
import os
import subprocess
import sys

from mottivme_monitor import launcher
from tasks import monitoring
from tests.helpers import ROOT


def test_secrets_reach_the_monitor_exactly_as_written(tmp_path):
    conf = {"channels": {"w": {"apprise": "${MONITOR_WHATSAPP_URL}"}}, "ping_token": "${MONITOR_PING_TOKEN}"}
    env = {"MONITOR_WHATSAPP_URL": "json://h/x?a=$HOME&b=`id`", "MONITOR_PING_TOKEN": "t0k#en"}
    secrets = tmp_path / "secrets.env"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        secrets.write_text(monitoring.secrets_env(conf))
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    launch = {"venv": "/opt/m/venv", "lib": "/opt/m/lib", "config": "/etc/m/config.json",
              "secrets": str(secrets), "user": "mottivme-monitor"}
    argv, got = launcher.command(launch, ["maintenance", "start", "n8n", "--minutes", "5"], {"PATH": "/bin"})
    assert argv == ["setpriv", "--reuid=mottivme-monitor", "--regid=mottivme-monitor", "--init-groups",
                    "/opt/m/venv/bin/python", "-m", "mottivme_monitor", "--config", "/etc/m/config.json",
                    "maintenance", "start", "n8n", "--minutes", "5"]
    assert {k: got[k] for k in env} == env  # no shell ever expanded them
    assert got["PYTHONPATH"] == "/opt/m/lib" and got["PATH"] == "/bin"


def run_launcher(*prefix):
    return subprocess.run([*prefix, sys.executable, str(ROOT / "mottivme_monitor" / "launcher.py"), "status"],
                          capture_output=True, text=True)


def test_refuses_without_root_in_one_line():
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups") if os.geteuid() == 0 else ()
    r = run_launcher(*nobody)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "run it as root" in r.stderr


def test_not_deployed_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(launcher, "LAUNCH", str(tmp_path / "missing.json"))
    monkeypatch.setattr(launcher.os, "geteuid", lambda: 0)
    assert launcher.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not deployed here" in err and "deploy.py" in err


def test_launcher_needs_only_the_standard_library():
    """It runs with the system's python3, before the monitor's virtualenv is involved."""
    import ast

    tree = ast.parse((ROOT / "mottivme_monitor" / "launcher.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}
    json.dumps(names and sorted(names))
