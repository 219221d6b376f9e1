"""Seed the sandbox with data shaped like production's (SOP 05 tables, n8n workflows and a credential).

    python -m sandbox seed [--rows 5000]

Supabase stand-in (group `supabase`): the SOP's tables `agent_versions`, `agent_metrics`,
`call_recordings`, `rag_documents` (with a pgvector column), `workflow_executions`,
`conversation_history`; `created_at` spread over the last 400 days, so the weekly cleanup has rows
on both sides of its thresholds. n8n (group `n8n_servers`): workflows, and a basic-auth credential
used by an active webhook workflow, so "the credential decrypts and works" can be checked by
calling that webhook.
"""

from __future__ import annotations

import json
import subprocess

from sandbox.core import Sandbox, SandboxError

EMBEDDING_DIM = 384
TABLES = ["agent_versions", "agent_metrics", "call_recordings", "rag_documents", "workflow_executions",
          "conversation_history"]

SCHEMA = f"""
create extension if not exists vector;
create table if not exists agent_versions (id bigserial primary key, agent text not null, version int not null,
    config jsonb not null, created_at timestamptz not null default now());
create table if not exists agent_metrics (id bigserial primary key, agent text not null, metric text not null,
    value double precision not null, created_at timestamptz not null default now());
create table if not exists call_recordings (id bigserial primary key, lead_id bigint not null, url text not null,
    duration_s int not null, transcript text, created_at timestamptz not null default now());
create table if not exists rag_documents (id bigserial primary key, title text not null, content text not null,
    embedding vector({EMBEDDING_DIM}) not null, created_at timestamptz not null default now());
create table if not exists workflow_executions (id bigserial primary key, workflow text not null, status text not null,
    payload jsonb, created_at timestamptz not null default now());
create index if not exists workflow_executions_created_at on workflow_executions (created_at);
create table if not exists conversation_history (id bigserial primary key, lead_id bigint not null, role text not null,
    message text not null, created_at timestamptz not null default now());
create index if not exists conversation_history_created_at on conversation_history (created_at);
"""


def supabase_sql(rows: int) -> str:
    """Deterministic rows (setseed), timestamps spread over 400 days."""
    small = max(rows // 10, 1)
    spread = "now() - (g % 400) * interval '1 day' - (g % 86400) * interval '1 second'"
    return SCHEMA + f"""
select setseed(0.42);
insert into agent_versions (agent, version, config, created_at)
  select 'agent-' || (g % 7), g, jsonb_build_object('model', 'gpt-4', 'temperature', (g % 10) / 10.0), {spread}
  from generate_series(1, {small}) g;
insert into agent_metrics (agent, metric, value, created_at)
  select 'agent-' || (g % 7), (array['latency_ms','csat','conversion'])[1 + g % 3], random() * 100, {spread}
  from generate_series(1, {rows}) g;
insert into call_recordings (lead_id, url, duration_s, transcript, created_at)
  select g, 'https://storage.example.test/calls/' || g || '.mp3', 30 + g % 900, repeat('palavra ', 20 + g % 50), {spread}
  from generate_series(1, {small}) g;
insert into rag_documents (title, content, embedding, created_at)
  select 'doc ' || g, repeat('conteúdo ', 30 + g % 40),
         (select array_agg(random())::vector({EMBEDDING_DIM}) from generate_series(1, {EMBEDDING_DIM}) d where d > g * 0),
         {spread}
  from generate_series(1, {small}) g;
insert into workflow_executions (workflow, status, payload, created_at)
  select 'wf-' || (g % 20), (array['success','error','running'])[1 + g % 3], jsonb_build_object('lead', g), {spread}
  from generate_series(1, {rows}) g;
insert into conversation_history (lead_id, role, message, created_at)
  select g % 500, (array['user','assistant'])[1 + g % 2], 'mensagem ' || g, {spread}
  from generate_series(1, {rows}) g;
"""


CREDENTIAL = {"id": "seedBasicAuth0001", "name": "seed basic auth", "type": "httpBasicAuth",
              "data": {"user": "seed-user", "password": "seed-Password-42"}}


def workflows(count: int) -> list[dict]:
    """`count` plain workflows plus one active webhook that requires the seeded credential."""
    out = []
    for i in range(count):
        out.append({
            "id": f"seedWorkflow{i:04d}", "name": f"seed workflow {i}", "active": False,
            "nodes": [{"parameters": {}, "id": f"00000000-0000-4000-8000-{i:012d}", "name": "Manual",
                       "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0]}],
            "connections": {}, "settings": {"executionOrder": "v1"},
        })
    out.append({
        "id": "seedProtected001", "name": "seed protected webhook", "active": True,
        "nodes": [
            {"parameters": {"httpMethod": "GET", "path": "seed-protected", "authentication": "basicAuth",
                            "responseMode": "lastNode", "options": {}},
             "id": "11111111-1111-4111-8111-111111111111", "name": "Webhook", "type": "n8n-nodes-base.webhook",
             "typeVersion": 2, "position": [0, 0], "webhookId": "22222222-2222-4222-8222-222222222222",
             "credentials": {"httpBasicAuth": {"id": CREDENTIAL["id"], "name": CREDENTIAL["name"]}}},
            {"parameters": {"jsCode": "return [{ json: { ok: true, seeded: 'yes' } }];"},
             "id": "66666666-6666-4666-8666-666666666666", "name": "Code", "type": "n8n-nodes-base.code",
             "typeVersion": 2, "position": [220, 0]},
        ],
        "connections": {"Webhook": {"main": [[{"node": "Code", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    })
    return out


def ssh(sbx: Sandbox, h: dict, command: str, stdin: str | None = None) -> str:
    r = subprocess.run(sbx.ssh_args(h) + [command], input=stdin, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SandboxError(f"{h['name']}: {command[:80]}: {r.stderr.strip()[-800:]}")
    return r.stdout


def seed_supabase(sbx: Sandbox, rows: int) -> None:
    h = _one(sbx, "supabase")
    ssh(sbx, h, "docker exec -i supabase-db psql -U postgres -v ON_ERROR_STOP=1 -q", supabase_sql(rows))


def seed_n8n(sbx: Sandbox, count: int) -> None:
    """Import through n8n's CLI, then restart n8n so the active webhook is registered."""
    h = _one(sbx, "n8n_servers")
    exec_n8n = "mottivme-host compose exec -T -e N8N_RUNNERS_BROKER_PORT=5691 n8n sh -c"
    ssh(sbx, h, f"{exec_n8n} 'umask 077; cat > /home/node/seed-c.json'", json.dumps([CREDENTIAL]))
    ssh(sbx, h, f"{exec_n8n} 'cat > /home/node/seed-w.json'", json.dumps(workflows(count)))
    ssh(sbx, h, f"{exec_n8n} 'n8n import:credentials --input=/home/node/seed-c.json && n8n import:workflow --input=/home/node/seed-w.json "
                "&& n8n publish:workflow --id=seedProtected001; rc=$?; rm -f /home/node/seed-c.json /home/node/seed-w.json; exit $rc' >/dev/null")
    # a workflow published by the CLI is activated when n8n starts
    ssh(sbx, h, "mottivme-host compose restart n8n >/dev/null 2>&1; "
                "for i in $(seq 120); do [ \"$(curl -sk -o /dev/null -w '%{http_code}' "
                "https://localhost/healthz/readiness)\" = 200 ] && exit 0; sleep 1; done; exit 1")


def _one(sbx: Sandbox, group: str) -> dict:
    hosts = [h for h in sbx.load()["hosts"] if h["group"] == group]
    if not hosts:
        raise SandboxError(f"no sandbox server in group {group}: python -m sandbox up --group {group}")
    return hosts[0]


FAILING_N8N_VERSION = "2.41.9"


def build_failing_n8n_image(sbx: Sandbox, h: dict, base_version: str = "2.41.1") -> str:
    """On server `h`, tag an n8n "version" that migrates the database (one more row in
    `migrations`) and then crashes: what an emergency deploy must roll back, database included."""
    image = f"docker.n8n.io/n8nio/n8n:{FAILING_N8N_VERSION}"
    ssh(sbx, h, r"""set -e; d=$(mktemp -d); cd $d
cat > fail.js <<'JS'
const { Client } = require('/usr/local/lib/node_modules/n8n/node_modules/pg');
const c = new Client({ host: process.env.DB_POSTGRESDB_HOST, user: process.env.DB_POSTGRESDB_USER,
  password: process.env.DB_POSTGRESDB_PASSWORD, database: process.env.DB_POSTGRESDB_DATABASE });
c.connect().then(() => c.query("insert into migrations (timestamp, name) values (9999999999999, 'BrokenVersion9999')"))
  .then(() => { console.error('simulated: migrated, then crashed'); process.exit(1); },
        e => { console.error(e.message); process.exit(1); });
JS
printf 'FROM docker.n8n.io/n8nio/n8n:%s
COPY fail.js /fail.js
ENTRYPOINT ["node", "/fail.js"]
' """ + base_version + f""" > Dockerfile
docker build -q -t {image} . >/dev/null; rm -rf $d""")
    return image
