"""Every tunable of every host, in one visible place (pyinfra group data for the group `all`).

A value here is overridden by `group_data/<group>.py`, then by host data from inventory.py,
then by `--data key=value` on the command line. Secrets are never here: they come from the
environment or `.env` (see `.env.example`).
"""

# --- versions (pinned: never `latest`, never a floating `17`; images.lock adds each image's digest)
n8n_version = "2.41.1"  # `--data n8n_version=X.Y.Z` overrides it for one run. A running server moves up
# to it with a snapshot and rollback (tasks/versions.py); deploy.py never goes back (emergency_deploy does)
n8n_image_repo = "docker.n8n.io/n8nio/n8n"
# Other n8n versions images.lock pins besides n8n_version: the ones an emergency deploy may move a
# server to (keep the previous version here when n8n_version moves up, for a rollback).
n8n_other_versions = []
# Exact version tags: a new release is taken on purpose (change the tag, `make images-lock`,
# deploy). n8n 2.x supports PostgreSQL 17 (16 on compatibility support).
postgres_version = "17.6"
postgres_major = int(postgres_version.split(".")[0])
postgres_image = f"postgres:{postgres_version}"
redis_image = "redis:7.4.5"
caddy_image = "caddy:2.10.0"

# --- base system ------------------------------------------------------------------------------
timezone = "America/Sao_Paulo"
base_packages = [
    "ca-certificates", "curl", "gnupg", "tzdata", "netbase", "nftables", "unattended-upgrades",
    "apt-listchanges", "zstd", "jq", "logrotate", "cron",
]
# Who may log in to the servers (SOP 05, Controle de Acesso; tasks/access.py). One dict per
# person: "name", "ssh_key" (their OpenSSH public key: the .pub file's one line, never the
# private key), "state" ("present": the key is in the deploy user's authorized_keys on every
# server; "absent": the deploy takes exactly that key off every server), optional "email" (for
# the access report) and "n8n": "member" (an n8n account with that email: invited while present,
# removed while absent, its work transferred to the owner; docs/access.md). Keys nobody is listed
# for are left alone; `mottivme access` shows them.
people: list[dict] = [
    # {"name": "Ana Souza", "email": "ana@mottivme.com.br", "state": "present",
    #  "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... ana@notebook"},
]
# Ports open to the world. Everything else inbound is dropped (Docker's published ports are
# only 80/443 of Caddy; PostgreSQL and n8n are never published).
firewall_open_tcp_ports = [22, 80, 443]

# --- Docker -----------------------------------------------------------------------------------
# "debian": docker.io + docker-compose from Debian (default, no third-party repository): Compose v2
# on Debian 13, Compose v1 (1.29) on Debian 12.
# "docker": docker-ce + the compose plugin from Docker's own apt repository (production option).
docker_source = "debian"
# Container log rotation (json-file driver), so logs never fill the disk.
docker_log_max_size = "20m"
docker_log_max_files = 5

# --- the n8n stack ----------------------------------------------------------------------------
stack_dir = "/opt/n8n"
compose_project = "n8n"
postgres_db = "n8n"
postgres_user = "n8n"
# Execution data pruning, done by n8n itself (`n8n delete:execution` does not exist).
# SOP 05: keep 30 days of executions.
executions_prune = True
executions_max_age_hours = 30 * 24
executions_prune_max_count = 50000
# Task runners: n8n 2.x runs Code nodes (JavaScript, Python) in a task runner. "external" (n8n's
# advice for production): each n8n process that runs executions (the main one, every worker) gets
# a runners container of its own (n8n_runners_image_repo at n8n's version, which images.lock pins
# too), sharing nothing with n8n but N8N_RUNNERS_AUTH_TOKEN: a Code node runs where neither the
# encryption key nor a database or Redis password is. "internal": n8n launches a JavaScript
# runner inside its own container (no Python: n8n's image has none).
n8n_runners_mode = "external"
n8n_runners_image_repo = "n8nio/runners"
# The runners' own Docker network on every n8n server: its bridge's name (the firewall knows it:
# its containers reach nothing beyond it, and nothing of the host but, on a worker server, the
# workers' task brokers, which listen on its gateway) and its subnet (outside what Docker hands
# out to other networks until it has made 15 of them).
n8n_runners_bridge = "mottivme-run"
n8n_runners_subnet = "172.31.254.0/28"
# n8n's files: Docker volumes of the stack (name -> where every n8n process mounts it), all in the
# backup (the n8n source below) and restored with n8n's database. n8n_data is n8n's home: binary
# data (regular mode), community and custom nodes, n8n's own settings file. n8n_files is the one
# directory n8n 2.x lets workflows read and write files in (its N8N_RESTRICT_FILE_ACCESS_TO, set
# to it): without a volume there, a workflow's files would be lost with the container.
n8n_volumes = {"n8n_data": "/home/node/.n8n", "n8n_files": "/home/node/.n8n-files"}
n8n_files_volume = "n8n_files"  # the one of n8n_volumes given to workflows
# Extra environment for n8n (non-secret), e.g. {"N8N_LOG_LEVEL": "debug"}. With external runners
# N8N_BLOCK_ENV_ACCESS_IN_NODE stays "true" whatever this says (`$env` would carry n8n's secrets
# into the runners' container).
n8n_extra_env: dict[str, str] = {}
# n8n's owner account, claimed by the deploy on first run (e-mail/password come from .env).
n8n_owner_first_name = "Mottivme"
n8n_owner_last_name = "Ops"
n8n_metrics = True
# Seconds the deploy waits for /healthz/readiness (through Caddy) after a change.
n8n_ready_timeout = 300
# Seconds a server gets to come back from a reboot (`mottivme update --reboot`): answering SSH on a
# new boot, systemd up, every container that ran before running (and healthy) again.
reboot_timeout = 600
# Caddy TLS: "" = automatic HTTPS (Let's Encrypt) for N8N_HOST; "internal" = Caddy's own CA.
caddy_tls = ""
# The ACME CA of that automatic HTTPS, by its directory URL: "" = Caddy's own choice (Let's
# Encrypt, ZeroSSL if it fails). E.g. Let's Encrypt's staging, or a company's own ACME CA.
caddy_acme_ca = ""
# The root certificate (PEM text) that CA's HTTPS chains to, when the server does not trust it
# already (a company's own CA): written beside the Caddyfile. "" = none.
caddy_acme_ca_root = ""
# Other names the same sites answer on besides N8N_HOST and the status host; one that cannot have
# a public certificate (localhost, *.internal, an address) gets one from Caddy's local CA.
caddy_extra_names = []
# HTTP Strict-Transport-Security of every public site (n8n, the status page): browsers then
# never reach them over plain HTTP. Empty: not sent.
caddy_hsts = "max-age=31536000; includeSubDomains"
# --- scaling: SOP 05's traffic tiers with n8n's queue mode (tasks/scaling.py, docs/scaling.md) --
# bronze  (0-100 leads/day):   one n8n process, no Redis (today's set-up).
# prata   (100-500):           + Redis; n8n in queue mode with worker processes on the main server.
# ouro    (500-1000):          workers on the n8n_workers servers (N8N_WORKER_SERVERS) as well.
# platina (1000+):             ouro + webhook processors on the main server (Caddy spreads
#                              /webhook/ over them).
# Moving between tiers is this one value and one deploy (`--data n8n_tier=ouro` for one run).
n8n_tier = "bronze"
# leads_per_day: the tier's upper bound (SOP 05's table); more leads than that a day is a warning
# to move up (monitor_leads_query). None: no upper bound.
n8n_tiers = {
    "bronze": {"queue_mode": False, "main_workers": 0, "server_workers": 0, "webhook_processors": 0,
               "leads_per_day": 100},
    "prata": {"queue_mode": True, "main_workers": 1, "server_workers": 0, "webhook_processors": 0,
              "leads_per_day": 500},
    "ouro": {"queue_mode": True, "main_workers": 0, "server_workers": 2, "webhook_processors": 0,
             "leads_per_day": 1000},
    "platina": {"queue_mode": True, "main_workers": 0, "server_workers": 2, "webhook_processors": 2,
                "leads_per_day": None},
}
# Set one of these to override the tier's value (None: the tier decides).
n8n_queue_mode = None
n8n_main_workers = None  # worker processes on the main server
n8n_server_workers = None  # worker processes on each n8n_workers server
n8n_webhook_processors = None
n8n_worker_concurrency = 10  # executions at once per worker process (`n8n worker --concurrency`)
# A stopping worker takes no new execution and gets this long to finish the running ones
# (drain); queued executions stay in Redis for the other workers.
n8n_worker_drain_seconds = 120
# Queue mode: a worker that stops can leave behind an execution it took from Redis in that instant
# but never started; n8n would drop it 30-60 s later. The queue guard (a service on the main
# server) checks every n8n_queue_guard_seconds and puts such an execution back in the queue once
# it has been so for n8n_queue_guard_grace_seconds: long enough for a live but slow worker to
# take it after all (it would run twice otherwise), short enough to come before Bull's stalled
# check (n8n's QUEUE_WORKER_STALLED_INTERVAL, 30 s): keep grace + 2 x seconds under it
# (mottivme_host/queue_guard.py).
n8n_queue_guard_seconds = 2
n8n_queue_guard_grace_seconds = 15
# Queue mode: how many finished executions (each of completed and failed) Redis keeps as Bull jobs
# (N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED / _FAILED; n8n's default 0 deletes each at once). The
# process that queued a webhook's execution checks whether it has finished before it listens for
# the end: an execution a worker finished in between (a process just started or busy) was already
# gone from Redis, and the webhook never got its answer. A few hundred bytes each in Redis.
n8n_queue_keep_finished = 1000
# Worker servers reach the main server's Redis and PostgreSQL only through an SSH tunnel
# (a restricted account on the main server; Redis and PostgreSQL listen on its loopback only).
worker_stack_dir = "/opt/n8n-worker"
tunnel_user = "n8n-tunnel"
tunnel_redis_port = 6379  # loopback ports, on the main server and (forwarded) on the workers
tunnel_postgres_port = 5432

# --- backups (restic; tasks/backup.py, mottivme_host/backup.py) ------------------------------
# What the backup holds, as data (borgmatic's model). Each source has a name (its directory in
# the snapshot, its key in the manifest, `--data sources=NAME` of the restore runbook) and a kind:
#   n8n      - n8n's own database, its workflows and credentials (n8n's CLI; credentials stay
#              encrypted) and the stack's configuration. Exactly one, named "n8n".
#   postgres - a PostgreSQL database at the URL in the .env variable `url_env` (it holds the
#              password: never written here), dumped with pg_dump of that server's own major
#              version; `schemas`: what is dumped. A source whose variable is empty is left out.
# A second database is one more entry (and its URL in .env), e.g.
#   {"name": "analytics", "kind": "postgres", "url_env": "ANALYTICS_DB_URL", "schemas": ["public"]}
backup_sources = [
    # the n8n source: n8n's database, workflows and credentials, the stack's configuration and the
    # files of n8n_volumes; exclude: tar patterns left out of them (n8n's event log and crash
    # journal: logs it rewrites, not data)
    {"name": "n8n", "kind": "n8n", "exclude": ["n8nEventLog*.log", "crash.journal"]},
    # A postgres source: its URL's .env variable; schemas: "all" (every schema but PostgreSQL's own
    # and exclude_schemas, with the database's grants, row-level-security policies and extensions;
    # docs/backup.md) or a list of schemas; managed_schemas: schemas the platform makes in every
    # database (a target that has one keeps its tables, only their rows come back);
    # drill_url_env: the .env variable of the database the DR drill restores it into (never url_env's).
    # Supabase: its auth and storage hold the project's users and files' metadata (kept); the
    # schemas left out are the platform's own, which every project gets made and filled by Supabase
    # (as Supabase's CLI leaves them out of `supabase db dump`); `extensions` holds extensions
    # only, which the dump names and a restore makes where they were.
    {"name": "supabase", "kind": "postgres", "url_env": "SUPABASE_DB_URL", "schemas": "all",
     "exclude_schemas": ["extensions", "graphql", "graphql_public", "realtime", "_realtime", "pgbouncer", "pgsodium",
                         "pgsodium_masks", "vault", "net", "cron", "supabase_functions", "supabase_migrations",
                         "_analytics", "_supavisor", "pgtle", "repack", "topology", "tiger", "tiger_data"],
     # Supabase's record of the migrations its own auth and storage services ran: Supabase revokes
     # them from `postgres` (a dump of them fails), and restoring them would make those re-run
     "exclude_tables": ["auth.schema_migrations", "storage.migrations"],
     "managed_schemas": ["auth", "storage"],
     "drill_url_env": "DR_DRILL_SUPABASE_URL"},
]
backup_dir = "/var/backups/n8n"  # staging, restores and the local restic repository
backup_local_repository = "/var/backups/n8n/restic"
backup_log = "/var/log/n8n-backup.log"  # rotated weekly by logrotate, 8 kept (as the two below)
deploy_log = "/var/log/n8n-deploy.log"  # emergency deploys (n8n-deploy-version)
cleanup_log = "/var/log/n8n-cleanup.log"  # the weekly Supabase cleanup
# Daily backup time, in the server's timezone (SOP 05: daily).
backup_hour = 3
backup_minute = 17
# Retention (restic forget --prune), on the local and the off-host repository.
backup_keep_last = 3  # per tag group (scheduled, manual, pre-restore): a manual run never prunes the day's scheduled one
backup_keep_daily = 7
backup_keep_weekly = 4
backup_keep_monthly = 12
# `restic check --read-data-subset` after the backup on this weekday (1 = Monday ... 7 = Sunday).
backup_check_weekday = 7
backup_check_subset = "10%"
# pg_dump's own compression of the database dumps (-Z, 0-9). 0 (the default): the staging
# directory holds each dump at its full size, restic compresses it in the repository (zstd) and,
# the dump's bytes being the data's, deduplicates a table that changed a little from one day to
# the next (docs/backup.md, docs/benchmarks.md). A level above 0 only where the staging disk is short.
backup_dump_compression = 0
# Off-host copy: to the backup_vault host (BACKUP_VAULT), restic's REST server there (append-only,
# one private account per n8n server, TLS; docs/security.md), on this port, into this directory ...
backup_vault_port = 8000
backup_vault_path = "/srv/restic"
# ... and/or an S3-compatible bucket: BACKUP_S3_REPOSITORY and its keys in .env (.env.example).
# Monitoring hooks: a URL called (GET) after every good backup (heartbeat), and one called
# (POST, the one-line reason as body) after a failed one. Empty: none.
backup_success_hook = ""
backup_failure_hook = ""
# The PostgreSQL major versions of a Supabase database the backup and the restore are ready for
# (Supabase runs 15 or 17): pg_dump and pg_restore must be of the server's major version, and a
# dump is checked in a throwaway database of it with pgvector. Exact tags; images.lock pins each.
supabase_majors = [15, 16, 17]
supabase_postgres_images = {15: "postgres:15.14", 16: "postgres:16.10", postgres_major: postgres_image}
supabase_scratch_images = {15: "pgvector/pgvector:0.8.0-pg15", 16: "pgvector/pgvector:0.8.0-pg16",
                           17: "pgvector/pgvector:0.8.0-pg17"}

# --- weekly cleanup of Supabase tables (SOP 05 "Limpeza semanal") ------------------------------
cleanup_source = "supabase"  # the backup source (kind postgres) whose tables these are
# table -> days kept (rows whose created_at is older are deleted, in batches).
cleanup_retention_days = {"workflow_executions": 90, "conversation_history": 180}
cleanup_batch_size = 5000
cleanup_weekday = 7  # Sunday (cron: 0 = Sunday is also accepted)
cleanup_hour = 4
cleanup_minute = 41
# Monthly restore drill from cron (n8n-restore --drill on the 1st, two hours after the backup).
restore_drill_monthly = True

# --- secret rotation (SOP 05: every 90 days; runbooks/rotate_secrets.py) ------------------------
# Each n8n server records the day it first held each rotatable secret's value (PostgreSQL's and
# restic's passwords; mottivme-host secret-age) and warns this many days before the limit:
# `mottivme status`, `mottivme doctor`, and the monitor's secrets-<server> check (a warning by
# e-mail, monitor_warning_ladder, not a page).
secret_max_age_days = 90
secret_warn_days = 7

# --- monitoring: the `monitors` host(s), off the n8n servers (tasks/monitoring.py) ------------
# The monitor is this project's mottivme_monitor/ in a virtualenv, run by a systemd timer.
monitor_dir = "/opt/mottivme-monitor"  # venv/ and lib/ (the program)
monitor_state_dir = "/var/lib/mottivme-monitor"  # state.sqlite (history) and www/ (status page)
monitor_user = "mottivme-monitor"
monitor_interval_seconds = 60
monitor_raw_history_days = 35  # per-check results; 30-day uptime comes from daily totals
# Public status page (SOP 05: status.mottivme.com.br; its DNS must point at the monitor host).
monitor_status_host = "status.mottivme.com.br"
# `mottivme doctor` looks up N8N_HOST and monitor_status_host in DNS (the sandbox has no DNS)
doctor_check_dns = True
monitor_title = "Mottivme status"
# The operators' page (https://<status host>/ops/: every check, reasons as written) asks for this
# user and MONITOR_OPS_PASSWORD (.env); the clients' page (/) shows only the checks for them.
monitor_ops_user = "equipe"
# What the status page, the alerts and the clients' notices say: "pt-BR" (times on `timezone`'s
# clock) or "en" (times in UTC, as the monitor's log).
monitor_language = "pt-BR"
# The heartbeat receiver (backup job, disk reports), behind Caddy at https://<status host>/ping/
monitor_ping_listen = "127.0.0.1:8321"
# Escalation ladder (SOP 05): a service down >= 5 min -> WhatsApp; >= 15 min -> WhatsApp and
# e-mail; >= 60 min -> phone call. Each step once per incident, then a reminder every
# reminder_minutes; one "resolved" notice after recovery_successes good checks in a row.
# A check may carry its own "ladder" (same shape) to override this one.
monitor_ladder = {
    "steps": [
        {"after_minutes": 5, "channels": ["whatsapp"]},
        {"after_minutes": 15, "channels": ["whatsapp", "email"]},
        {"after_minutes": 60, "channels": ["phone"]},
    ],
    "reminder_minutes": 60,
    "recovery_successes": 2,
}
# Warnings (not pages): checks that only warn (a secret due for rotation) carry this ladder:
# e-mail at once, then a reminder once a day until it clears.
monitor_warning_ladder = {
    "steps": [{"after_minutes": 0, "channels": ["email"]}],
    "reminder_minutes": 24 * 60,
    "recovery_successes": 1,
}
# Channels: apprise URLs (or a provider's HTTP API for the phone call) from .env; a channel
# whose variable is empty is off. ${VAR} is filled in on the monitor host from a 0600 file.
monitor_channels = {
    "whatsapp": {"apprise": "${MONITOR_WHATSAPP_URL}"},
    "email": {"apprise": "${MONITOR_EMAIL_URL}"},
    # the clients' own channel (e.g. a WhatsApp group, by apprise): incidents the team posts with
    # --notify-clients, and an outage past its check's clients_after_minutes (monitor_incidents)
    "clients": {"apprise": "${MONITOR_CLIENTS_URL}"},
    # apprise has no voice calls: Twilio's Calls API (or any provider taking a form POST); the
    # deploy puts monitor_language's language and a voice that speaks it for {language} and {voice}
    # (pt-BR: Amazon Polly's Camila; en-US: Joanna; Twilio's default voice speaks few languages)
    "phone": {"type": "webhook", "url": "${MONITOR_PHONE_URL}", "auth": "${MONITOR_PHONE_AUTH}",
              "form": {"To": "${MONITOR_PHONE_TO}", "From": "${MONITOR_PHONE_FROM}",
                       "Twiml": '<Response><Say voice="{voice}" language="{language}">{message}</Say></Response>'}},
}
# Incidents the team posts (SOP 05, Comunicação de Incidentes: `mottivme-monitor incident open|update|
# resolve` on the monitor, runbooks/incident.py from the console): each post goes to `channels`
# (the team) and, asked, to `clients_channel`; the team is reminded on `channels` when an open one
# has had no update for `update_minutes` (the SOP: every 15 minutes). A resolved one leaves a
# post-mortem skeleton in <monitor_state_dir>/postmortems/.
monitor_incidents = {"update_minutes": 15, "channels": ["whatsapp"], "clients_channel": "clients"}
# Who watches the monitor, besides MONITOR_DEADMAN_URL: each n8n server runs the monitor's own
# program with one check, the monitor's status page (its status.json must have been regenerated in
# the last three rounds), and pages `channels` (apprise, from .env as above) when it has been silent
# for `silent_minutes`; one "resolved" when the page is fresh again. None: no watch.
monitor_watch = {"silent_minutes": 10, "channels": ["whatsapp", "email"]}
# Applied to every HTTP check (a check's own keys win). tls_min_days: an https certificate
# with fewer days left counts as down (Let's Encrypt renews at 30 days left).
monitor_http_defaults = {"method": "GET", "timeout_seconds": 10, "max_response_ms": 5000, "tls_verify": True,
                         "tls_min_days": 14}
# The checks, as data. ${VAR} comes from .env; a check whose variables are not set is left out.
# clients_after_minutes: the clients' channel hears of an outage of that service after so long (the
# SOP's DR scenarios: Supabase 15 minutes, Railway and n8n 30)
# (the deploy prints which). The deploy adds, per n8n server, backup freshness (the backup job's
# heartbeat), its scheduled jobs and its secrets' age; per managed server (n8n and worker servers,
# vault, monitor) disk space and memory (reports pushed every monitor_disk_report_minutes).
monitor_checks = [
    {"name": "n8n", "description": "n8n: editor, webhooks and workflows", "type": "http",
     "url": "https://${N8N_HOST}/healthz/readiness", "expect_status": [200],
     "clients_after_minutes": 30},
    {"name": "railway", "description": "Railway APIs (FastAPI)", "type": "http",
     "url": "${RAILWAY_HEALTH_URL}", "expect_status": [200], "json": [{"path": "status", "in": ["ok", "healthy"]}],
     "clients_after_minutes": 30},
    # Railway's own status (SOP 05, DR scenario 1: "check Railway's status"): the JSON behind
    # status.railway.com, which Railway documents as-is (its shape may change without notice: the
    # check then names what it no longer finds). A warning on the operators' page (e-mail, not a
    # page; `railway` above pages): every component operational, and every group that has a status.
    {"name": "railway-status", "description": "Railway's own status page (status.railway.com)", "type": "http",
     "url": "${RAILWAY_STATUS_URL}", "expect_status": [200], "severity": "warning", "audience": "operators",
     "max_response_ms": None, "tls_min_days": None,  # their answer's speed and certificate are not ours to watch
     "json": [{"path": "components", "descend": "components",
               "each": {"path": "status", "in": ["OPERATIONAL", "operational"]}}]},
    {"name": "supabase-api", "description": "Supabase REST API", "type": "http",
     "url": "https://${SUPABASE_PROJECT_REF}.supabase.co/rest/v1/", "expect_status": [200],
     "headers": {"apikey": "${SUPABASE_ANON_KEY}", "Authorization": "Bearer ${SUPABASE_ANON_KEY}"},
     "clients_after_minutes": 15},
    {"name": "supabase-db", "description": "Supabase database", "type": "postgres",
     "dsn": "${SUPABASE_DB_URL}", "query": "select 1", "timeout_seconds": 10, "clients_after_minutes": 15},
    {"name": "gohighlevel", "description": "GoHighLevel API v2", "type": "http",
     "url": "https://services.leadconnectorhq.com/locations/${GHL_LOCATION_ID}", "expect_status": [200],
     "headers": {"Authorization": "Bearer ${GHL_API_TOKEN}", "Version": "2021-07-28"}},
    {"name": "socialfy", "description": "Socialfy (Vercel)", "type": "http", "url": "${SOCIALFY_URL}",
     "expect_status": [200]},
]
# Capacity (SOP 05, Escalabilidade: when to move up a plan or a tier), as data of the same shape:
# a postgres check with max_value is a number from SQL (the query's first column) and its limit.
# Each is a warning (monitor_warning_ladder: e-mail, not a page) unless it sets its own
# severity/ladder; left out, like the checks above, when its variables are not set.
monitor_capacity_checks = [
    {"name": "supabase-size", "description": "Supabase database size (Free plan: 500 MB)", "type": "postgres",
     "dsn": "${SUPABASE_DB_URL}", "query": "select round(pg_database_size(current_database()) / 1048576.0, 1)",
     "max_value": 400, "unit": "MB", "value_label": "database size"},
    # pg_stat_database counts every role's sessions for any role (pg_stat_activity hides other
    # roles' from one without pg_read_all_stats)
    {"name": "supabase-connections", "description": "Supabase connections in use", "type": "postgres",
     "dsn": "${SUPABASE_DB_URL}", "query": "select round(100.0 * sum(numbackends) / "
                                           "current_setting('max_connections')::int) from pg_stat_database",
     "max_value": 80, "unit": "%", "value_label": "connections"},
    # SOP: "slow queries (> 1s)": clients' statements running for more than a second at the check's
    # moment. Other roles' statements are visible only with pg_read_all_stats (Supabase: `grant
    # pg_read_all_stats to postgres`); without it the query gives no number, which the check says,
    # rather than a reassuring 0.
    {"name": "supabase-slow-queries", "description": "Supabase queries running > 1 s", "type": "postgres",
     "dsn": "${SUPABASE_DB_URL}",
     "query": "select case when pg_has_role('pg_read_all_stats', 'member') then (select count(*) "
              "from pg_stat_activity where backend_type = 'client backend' and state = 'active' "
              "and now() - query_start > interval '1 second' and pid <> pg_backend_pid()) end",
     "max_value": 2, "unit": "queries", "value_label": "slow queries"},
]
# Leads per day, counted by SQL on Supabase in the agency's own tables (one number), compared with
# the tier's leads_per_day (n8n_tiers): more is a warning to move up a tier. Empty: no such check.
# e.g. "select count(*) from public.leads where created_at > now() - interval '1 day'"
monitor_leads_query = ""
monitor_cpu_max_percent = 80  # CPU busy between two reports above it: a warning (SOP: "CPU > 80%")
# Queue mode: executions waiting in Redis for a worker above it (reported with the disk): a warning
monitor_queue_max_waiting = 100
monitor_backup_max_age_hours = 26  # the daily backup's heartbeat is older: backup check down
monitor_disk_max_percent = 85
monitor_disk_path = "/"  # the file system the servers report (Docker's data); the vault: backup_vault_path
monitor_disk_report_minutes = 5  # every managed server reports its disk and memory this often
monitor_memory_max_percent = 90  # memory in use above it: a warning (e-mail), not a page
# Reach the n8n server and the monitor by their private addresses, and skip certificate checks
# of the pings (a network without DNS and with Caddy's local CA: the sandbox).
monitor_resolve_private = False
# Extra arguments of pip on the monitor host, e.g. "--proxy http://proxy:3128" (empty: none).
pip_extra_args = ""
