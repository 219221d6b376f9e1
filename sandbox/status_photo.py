"""Photograph the status page for docs/: `python -m sandbox.status_photo [--out docs/status-page.png]`.

A month of sample history (outages, a maintenance window, incidents the team posted, response
times) is recorded in a scratch database by the monitor's own Store, the clients' page is written
by `statuspage.write` in the deploy's language (group_data monitor_language), and a headless
Chromium on a sandbox server of its own (Debian's `chromium`, through the sandbox's apt cache)
photographs it. The server is removed afterwards. Nothing here is used at run time.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from mottivme_monitor import config, statuspage
from mottivme_monitor.checks import Result
from mottivme_monitor.clock import parse_iso
from mottivme_monitor.store import Store
from sandbox.core import Sandbox
from tasks.groupdata import load as group_data

ROOT = Path(__file__).resolve().parent.parent
NOW = parse_iso("2026-12-03T15:00:00Z")
DAY = 86400
STEP = 1800  # one sample result every 30 minutes: enough for the day bars


def sample(www: Path, db: Path) -> None:
    """The sample month, written as the monitor writes its page."""
    gd = group_data()
    checks = [
        {"name": "n8n", "type": "http", "url": "https://n8n.example.com/healthz/readiness",
         "description": "n8n: editor, webhooks e automações"},
        {"name": "railway", "type": "http", "url": "https://api.example.com/health", "description": "APIs (Railway)"},
        {"name": "supabase-db", "type": "postgres", "dsn": "postgresql://x", "query": "select 1",
         "description": "Banco de dados (Supabase)"},
        {"name": "gohighlevel", "type": "http", "url": "https://services.example.com/", "description": "GoHighLevel"},
        {"name": "backup-n8n1", "type": "heartbeat", "max_age_minutes": 1560, "audience": "operators"},
    ]
    cfg = config.parse({"db": str(db), "www_dir": str(www), "title": gd["monitor_title"], "checks": checks,
                        "channels": {n: {"apprise": ""} for n in ("whatsapp", "email", "phone")},
                        "language": gd["monitor_language"], "timezone": gd["timezone"]})
    rnd = random.Random(5)
    outages = {"n8n": [(NOW - 12 * DAY + 3 * 3600, 2 * 3600, "HTTP 502")],
               "supabase-db": [(NOW - 5 * DAY + 10 * 3600, 1800, "timeout connecting to the database")],
               "railway": [(NOW - 40 * 60, 3600, "HTTP 503")]}
    base = {"n8n": 180, "railway": 120, "supabase-db": 25, "gohighlevel": 300}
    with Store(str(db)) as store:
        store.start_maintenance(["n8n"], NOW - 20 * DAY + 2 * 3600, 45, "atualização do n8n")
        for t in range(NOW - 30 * DAY, NOW + 1, STEP):
            for name, ms in base.items():
                down = next((why for start, length, why in outages.get(name, []) if start <= t < start + length), "")
                store.record_result(name, t, Result(not down, int(ms * (0.7 + 0.8 * rnd.random())), down), tz=cfg.tz)
        incident = store.create_incident("n8n", NOW - 12 * DAY + 3 * 3600, "HTTP 502")
        store.update_incident(incident.id, recovered=NOW - 12 * DAY + 5 * 3600, resolved=NOW - 12 * DAY + 5 * 3600)
        store.create_incident("railway", NOW - 40 * 60, "HTTP 503")
        report = store.open_report("APIs fora do ar", "Novos leads não recebem resposta automática", ["railway"], 12,
                                   NOW - 30 * 60, "investigating", "Estamos verificando o Railway.", NOW + 30 * 60)
        store.post_update(report.id, NOW - 10 * 60, "identified", "Deploy com falha; refazendo o deploy.", NOW + 20 * 60)
        statuspage.write(cfg, store, NOW)


def photograph(html: Path, out: Path) -> None:
    state = Path(tempfile.mkdtemp(prefix="status-photo-"))
    sbx = Sandbox(state_dir=state, prefix="photo")
    try:
        sbx.up(1, "n8n_servers")
        host = sbx.load()["hosts"][0]

        def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
            return subprocess.run(sbx.ssh_args(host) + [cmd], check=True, **kw)

        sh("cat > /tmp/index.html", input=html.read_bytes())
        sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
           "chromium fonts-dejavu-core "
           ">/dev/null")
        sh("chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=960,2000 "
           "--screenshot=/tmp/page.png file:///tmp/index.html 2>/dev/null")
        out.write_bytes(sh("cat /tmp/page.png", capture_output=True).stdout)
    finally:
        sbx.down()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "status-page.png"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp) / "www"
        sample(www, Path(tmp) / "state.sqlite")
        photograph(www / "index.html", Path(a.out))
    print(f"status page photographed: {os.path.relpath(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
