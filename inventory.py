"""pyinfra inventory: `pyinfra inventory.py deploy.py`.

Hosts come from `.env` or the environment (N8N_SERVERS=host1,host2:2222, SSH_USER, SSH_KEY_FILE).
With none configured, the running sandbox (`make sandbox-up`) is the target. Secrets are checked
here, before pyinfra connects to anything (see tasks/config.py and .env.example).
"""

from tasks.config import load_inventory

_groups = load_inventory()

n8n_servers = _groups["n8n_servers"]
sandbox = _groups.get("sandbox", [])
# off-host backup repository over SFTP (BACKUP_VAULT)
backup_vault = _groups.get("backup_vault", [])
# servers that run only n8n workers (queue mode, tier ouro and up: N8N_WORKER_SERVERS)
n8n_workers = _groups.get("n8n_workers", [])
# the off-host monitor and status page (MONITOR_SERVERS)
monitors = _groups.get("monitors", [])
# sandbox only: the stand-in for Supabase's PostgreSQL (sandbox/supabase.py)
supabase = _groups.get("supabase", [])
