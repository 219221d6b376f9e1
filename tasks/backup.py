"""Backups with restic: n8n-backup / n8n-restore / n8n-supabase-cleanup, their settings, cron
and log rotation on the n8n servers; the SFTP-only account on the backup vault."""

import os
import shlex
from io import StringIO
from pathlib import Path

import paramiko
from pyinfra import host, inventory
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files, server

from tasks.config import S3_KEYS, S3_OPTIONAL, peer, secret
from tasks.monitoring import ping_curl_args, ping_url
from tasks.n8n import install_scripts

KEY_ON_HOST = "/etc/mottivme/backup_ed25519"


def vault_hosts():
    return list(inventory.get_group("backup_vault", default=[]))


def _backup_private_key() -> str:
    return Path(os.environ["BACKUP_SFTP_KEY_FILE"]).expanduser().read_text()


def backup_public_key() -> str:
    key = paramiko.Ed25519Key.from_private_key(StringIO(_backup_private_key()))
    return f"{key.get_name()} {key.get_base64()} mottivme-backup"


def offsite() -> tuple[list[str], str]:
    """Off-host restic repositories of this host and the ssh command restic's sftp uses."""
    d = host.data
    repos, sftp_command = [], ""
    vaults = vault_hosts()
    if vaults:
        v = vaults[0]  # one vault: every n8n server keeps its own repository in it
        addr, port = peer(v)
        repos.append(f"sftp:{d.backup_vault_user}@{addr}:{d.backup_vault_path}/{host.name}")
        sftp_command = (f"ssh -i {KEY_ON_HOST} -p {port} -o BatchMode=yes -o ConnectTimeout=10 "
                        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/etc/mottivme/backup_known_hosts "
                        f"{d.backup_vault_user}@{addr} -s sftp")
    if os.environ.get("BACKUP_S3_REPOSITORY"):
        repos.append(os.environ["BACKUP_S3_REPOSITORY"])
    return repos, sftp_command


def s3_credentials() -> dict[str, HiddenValue]:
    """The S3 repository's credentials for backup.env (shell-quoted, masked in pyinfra's output)."""
    if not os.environ.get("BACKUP_S3_REPOSITORY"):
        return {}
    return {k: HiddenValue(shlex.quote(os.environ[k])) for k in S3_KEYS + S3_OPTIONAL if os.environ.get(k)}


@deploy("Backups")
def backup():
    d = host.data
    apt.packages(name="backup: restic, jq, python3", packages=["restic", "jq", "python3", "curl"],
                 no_recommends=True)
    files.directory(name="backup: directory", path=d.backup_dir, mode="700")
    files.directory(name="backup: /etc/mottivme", path="/etc/mottivme", mode="755")
    files.put(name="backup: restic password (0600)", src=StringIO(secret("RESTIC_PASSWORD").unmask() + "\n"),
              dest="/etc/mottivme/restic-password", mode="600", user="root", group="root")
    repos, sftp_command = offsite()
    if vault_hosts():
        files.put(name="backup: SFTP key for the vault (0600)", src=StringIO(_backup_private_key()),
                  dest=KEY_ON_HOST, mode="600", user="root", group="root")
    url = os.environ.get("SUPABASE_DB_URL", "")
    files.template(name="backup: settings (0600)", src="templates/backup.env.j2", dest="/etc/mottivme/backup.env",
                   mode="600", user="root", group="root", offsite_repositories=repos, sftp_command=sftp_command,
                   success_hook=d.backup_success_hook or ping_url(f"backup-{host.name}"),
                   failure_hook=d.backup_failure_hook or ping_url(f"backup-{host.name}", fail=True),
                   hook_curl_args="" if d.backup_success_hook else ping_curl_args(),
                   secrets={"SUPABASE_DB_URL": HiddenValue(shlex.quote(url) if url else "")},
                   s3_credentials=s3_credentials())
    install_scripts("n8n-backup", "n8n-restore", "n8n-supabase-cleanup")
    files.template(name="backup: cron (daily backup, weekly cleanup)", src="templates/cron-n8n.j2",
                   dest="/etc/cron.d/mottivme-n8n", mode="644")
    files.template(name="backup: log rotation", src="templates/logrotate-n8n-backup.j2",
                   dest="/etc/logrotate.d/mottivme-n8n-backup", mode="644")


@deploy("Backup vault")
def vault():
    d = host.data
    server.user(name="vault: SFTP-only user", user=d.backup_vault_user, home=d.backup_vault_path,
                shell="/usr/sbin/nologin", create_home=True)
    files.directory(name="vault: repository directory", path=d.backup_vault_path, user=d.backup_vault_user,
                    group=d.backup_vault_user, mode="700")
    files.directory(name="vault: .ssh", path=f"{d.backup_vault_path}/.ssh", user=d.backup_vault_user,
                    group=d.backup_vault_user, mode="700")
    files.put(name="vault: the n8n servers' backup key (restricted)",
              src=StringIO(f"restrict {backup_public_key()}\n"),
              dest=f"{d.backup_vault_path}/.ssh/authorized_keys", user=d.backup_vault_user,
              group=d.backup_vault_user, mode="600")
    conf = files.template(name="vault: sshd allows the backup user SFTP only",
                          src="templates/sshd-backup-vault.conf.j2",
                          dest="/etc/ssh/sshd_config.d/60-mottivme-backup-vault.conf", mode="644")
    server.shell(name="vault: check and reload sshd", commands=["sshd -t", "systemctl reload ssh"],
                 _if=conf.did_change)
