"""The quarterly DR drill on the test sandbox: outage, data loss, and a destroyed server rebuilt."""

import subprocess

import pytest

from tests.helpers import ROOT, dr_drill


@pytest.mark.replaces_servers
def test_dr_drill_passes_and_writes_its_report(sandbox_env, n8n_server, tmp_path, seeded):
    """Every part, on the Debian 13 sandbox, rebuilding the server in place (`--rebuild wipe`, what
    a staging inventory gets). Part (c) with a new bare server in its place (`--rebuild replace`)
    runs on the Debian 12 sandbox, beside this tier (test_debian12.py)."""
    dr_drill(sandbox_env, tmp_path, "wipe", n8n_server)


def test_dr_drill_refuses_production(sandbox_env):
    env = dict(sandbox_env, N8N_SERVERS="n8n.example.test")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "runbooks.dr_drill"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "refusing" in r.stderr


def test_dr_drill_on_staging_wipes_instead_of_replacing(sandbox_env):
    env = dict(sandbox_env, N8N_SERVERS="n8n.staging.example.test", DR_DRILL_ENVIRONMENT="staging")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "runbooks.dr_drill", "--rebuild", "replace"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--rebuild replace needs an inventory that can order a new server" in r.stderr
