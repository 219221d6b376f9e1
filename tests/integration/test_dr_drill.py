"""The quarterly DR drill on the test sandbox: outage, data loss, and a destroyed server rebuilt."""

import re
import subprocess

import pytest

from sandbox.n8n_client import N8nClient
from tests.helpers import ROOT


@pytest.mark.replaces_servers
@pytest.mark.parametrize("rebuild", ["wipe", "replace"])
def test_dr_drill_passes_and_writes_its_report(sbx, sandbox_env, n8n_server, tmp_path, seeded, rebuild):
    """replace: the sandbox's server is removed and a bare one takes its place; wipe (what a staging
    inventory gets): everything the deploy put on the server is removed and rebuilt in place."""
    old_id = n8n_server.h["container_id"]
    # the wipe drill runs every part; the replace drill only what differs, part (c) (server loss)
    parts = ["--parts", "c"] if rebuild == "replace" else []
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "runbooks.dr_drill", "--report-dir", str(tmp_path),
                        "--rebuild", rebuild, *parts], cwd=ROOT, env=sandbox_env, capture_output=True, text=True,
                       timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    (report,) = tmp_path.glob("dr-drill-*.md")
    text = report.read_text()
    assert "Result: **PASSED**" in text and "FAILED" not in text
    measured = ("RTO", "RPO") if parts else ("time to detect", "time to recover", "RTO", "RPO")
    for measure in measured:
        assert re.search(rf"\| {measure}[^|]*\| [0-9.]+ s \|", text), measure
    if parts:
        assert "Parts run: c " in text and re.search(r"\| time to detect[^|]*\| — \|", text)
    else:  # (b): Supabase restored into the drill's own database, never over the stand-in it came from
        assert "Supabase restored into the drill database with the marker table" in text
    # the n8n server really was replaced (or wiped), and the rebuilt one serves the restored data
    if rebuild == "replace":
        assert n8n_server.h["container_id"] != old_id
    else:
        assert n8n_server.h["container_id"] == old_id and re.search(r"\| [^|]* wiped: stack, volumes", text)
    # restored by the id the backup printed, though its off-host copy has an id of its own
    printed = re.search(r"fresh snapshot ([0-9a-f]{8}) copied off-host", text).group(1)
    assert re.search(rf"restored snapshot {printed} \(its copy [0-9a-f]{{8}} in sftp:", text), text
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
    assert "dr-drill-" in n8n_server.sh("mottivme-host compose exec -T postgres psql -U n8n -d n8n "
                                        "-Atc \"select name from workflow_entity where id = 'drDrillMarker001'\"")


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
