"""Backups with restic on the n8n servers: the repository password, the vault account, cron and
log rotation, and the backup part of the host programs' settings (`backup_settings()`; the
programs themselves are mottivme_host/backup.py, restore.py, cleanup.py); the backup vault:
restic's REST server, append-only, one private account per n8n server, over TLS
(docs/security.md; its pruning: runbooks/vault_prune.py)."""

import os
from io import StringIO

from pyinfra import host, inventory, logger
from pyinfra.api import FunctionCommand, HiddenValue, deploy, operation
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from tasks import operations, settings, vaultkeys
from tasks.config import peer, secret
from tasks.monitoring import ping_curl_args, ping_url
from tasks.variables import VARIABLES

PASSWORD_FILE = "/etc/mottivme/restic-password"
VAULT_PASSWORD_FILE = "/etc/mottivme/vault-password"  # this server's account on the vault
VAULT_CERT_FILE = "/etc/mottivme/vault-cert.pem"  # the one certificate restic trusts for the vault
# on the vault (Debian's restic-rest-server package: its unit reads /etc/default/restic-rest-server)
REST_SERVER_USER = "restic-rest-server"
REST_SERVER_DIR = "/etc/restic-rest-server"


def vault_hosts():
    return list(inventory.get_group("backup_vault", default=[]))


def n8n_server_names() -> list[str]:
    """The accounts on the vault: one per n8n server (the server's inventory name)."""
    return [h.name for h in inventory.get_group("n8n_servers", default=[])]


def vault_addresses(v) -> list[str]:
    """The names the vault's certificate carries: how the n8n servers reach it, and its name."""
    return sorted({peer(v)[0], v.name})


def vault_tls(v) -> tuple[str, str]:
    return vaultkeys.tls(secret("BACKUP_VAULT_SECRET").unmask(), vault_addresses(v))


def offsite(bk: settings.Backup) -> tuple[list[str], list[str]]:
    """Off-host restic repositories of this host, and those of them that are append-only (the
    vault's: their retention is the vault's prune, runbooks/vault_prune.py)."""
    repos, append_only = [], []
    vaults = vault_hosts()
    if vaults:
        v = vaults[0]  # one vault: every n8n server keeps its own repository in it
        url = vaultkeys.repository_url(peer(v)[0], bk.vault_port, host.name)
        repos.append(url)
        append_only.append(url)
    if os.environ.get("BACKUP_S3_REPOSITORY"):
        repos.append(s3_repository(os.environ["BACKUP_S3_REPOSITORY"], host.name))
    return repos, append_only


def s3_repository(base: str, server: str) -> str:
    """Each n8n server's own repository under the bucket's path (one server's backups never mix
    with another's, and a restore or `latest` never picks another server's)."""
    return f"{base.rstrip('/')}/{server}"


def s3_credentials() -> dict[str, str]:
    """The S3 repository's credentials, as restic reads them from its environment."""
    if not os.environ.get("BACKUP_S3_REPOSITORY"):
        return {}
    return {v.name: os.environ[v.name] for v in VARIABLES if v.name.startswith("AWS_") and os.environ.get(v.name)}


def backup_settings() -> dict:
    """The `backup` section of the host programs' settings (mottivme_host.settings.Backup)."""
    bk, m = settings.Backup.from_data(host.data), settings.Monitor.from_data(host.data)
    st = settings.Stack.from_data(host.data)
    repos, append_only = offsite(bk)
    return {
        "host": host.name,
        "dir": bk.dir,
        "local_repository": bk.local_repository,
        "password_file": PASSWORD_FILE,
        "log": bk.log,
        "keep": retention(bk),
        "check_weekday": bk.check_weekday,
        "check_subset": bk.check_subset,
        "dump_compression": settings.dump_compression(bk.dump_compression),
        "offsite_repositories": repos,
        "append_only_repositories": append_only,
        **({"vault_password_file": VAULT_PASSWORD_FILE, "vault_cert_file": VAULT_CERT_FILE} if append_only else {}),
        "success_hook": bk.success_hook or ping_url(m, f"backup-{host.name}", sender=host.name),
        "failure_hook": bk.failure_hook or ping_url(m, f"backup-{host.name}", sender=host.name, fail=True),
        "hook_curl_args": [] if bk.success_hook else ping_curl_args(m).split(),
        # {major: image@digest} of the Supabase database's major versions (images.lock pins them)
        "postgres_images": {str(m): st.pinned(bk.supabase_postgres_images[m]) for m in bk.supabase_majors},
        "scratch_images": {str(m): st.pinned(bk.supabase_scratch_images[m]) for m in bk.supabase_majors},
        "sources": sources(bk.sources, dict(st.volumes)),
        "env": s3_credentials(),
    }


def vault_settings() -> dict:
    """The `vault` section of the vault's host-program settings (mottivme_host.settings.Vault)."""
    bk = settings.Backup.from_data(host.data)
    return {"path": bk.vault_path, "user": REST_SERVER_USER, "keep": retention(bk)}


def retention(bk: settings.Backup) -> dict:
    """The retention as the host programs take it (mottivme_host.settings.Retention): the n8n
    servers apply it to their repositories, the vault's prune to its own."""
    return {"last": bk.keep_last, "daily": bk.keep_daily, "weekly": bk.keep_weekly, "monthly": bk.keep_monthly}


def sources(configured: list[dict], volumes: dict[str, str]) -> list[dict]:
    """group_data `backup_sources` as the host programs take them: the n8n source with the stack's
    volumes of n8n's files (`volumes`: group_data n8n_volumes), each postgres source with its
    URL from .env (sources whose variable is empty are left out) and, when its `drill_url_env` is
    set, the database the DR drill restores it into. Checked at inventory time
    (tasks/config.py: source_problems)."""
    out = []
    for s in configured:
        if s["kind"] == "n8n":
            out.append({"name": s["name"], "kind": "n8n", "volumes": volumes, "exclude": list(s.get("exclude", []))})
        elif os.environ.get(s["url_env"]):
            out.append({"name": s["name"], "kind": "postgres", "url": os.environ[s["url_env"]],
                        "schemas": s["schemas"] if s.get("schemas") == "all" else list(s.get("schemas", ["public"])),
                        "exclude_schemas": list(s.get("exclude_schemas", [])),
                        "exclude_tables": list(s.get("exclude_tables", [])),
                        "managed_schemas": list(s.get("managed_schemas", [])),
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
    vaults = vault_hosts()
    if vaults:
        operations.secret_file(name="backup: this server's password on the vault (0600)", dest=VAULT_PASSWORD_FILE,
                               content=HiddenValue(vaultkeys.password(secret("BACKUP_VAULT_SECRET").unmask(),
                                                                      host.name) + "\n"))
        files.put(name="backup: the vault's certificate (the only one restic trusts there)",
                  src=StringIO(vault_tls(vaults[0])[1]), dest=VAULT_CERT_FILE, mode="644")
    for old in ("/etc/mottivme/backup_ed25519", "/etc/mottivme/backup_known_hosts"):
        files.file(name=f"backup: {old} is gone (the vault's SFTP account was replaced by its REST server)",
                   path=old, present=False)
    files.file(name="backup: the old settings file is gone (now in the host programs' settings)",
               path="/etc/mottivme/backup.env", present=False)
    files.template(name="backup: cron (daily backup, weekly cleanup)", src="templates/cron-n8n.j2",
                   dest="/etc/cron.d/mottivme-n8n", mode="644", base=b, backup=bk, cleanup=cl)
    files.template(name="backup: log rotation", src="templates/logrotate-n8n-backup.j2",
                   dest="/etc/logrotate.d/mottivme-n8n-backup", mode="644", stack=st, backup=bk, cleanup=cl)


@deploy("Backup vault")
def vault():
    """restic's REST server (Debian's restic-rest-server): append-only (no account can delete or
    rewrite what is there), private repositories (an account reaches only /<its name>/), TLS with
    the derived certificate, one account per n8n server. The n8n servers hold no login here."""
    bk = settings.Backup.from_data(host.data)
    master = secret("BACKUP_VAULT_SECRET").unmask()
    key_pem, cert_pem = vault_tls(host)
    apt.packages(name="vault: restic's REST server, and restic for its prune", packages=["restic-rest-server", "restic"],
                 no_recommends=True)
    files.directory(name="vault: repository directory (the REST server's only)", path=bk.vault_path,
                    user=REST_SERVER_USER, group=REST_SERVER_USER, mode="700", recursive=True)
    changed = [
        operations.secret_file(name="vault: TLS key (0640, the REST server's group)", dest=f"{REST_SERVER_DIR}/tls.key",
                               content=HiddenValue(key_pem), group=REST_SERVER_USER, mode="640"),
        files.put(name="vault: TLS certificate", src=StringIO(cert_pem), dest=f"{REST_SERVER_DIR}/tls.crt", mode="644"),
        operations.secret_file(name=f"vault: accounts ({len(n8n_server_names())} n8n servers)",
                               dest=f"{REST_SERVER_DIR}/users.htpasswd",
                               content=HiddenValue(vaultkeys.htpasswd(master, n8n_server_names())),
                               group=REST_SERVER_USER, mode="640"),
        files.template(name="vault: REST server settings (append-only, private repositories, TLS)",
                       src="templates/restic-rest-server.default.j2", dest="/etc/default/restic-rest-server",
                       mode="644", backup=bk, tls_dir=REST_SERVER_DIR),
    ]
    systemd.service(name="vault: REST server enabled and running", service="restic-rest-server.service",
                    running=True, enabled=True)
    systemd.service(name="vault: REST server restarted (its settings changed)", service="restic-rest-server.service",
                    restarted=True, _if=any_changed(*changed))
    # the SFTP account it replaces: no login for the n8n servers any more
    conf = files.file(name="vault: the SFTP-only sshd drop-in is gone",
                      path="/etc/ssh/sshd_config.d/60-mottivme-backup-vault.conf", present=False)
    server.shell(name="vault: check and reload sshd", commands=["sshd -t", "systemctl reload ssh"],
                 _if=conf.did_change)
    server.user(name="vault: the old SFTP account is gone (the repositories stay)", user="restic", present=False)


def _prune_vault(state, host, password: HiddenValue, old_keys: str):
    tmp = "/root/.mottivme-vault-prune.pw"
    ok, out = operations.run_with_secret_file(host, tmp, password.unmask() + "\n",
                                              f"mottivme-host vault-prune {tmp} --old-keys {old_keys}", print_output=True)
    if not ok:
        host.log_styled("vault prune failed: " + (out.stderr_lines or ["no output"])[-1], fg="red",
                        log_func=logger.error)
    return ok


@operation()
def prune_vault(password: HiddenValue, old_keys: str = "keep"):
    """Apply the retention to the vault's repositories (mottivme-host vault-prune), with the restic
    password in a 0600 file for the run only. Always an action: it counts as a change."""
    yield FunctionCommand(_prune_vault, (password, old_keys), {})
