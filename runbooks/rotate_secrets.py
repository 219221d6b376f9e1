"""Rotate secrets (SOP 05: every 90 days):

    pyinfra inventory.py runbooks/rotate_secrets.py [--data secrets=postgres,restic]

PostgreSQL password of n8n's database and the restic repositories' password (a new key is
added and checked in every repository, then the old one removed). Each new value is applied
and verified on every n8n server and only then written back to your .env; on failure the old
value stays in force. N8N_ENCRYPTION_KEY is never rotated. Prints no secret.
See docs/runbooks/rotate_secrets.md."""

from pyinfra import host
from pyinfra.api import HiddenValue

from runbooks._args import options, refuse
from tasks import rotation

RUNS_ON = ["n8n_servers"]  # its groups (the console runs it on these only)
OPTIONS = {
    "secrets": ("postgres,restic", r"[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*",
                "a comma-separated list of: postgres, restic (see tasks/rotation.py ROTATABLE)"),
}
requested = options(OPTIONS)["secrets"]
names = requested.split(",")
for n in names:
    if n.upper() in rotation.NEVER or n.lower() in ("encryption", "encryption_key", "n8n_encryption_key"):
        refuse(f"refusing to rotate N8N_ENCRYPTION_KEY: {rotation.NEVER['N8N_ENCRYPTION_KEY']}")
    if n not in rotation.ROTATABLE:
        refuse(f"--data secrets: unknown secret {n!r}; rotatable: {', '.join(rotation.ROTATABLE)}")

values = rotation.new_values(names)
if "n8n_servers" in host.groups:
    rotation.apply(name=f"rotate {', '.join(names)} (apply, verify)",
                   values=HiddenValue("".join(f"{k}={v}\n" for k, v in values.items())))
    rotation.persist(name="write the new values to .env (only if every host rotated)",
                     values={k: HiddenValue(v) for k, v in values.items()}, _run_once=True)
