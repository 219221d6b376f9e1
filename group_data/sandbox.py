"""Overrides for the local sandbox servers (`make sandbox-up`), which have no public DNS, no
container registry and no Internet. Never applies to real hosts."""

sandbox = True
# Caddy's own local CA instead of Let's Encrypt.
caddy_tls = "internal"
# The sandbox bind-mounts its image archives here; the deploy loads them instead of pulling.
image_archive_dir = "/sbx/images"
# No Internet: keep n8n from calling api.n8n.io (templates, version checks, MCP registry).
n8n_extra_env = {
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_DISABLED_MODULES": "mcp-registry",
}
# The sandbox's postgres stand-in image has pgvector.
supabase_scratch_image_pattern = "postgres:{major}"
