"""Hosts and secrets from `.env` / the environment, checked before pyinfra connects anywhere.

inventory.py calls `load_inventory()`. Every problem is reported at once, each naming the
variable and how to fix it, and the run stops (exit 2) before any host is contacted.
Secret values are handed to operations only as pyinfra `HiddenValue`s (`secret(name)`), so
pyinfra prints `*MASKED*` wherever it would show them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pyinfra.api import HiddenValue

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SecretSpec:
    name: str
    check: str  # regular expression the whole value must match
    problem: str  # what a bad value means
    fix: str  # how to make a good one


SECRETS = [
    SecretSpec("N8N_ENCRYPTION_KEY", r"[A-Za-z0-9+/=_-]{32,}",
               "must be at least 32 characters of letters, digits or + / = _ -",
               "generate it ONCE with `openssl rand -hex 32`, keep it forever and never rotate it: "
               "n8n encrypts every credential with it (an existing server's key is in "
               "/opt/n8n/.env)"),
    SecretSpec("POSTGRES_PASSWORD", r"[A-Za-z0-9_-]{16,}",
               "must be at least 16 characters of letters, digits, _ or -",
               "generate it with `openssl rand -hex 24`"),
    SecretSpec("N8N_OWNER_EMAIL", r"[^@\s]+@[^@\s]+\.[^@\s]+",
               "must be an e-mail address", "set the e-mail of n8n's owner account"),
    SecretSpec("N8N_OWNER_PASSWORD", r"(?=.*[0-9])(?=.*[A-Z]).{8,64}",
               "must be 8-64 characters with at least one digit and one capital letter (n8n's rule)",
               "choose one, e.g. `echo \"N8n$(openssl rand -hex 12)\"`"),
    SecretSpec("RESTIC_PASSWORD", r".{16,}",
               "must be at least 16 characters",
               "generate it with `openssl rand -hex 24` and keep a copy in the password manager: "
               "without it no backup can be read"),
    SecretSpec("N8N_HOST", r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?",
               "must be a bare host name (no https://, no path), e.g. n8n.mottivme.com.br",
               "set the public name whose DNS points at the server"),
]

# inventory group -> environment variable listing its hosts
GROUP_VARS = {"n8n_servers": "N8N_SERVERS", "backup_vault": "BACKUP_VAULT", "monitors": "MONITOR_SERVERS",
              "n8n_workers": "N8N_WORKER_SERVERS"}


# credentials of the S3-compatible off-host repository (BACKUP_S3_REPOSITORY), as restic reads them
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
S3_OPTIONAL = ("AWS_DEFAULT_REGION",)


class ConfigError(Exception):
    pass


def secret(name: str) -> HiddenValue:
    """The secret's value, masked in pyinfra's output (templates call `.unmask()`)."""
    return HiddenValue(os.environ[name])


def peer(h) -> tuple[str, int]:
    """(address, SSH port) by which the other servers reach inventory host `h` (the sandbox: its
    private address; real hosts: their inventory name)."""
    return h.data.get("peer_address") or h.name, h.data.get("peer_ssh_port") or 22


def check_secrets(env: dict | None = None) -> list[str]:
    env = os.environ if env is None else env
    errors = []
    for spec in SECRETS:
        value = env.get(spec.name, "")
        if not value:
            errors.append(f"{spec.name} is not set: {spec.fix}, then put it in .env (see .env.example)")
        elif not re.fullmatch(spec.check, value):
            errors.append(f"{spec.name} {spec.problem}: {spec.fix}")
    return errors


def check_optional(groups: dict, env: dict | None = None) -> list[str]:
    """Variables needed only by some set-ups (off-host backups, the Supabase dump)."""
    env = os.environ if env is None else env
    errors = []
    if groups.get("backup_vault"):
        key = env.get("BACKUP_SFTP_KEY_FILE", "")
        if not key:
            errors.append("BACKUP_SFTP_KEY_FILE is not set but BACKUP_VAULT is: create a key with "
                          "`ssh-keygen -t ed25519 -N '' -f ~/.ssh/mottivme-backup` and set its path")
        elif not Path(key).expanduser().exists():
            errors.append(f"BACKUP_SFTP_KEY_FILE={key} does not exist: create it with "
                          f"`ssh-keygen -t ed25519 -N '' -f {key}`")
    if groups.get("n8n_workers"):
        key = env.get("WORKER_TUNNEL_KEY_FILE", "")
        if not key or not Path(key).expanduser().exists():
            errors.append(f"WORKER_TUNNEL_KEY_FILE {'is not set' if not key else f'={key} does not exist'} but "
                          "N8N_WORKER_SERVERS is: the worker servers reach Redis and PostgreSQL through an SSH "
                          "tunnel with this key; create it with "
                          f"`ssh-keygen -t ed25519 -N '' -f {key or '~/.ssh/mottivme-worker-tunnel'}`")
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", env.get("REDIS_PASSWORD", "")):
            errors.append("REDIS_PASSWORD must be at least 16 letters, digits, _ or - when N8N_WORKER_SERVERS is "
                          "set (queue mode): generate it with `openssl rand -hex 24`")
    if groups.get("monitors"):
        token = env.get("MONITOR_PING_TOKEN", "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{24,}", token):
            errors.append("MONITOR_PING_TOKEN " + ("is not set" if not token else "must be at least 24 letters, "
                          "digits, _ or -") + " but MONITOR_SERVERS is: generate it with `openssl rand -hex 24` "
                          "(the servers' heartbeats to the monitor carry it)")
    s3 = env.get("BACKUP_S3_REPOSITORY", "")
    if s3:
        if not re.fullmatch(r"s3:(https?://)?[^/\s]+/[^/\s]+(/\S*)?", s3):
            errors.append(f"BACKUP_S3_REPOSITORY={s3} is not a restic S3 URL: write "
                          "s3:https://HOST/BUCKET/PATH (any S3-compatible service; s3:s3.amazonaws.com/BUCKET/PATH for AWS)")
        for var in S3_KEYS:
            if not env.get(var):
                errors.append(f"{var} is not set but BACKUP_S3_REPOSITORY is: set the access key the S3 "
                              "service issued for that bucket (read, write and delete on it)")
    url = env.get("SUPABASE_DB_URL", "")
    if url:
        m = re.fullmatch(r"postgres(?:ql)?://[^@/\s]+@([^:/\s]+)(?::\d+)?/\S+", url)
        if not m:
            errors.append("SUPABASE_DB_URL must look like postgresql://USER:PASSWORD@HOST:5432/postgres "
                          "(Supabase: Project Settings > Database > Connection string)")
        elif m.group(1).endswith(".supabase.co") and not m.group(1).startswith("db."):
            errors.append(f"SUPABASE_DB_URL points at {m.group(1)}, Supabase's API host: the database "
                          "is db.<project-ref>.supabase.co or the pooler (*.pooler.supabase.com)")
    return errors


def parse_hosts(value: str, var: str) -> list[tuple[str, int | None]]:
    hosts = []
    for item in filter(None, (x.strip() for x in value.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?", item)
        if not m:
            raise ConfigError(f"{var}: '{item}' is not host or host:port (e.g. {var}=n8n1.example.com,10.0.0.5:2222)")
        hosts.append((m.group(1), int(m.group(2)) if m.group(2) else None))
    return hosts


def sandbox_state_file() -> Path:
    state = Path(os.environ.get("SBX_STATE") or ROOT / ".sandbox")
    return (state if state.is_absolute() else ROOT / state) / "hosts.json"


def load_inventory(env_file: str | Path | None = None) -> dict[str, list]:
    """Return {group: [(name, host_data), ...]} or exit(2) with every problem named.

    Values already in the environment win over `.env` (MOTTIVME_ENV_FILE names another file)."""
    from dotenv import load_dotenv

    load_dotenv(env_file or os.environ.get("MOTTIVME_ENV_FILE") or ROOT / ".env", override=False)
    try:
        groups, sandbox = _hosts()
    except ConfigError as e:
        _die([str(e)])
    if sandbox:
        names = ", ".join(f"{n} ({g})" for g, hs in groups.items() if g != "sandbox" for n, _ in hs)
        print(f"inventory: no hosts in .env, targeting the sandbox in {sandbox.parent.name}/: {names}", file=sys.stderr)
        # the sandbox's own throwaway secrets fill whatever .env / the environment do not set
        load_dotenv(sandbox.parent / "secrets.env", override=False)
    errors = check_secrets() + check_optional(groups)
    if errors:
        _die(errors)
    return groups


def inventory_groups() -> dict[str, list]:
    """{group: [(name, host_data), ...]} as the inventory builds it, without its checks (for
    programs such as the DR drill that reach the same servers outside pyinfra)."""
    return _hosts()[0]


def _hosts() -> tuple[dict[str, list], Path | None]:
    from dotenv import load_dotenv

    configured = {g: parse_hosts(os.environ.get(v, ""), v) for g, v in GROUP_VARS.items()}
    if any(configured.values()):
        user = os.environ.get("SSH_USER", "root")
        key = os.environ.get("SSH_KEY_FILE")
        if key and not Path(key).expanduser().exists():
            raise ConfigError(f"SSH_KEY_FILE={key} does not exist: point it at the private key that logs in as {user}")
        groups = {}
        for group, hosts in configured.items():
            groups[group] = []
            for name, port in hosts:
                data = {"ssh_user": user}
                if port:
                    data["ssh_port"] = port
                data["peer_address"], data["peer_ssh_port"] = name, port or 22
                if key:
                    data["ssh_key"] = str(Path(key).expanduser())
                if os.environ.get("SSH_KNOWN_HOSTS_FILE"):
                    data["ssh_known_hosts_file"] = os.environ["SSH_KNOWN_HOSTS_FILE"]
                groups[group].append((name, data))
        return groups, None

    state = sandbox_state_file()
    hosts = json.loads(state.read_text())["hosts"] if state.exists() else []
    if not hosts:
        raise ConfigError(
            "no hosts to deploy to: set N8N_SERVERS (and SSH_USER, SSH_KEY_FILE) in .env for real "
            "servers, or start a local sandbox server with `make sandbox-up`"
        )
    groups = {g: [] for g in GROUP_VARS}
    for h in hosts:
        groups.setdefault(h["group"], []).append((h["name"], {
            "ssh_hostname": h["ssh_host"], "ssh_port": h["ssh_port"], "ssh_user": h["ssh_user"],
            "ssh_key": h["key"], "ssh_known_hosts_file": "/dev/null",
            "ssh_strict_host_key_checking": "off",
            "n8n_public_url": f"https://localhost:{h['https_port']}/",
            "private_ip": h["private_ip"],
            # how the other servers reach this one (backup vault over SFTP)
            "peer_address": h["private_ip"], "peer_ssh_port": 22,
        }))
    groups["sandbox"] = [h["name"] for h in hosts]  # group_data/sandbox.py
    for h in hosts:
        if h["group"] == "supabase" and not os.environ.get("SUPABASE_DB_URL"):
            # the sandbox's stand-in for Supabase's database (sandbox/supabase.py)
            load_dotenv(state.parent / "secrets.env", override=False)
            os.environ["SUPABASE_DB_URL"] = (f"postgresql://postgres:{os.environ['SUPABASE_STANDIN_PASSWORD']}"
                                             f"@{h['private_ip']}:5432/postgres")
    return groups, state


def _die(errors: list[str]) -> None:
    print("mottivme-infra: cannot start, fix the configuration first (nothing was contacted):",
          file=sys.stderr)
    for e in errors:
        print(f"  - {e}", file=sys.stderr)
    sys.exit(2)


def rotation_pending_file() -> Path:
    """Where a secret rotation keeps its new values until every host has them and they are written
    back: beside the operator's .env (the sandbox: beside its secrets.env)."""
    env = Path(os.environ.get("MOTTIVME_ENV_FILE") or ROOT / ".env")
    sandbox_secrets = sandbox_state_file().parent / "secrets.env"
    return (env if env.is_file() or not sandbox_secrets.is_file() else sandbox_secrets).with_name(".rotation-pending.env")


def persist_secret(name: str, value: str) -> str:
    """Write a rotated secret back where the operator keeps it; return where (never the value).

    The operator's .env (MOTTIVME_ENV_FILE) when it holds the variable, else the sandbox's
    secrets.env when that is where it came from; otherwise the value only lived in the process
    environment and the operator must update it there."""
    from dotenv import dotenv_values, set_key

    candidates = [Path(os.environ.get("MOTTIVME_ENV_FILE") or ROOT / ".env"), sandbox_state_file().parent / "secrets.env"]
    for f in candidates:
        if f.is_file() and name in dotenv_values(f):
            set_key(str(f), name, value, quote_mode="never")
            os.environ[name] = value
            return str(f)
    return ""
