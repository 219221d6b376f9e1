"""Prune the backup vault: `pyinfra inventory.py runbooks/vault_prune.py [--data old_keys=remove]`.

The vault's REST server is append-only, so the n8n servers cannot apply their retention there
(nor can an intruder on one of them delete its backups). This applies it on the vault itself,
with the restic password brought for the run only (a 0600 file, removed after; the vault never
keeps it): each repository's snapshots before and after, and the keys a password rotation left
(`old_keys=remove` removes them). Run it monthly, or when the vault's disk warning fires. See
docs/runbooks/vault_prune.md."""

from pyinfra import host
from pyinfra.api import HiddenValue

from runbooks._args import options
from tasks.backup import prune_vault
from tasks.config import secret
from tasks.rotation import refuse_deploy_if_pending

RUNS_ON = ["backup_vault"]  # its groups (the console runs it on these only)
OPTIONS = {
    "old_keys": ("keep", r"keep|remove", "keep (default) or remove: the keys other than RESTIC_PASSWORD's"),
}
old_keys = options(OPTIONS)["old_keys"]
refuse_deploy_if_pending()  # half a rotation: .env's RESTIC_PASSWORD may not be the one in force

if "backup_vault" in host.groups:
    prune_vault(name=f"prune the vault's repositories (old keys: {old_keys})",
                password=HiddenValue(secret("RESTIC_PASSWORD").unmask()), old_keys=old_keys)
