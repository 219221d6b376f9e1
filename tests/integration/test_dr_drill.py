"""The quarterly DR drill on the test sandbox: outage, data loss, and a destroyed server rebuilt."""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sandbox.n8n_client import N8nClient, create_active, n8n_api
from tests.helpers import N8N_PSQL, ROOT, Server, secrets_of

# in the one directory n8n 2.x lets workflows use (its write node makes no missing directory)
FILES = "/home/node/.n8n-files/itest.bin"
# a node of our own, placed where n8n loads custom nodes from (~/.n8n/custom); its type: CUSTOM.mottivmeEcho
ECHO_NODE = """class MottivmeEcho {
  constructor() {
    this.description = {displayName: 'Mottivme Echo', name: 'mottivmeEcho', group: ['transform'], version: 1,
      description: 'restore test', defaults: {name: 'Mottivme Echo'}, inputs: ['main'], outputs: ['main'],
      properties: []};
  }
  async execute() {
    return [this.getInputData().map(() => ({json: {echo: 'mottivme custom node loaded'}}))];
  }
}
module.exports = {MottivmeEcho};
"""
# the same node as a community package, installed where n8n installs them (~/.n8n/nodes/node_modules;
# n8n loads every n8n-nodes-* package there): its type n8n-nodes-mottivme.mottivmeEcho
COMMUNITY_PACKAGE = {"name": "n8n-nodes-mottivme", "version": "0.1.0",
                     "n8n": {"n8nNodesApiVersion": 1, "nodes": ["MottivmeEcho.node.js"]}}


def webhook_to(name: str, method: str, path: str, node: dict, **webhook) -> dict:
    """A workflow: a webhook (answering with its last node's output) into `node`."""
    return {"name": name, "settings": {"executionOrder": "v1"},
            "nodes": [{"parameters": {"httpMethod": method, "path": path, "responseMode": "lastNode", "options": {},
                                      **webhook},
                       "id": str(uuid.uuid4()), "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
                       "position": [0, 0], "webhookId": str(uuid.uuid4())},
                      {"id": str(uuid.uuid4()), "name": "Step", "position": [220, 0], **node}],
            "connections": {"Webhook": {"main": [[{"node": "Step", "type": "main", "index": 0}]]}}}


def webhook(n8n: N8nClient, method: str, path: str, data: bytes | None = None) -> bytes:
    for _ in range(60):  # until the activated webhook is registered
        status, body = n8n.raw(method, f"webhook/{path}", data, {"Content-Type": "application/octet-stream"})
        if status != 404:
            break
        time.sleep(0.5)
    assert status == 200, body[:500]
    return body


def dr_drill(env: dict, report_dir: Path, n8n_server: Server) -> str:
    """Run the DR drill as an engineer does on a staging inventory (every part, `--rebuild wipe`)
    and check what its report and the rebuilt server show; returns the report."""
    old_id = n8n_server.h["container_id"]
    r = subprocess.run([sys.executable, "-m", "runbooks.dr_drill", "--report-dir", str(report_dir), "--rebuild", "wipe"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # it said what it was doing as it went: the rebuild's operations between its start and its end
    start = out.index("[dr-drill] (c) server loss rebuild with deploy.py ...")
    end = out.index("[dr-drill] (c) server loss rebuild with deploy.py: deploy.py converged", start)
    assert "\n    n8n stack | n8n ready (/healthz/readiness through Caddy)\n" in out[start:end], out[start:end][-3000:]
    (report,) = report_dir.glob("dr-drill-*.md")
    text = report.read_text()
    assert "Result: **PASSED**" in text and "FAILED" not in text
    for measure in ("time to detect", "time to recover", "RTO", "RPO"):
        assert re.search(rf"\| {measure}[^|]*\| [0-9.]+ s \|", text), measure
    # (b): Supabase restored into the drill's own database, never over the stand-in it came from
    assert "Supabase restored into the drill database with the marker table" in text
    # the n8n server really was wiped (the same server), and the rebuilt one serves the restored data
    assert n8n_server.h["container_id"] == old_id and re.search(r"\| [^|]* wiped: stack, volumes", text)
    # restored by the id the backup printed, though its off-host copy has an id of its own
    printed = re.search(r"fresh snapshot ([0-9a-f]{8}) copied off-host", text).group(1)
    assert re.search(rf"restored snapshot {printed} \(its copy [0-9a-f]{{8}} in rest:", text), text
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200  # from outside
    assert "dr-drill-" in n8n_server.sh("mottivme-host compose exec -T postgres psql -U n8n -d n8n "
                                        "-Atc \"select name from workflow_entity where id = 'drDrillMarker001'\"")
    return text


@pytest.mark.replaces_servers
def test_dr_drill_passes_and_writes_its_report(sbx, sandbox_env, n8n_server, tmp_path, seeded):
    """Every part, on the Debian 13 sandbox, rebuilding the server in place (`--rebuild wipe`, what
    a staging inventory gets).

    n8n's files come back with it: a file a workflow stored (in its execution's binary data, on
    n8n's volume, and on disk where workflows may write, the files volume) is served byte for byte
    after the rebuild, and a custom node placed in ~/.n8n/custom and a community package installed
    in ~/.n8n/nodes are loaded."""
    n8n = N8nClient(n8n_server.url)
    api = n8n_api(n8n, secrets_of(sbx))
    upload = os.urandom(150_000)
    up = create_active(n8n, api, webhook_to("itest files up", "POST", "itest-files-up", {
        "type": "n8n-nodes-base.readWriteFile", "typeVersion": 1.1,
        "parameters": {"operation": "write", "fileName": FILES, "dataPropertyName": "data", "options": {}}}))
    create_active(n8n, api, webhook_to("itest files down", "GET", "itest-files-down", {
        "type": "n8n-nodes-base.readWriteFile", "typeVersion": 1.1,
        "parameters": {"fileSelector": FILES, "options": {}}}, responseData="firstEntryBinary"))
    webhook(n8n, "POST", "itest-files-up", upload)
    assert webhook(n8n, "GET", "itest-files-down") == upload
    # the upload's binary data, as n8n keeps it (filesystem mode, regular mode's default in 2.x)
    for _ in range(20):
        data = n8n_server.sh(f"{N8N_PSQL} -c 'select d.data from execution_data d join execution_entity e on e.id = "
                             f"d.\"executionId\" where e.\"workflowId\" = $${up}$$'")
        found = re.findall(r"filesystem-v2:[A-Za-z0-9/_-]+", data)
        if found:
            break
        time.sleep(0.5)
    (binary_id,) = set(found)
    assert n8n.raw("GET", f"rest/binary-data?id={binary_id}&action=download") == (200, upload)
    n8n_server.sh("mottivme-host compose exec -T n8n sh -c 'mkdir -p ~/.n8n/custom && "
                  f"cat > ~/.n8n/custom/MottivmeEcho.node.js' <<'EOF'\n{ECHO_NODE}EOF")
    package = "~/.n8n/nodes/node_modules/n8n-nodes-mottivme"
    n8n_server.sh(f"mottivme-host compose exec -T n8n sh -c 'mkdir -p {package} && cat > {package}/package.json' "
                  f"<<'EOF'\n{json.dumps(COMMUNITY_PACKAGE)}\nEOF")
    n8n_server.sh(f"mottivme-host compose exec -T n8n sh -c 'cat > {package}/MottivmeEcho.node.js' "
                  f"<<'EOF'\n{ECHO_NODE.replace('custom node', 'community package')}EOF")

    dr_drill(sandbox_env, tmp_path, n8n_server)

    n8n = N8nClient(n8n_server.url)
    api = n8n_api(n8n, secrets_of(sbx))
    assert webhook(n8n, "GET", "itest-files-down") == upload  # the file a workflow wrote, byte for byte
    assert n8n.raw("GET", f"rest/binary-data?id={binary_id}&action=download") == (200, upload)
    create_active(n8n, api, webhook_to("itest custom node", "GET", "itest-echo", {
        "type": "CUSTOM.mottivmeEcho", "typeVersion": 1, "parameters": {}}))
    assert json.loads(webhook(n8n, "GET", "itest-echo")) == {"echo": "mottivme custom node loaded"}
    create_active(n8n, api, webhook_to("itest community package", "GET", "itest-package", {
        "type": "n8n-nodes-mottivme.mottivmeEcho", "typeVersion": 1, "parameters": {}}))
    assert json.loads(webhook(n8n, "GET", "itest-package")) == {"echo": "mottivme community package loaded"}


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
