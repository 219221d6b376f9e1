"""Backups with restic on the n8n servers: the repository password, the vault key, cron and log
rotation, and the backup part of the host programs' settings (`backup_settings()`; the programs
themselves are mottivme_host/backup.py, restore.py, cleanup.py); the SFTP-only account on the
backup vault."""

import os
from io import StringIO
from pathlib import Path

import paramiko
from pyinfra import host, inventory
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files, server

from tasks import operations, settings
from tasks.config import peer, secret
from tasks.monitoring import ping_curl_args, ping_url
from tasks.variables import VARIABLES

KEY_ON_HOST = "/etc/mottivme/backup_ed25519"
PASSWORD_FILE = "/etc/mottivme/restic-password"


def vault_hosts():
    return list(inventory.get_group("backup_vault", default=[]))


def _backup_private_key() -> str:
    return Path(os.environ["BACKUP_SFTP_KEY_FILE"]).expanduser().read_text()


def backup_public_key() -> str:
    key = paramiko.Ed25519Key.from_private_key(StringIO(_backup_private_key()))
    return f"{key.get_name()} {key.get_base64()} mottivme-backup"


def offsite(bk: settings.Backup) -> tuple[list[str], str]:
    """Off-host restic repositories of this host and the ssh command restic's sftp uses."""
    repos, sftp_command = [], ""
    vaults = vault_hosts()
    if vaults:
        v = vaults[0]  # one vault: every n8n server keeps its own repository in it
        addr, port = peer(v)
        repos.append(f"sftp:{bk.vault_user}@{addr}:{bk.vault_path}/{host.name}")
        sftp_command = (f"ssh -i {KEY_ON_HOST} -p {port} -o BatchMode=yes -o ConnectTimeout=10 "
                        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/etc/mottivme/backup_known_hosts "
                        f"{bk.vault_user}@{addr} -s sftp")
    if os.environ.get("BACKUP_S3_REPOSITORY"):
        repos.append(os.environ["BACKUP_S3_REPOSITORY"])
    return repos, sftp_command


def s3_credentials() -> dict[str, str]:
    """The S3 repository's credentials, as restic reads them from its environment."""
    if not os.environ.get("BACKUP_S3_REPOSITORY"):
        return {}
    return {v.name: os.environ[v.name] for v in VARIABLES if v.name.startswith("AWS_") and os.environ.get(v.name)}


def backup_settings() -> dict:
    """The `backup` section of the host programs' settings (mottivme_host.settings.Backup)."""
    bk, m = settings.Backup.from_data(host.data), settings.Monitor.from_data(host.data)
    repos, sftp_command = offsite(bk)
    return {
        "dir": bk.dir,
        "local_repository": bk.local_repository,
        "password_file": PASSWORD_FILE,
        "log": bk.log,
        "keep": {"last": bk.keep_last, "daily": bk.keep_daily, "weekly": bk.keep_weekly, "monthly": bk.keep_monthly},
        "check_weekday": bk.check_weekday,
        "check_subset": bk.check_subset,
        "offsite_repositories": repos,
        "sftp_command": sftp_command,
        "success_hook": bk.success_hook or ping_url(m, f"backup-{host.name}", sender=host.name),
        "failure_hook": bk.failure_hook or ping_url(m, f"backup-{host.name}", sender=host.name, fail=True),
        "hook_curl_args": [] if bk.success_hook else ping_curl_args(m).split(),
        "postgres_image_pattern": bk.postgres_image_pattern,
        "scratch_image_pattern": bk.scratch_image_pattern,
        "sources": sources(bk.sources),
        "env": s3_credentials(),
    }


def sources(configured: list[dict]) -> list[dict]:
    """group_data `backup_sources` as the host programs take them: each postgres source with its
    URL from .env (sources whose variable is empty are left out) and, when its `drill_url_env` is
    set, the database the DR drill restores it into. Checked at inventory time
    (tasks/config.py: source_problems)."""
    out = []
    for s in configured:
        if s["kind"] == "n8n":
            out.append({"name": s["name"], "kind": "n8n"})
        elif os.environ.get(s["url_env"]):
            out.append({"name": s["name"], "kind": "postgres", "url": os.environ[s["url_env"]],
                        "schemas": list(s.get("schemas", ["public"])),
                        **({"drill_url": os.environ[s["drill_url_env"]]}
                           if os.environ.get(s.get("drill_url_env", "")) else {})})
    return out


@deploy("Backups")
def backup():
    bk, b = settings.Backup.from_data(host.data), settings.Base.from_data(host.data)
    st, cl = settings.Stack.from_data(host.data), settings.Cleanup.from_data(host.data)
    apt.packages(name="backup: restic, jq, python3", packages=["restic", "jq", "python3", "curl"],
                 no_recommends=True)
    files.directory(name="backup: directory", path=bk.dir, mode="700")
    files.directory(name="backup: /etc/mottivme", path="/etc/mottivme", mode="700")
    operations.secret_file(name="backup: restic password (0600)", dest=PASSWORD_FILE,
                           content=HiddenValue(secret("RESTIC_PASSWORD").unmask() + "\n"))
    if vault_hosts():
        operations.secret_file(name="backup: SFTP key for the vault (0600)", dest=KEY_ON_HOST,
                               content=HiddenValue(_backup_private_key()))
    files.file(name="backup: the old settings file is gone (now in the host programs' settings)",
               path="/etc/mottivme/backup.env", present=False)
    files.template(name="backup: cron (daily backup, weekly cleanup)", src="templates/cron-n8n.j2",
                   dest="/etc/cron.d/mottivme-n8n", mode="644", base=b, backup=bk, cleanup=cl)
    files.template(name="backup: log rotation", src="templates/logrotate-n8n-backup.j2",
                   dest="/etc/logrotate.d/mottivme-n8n-backup", mode="644", stack=st, backup=bk, cleanup=cl)


@deploy("Backup vault")
def vault():
    bk = settings.Backup.from_data(host.data)
    server.user(name="vault: SFTP-only user", user=bk.vault_user, home=bk.vault_path,
                shell="/usr/sbin/nologin", create_home=True)
    files.directory(name="vault: repository directory", path=bk.vault_path, user=bk.vault_user,
                    group=bk.vault_user, mode="700")
    files.directory(name="vault: .ssh", path=f"{bk.vault_path}/.ssh", user=bk.vault_user,
                    group=bk.vault_user, mode="700")
    files.put(name="vault: the n8n servers' backup key (restricted)",
              src=StringIO(f"restrict {backup_public_key()}\n"),
              dest=f"{bk.vault_path}/.ssh/authorized_keys", user=bk.vault_user,
              group=bk.vault_user, mode="600")
    conf = files.template(name="vault: sshd allows the backup user SFTP only",
                          src="templates/sshd-backup-vault.conf.j2",
                          dest="/etc/ssh/sshd_config.d/60-mottivme-backup-vault.conf", mode="644", backup=bk)
    server.shell(name="vault: check and reload sshd", commands=["sshd -t", "systemctl reload ssh"],
                 _if=conf.did_change)
