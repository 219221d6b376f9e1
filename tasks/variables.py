"""The one registry of the variables the project reads from `.env` / the environment.

Each variable says once: whether it is a secret, what a good value looks like, how to make one,
when it is needed (always, when a group has hosts, when another variable is set) and what to
write about it in `.env.example`. From this list come the checks that run before any host is
contacted (tasks/config.py), `.env.example` (`python -m tasks.variables > .env.example`; a unit
test fails when they differ), the sandbox's throwaway values and the tests' clean environment.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mottivme_host.stack import RESERVED_SOURCE_NAMES, SCHEMA_NAME, SOURCE_NAME, TABLE_NAME  # the host's own rules
from tasks import groups


@dataclass(frozen=True)
class Variable:
    name: str
    section: str
    doc: str  # the comment above it in .env.example
    secret: bool = False  # a value that is never printed
    check: str = ""  # regular expression the whole value must match
    problem: str = ""  # what a value that does not match means
    fix: str = ""  # how to make a good one
    needed: str = ""  # "always"; "group:<name>" (that group has hosts); "var:<NAME>" (that variable is set)
    file: bool = False  # the value is a path that must exist
    example: str = ""  # the value shown in .env.example
    # how a throwaway value is made (the sandbox); None: it has no generated value
    generate: Callable[[], str] | None = None
    extra: Callable[[str], str] | None = None  # a further check: returns a problem, or ""


# the shape every database URL is checked for first (then libpq reads it: postgres_url_problem)
POSTGRES_URL = r"postgres(?:ql)?://[^@/\s]+@([^:/\s]+)(?::\d+)?/\S+"
POSTGRES_URL_PROBLEM = "must look like postgresql://USER:PASSWORD@HOST:5432/DATABASE"
# an http(s) URL the project calls (no quote, blank or $ that the files it is written to would read)
HTTP_URL = r"https?://[^\s'\\$]+"
HTTP_URL_PROBLEM = "must be an http(s) URL"


def _hex(n: int) -> Callable[[], str]:
    return lambda: secrets.token_hex(n)


def postgres_url_problem(url: str) -> str:
    """The URL as libpq itself reads it (psycopg's conninfo_to_dict is PQconninfoParse), and as the
    servers split it into libpq's variables (mottivme_host.pgaccess.pg_env): both must agree, so what
    reaches pg_dump is what the operator wrote. Returns a problem, never any part of the URL."""
    from psycopg import conninfo

    from mottivme_host.pgaccess import pg_env

    encode = ("percent-encode the special characters of the user and password (% as %25, @ as %40, / as %2F, "
              ": as %3A, # as %23, ? as %3F)")
    try:
        libpq = conninfo.conninfo_to_dict(url)
    except Exception:  # libpq's message quotes the URL: never shown
        return f"is not a URL libpq can read: {encode}"
    missing = [k for k in ("host", "user", "password", "dbname") if not libpq.get(k)]
    if missing:
        return f"has no {', '.join(missing)} (libpq reads none): write postgresql://USER:PASSWORD@HOST:5432/DATABASE"
    try:
        ours = pg_env(url)
    except ValueError as e:  # its message names no part of the URL
        return f"cannot be used as it is: {e}"
    theirs = {"PGHOST": libpq["host"].lower(), "PGPORT": str(libpq.get("port") or 5432), "PGUSER": libpq["user"],
              "PGPASSWORD": libpq["password"], "PGDATABASE": libpq["dbname"]}
    if any(ours.get(k) != v for k, v in theirs.items()):
        return f"is read differently by libpq and by the servers' programs (one host only, no IPv6 brackets): {encode}"
    return ""


def same_database(a: str, b: str) -> bool:
    """Two URLs naming one database (host, port and database name, as the servers split them)."""
    from mottivme_host.pgaccess import pg_env

    try:
        x, y = pg_env(a), pg_env(b)
    except ValueError:
        return False
    return all(x.get(k) == y.get(k) for k in ("PGHOST", "PGPORT", "PGDATABASE"))


def _supabase_url(url: str) -> str:
    problem = postgres_url_problem(url)
    if problem:
        return problem
    m = re.fullmatch(POSTGRES_URL, url)
    if m and m.group(1).lower().endswith(".supabase.co") and not m.group(1).lower().startswith("db."):
        return (f"points at {m.group(1)}, Supabase's API host: the database is db.<project-ref>.supabase.co "
                "or the pooler (*.pooler.supabase.com)")
    return ""


HOSTS = "hosts (leave empty to target the local sandbox started by `make sandbox-up`)"
SECRETS = "secrets"
MONITORING = "monitoring (a small server apart from n8n: tasks/monitoring.py, docs/monitoring.md)"
SCALING = "scaling (queue mode, tiers prata and up: docs/scaling.md)"
RAILWAY = "Railway (the APIs' platform): `mottivme railway-redeploy`, docs/runbooks/railway_redeploy.md"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

VARIABLES: tuple[Variable, ...] = (
    # --- hosts ---------------------------------------------------------------------------------
    Variable(groups.N8N_SERVERS.variable, HOSTS, "Comma-separated host or host:port list of the n8n servers."),
    Variable("SSH_USER", HOSTS, "SSH user on the servers (root, or a user with passwordless sudo) and its private key.",
             example="root"),
    Variable("SSH_KEY_FILE", HOSTS, "", file=True, example="~/.ssh/id_ed25519",
             fix="point it at the private key that logs in as SSH_USER"),
    Variable("DR_DRILL_ENVIRONMENT", HOSTS,
             'Set to "staging" when N8N_SERVERS is a staging inventory (the DR drill refuses production).'),
    Variable("DR_DRILL_READY_URL", HOSTS,
             "The URL the DR drill polls for readiness (default: https://$N8N_HOST/healthz/readiness)."),
    Variable("SSH_KNOWN_HOSTS_FILE", HOSTS,
             "known_hosts file used for the servers (default: ~/.ssh/known_hosts; new hosts are accepted\n"
             "on first contact and checked afterwards)."),
    Variable(groups.BACKUP_VAULT.variable, HOSTS,
             "Backup vault: a Debian 13 server that keeps the off-host restic repositories (host or host:port;\n"
             "the n8n servers reach it by this name). The deploy runs restic's REST server there: append-only,\n"
             "one private account per n8n server, TLS (docs/security.md)."),
    Variable("BACKUP_VAULT_SECRET", HOSTS,
             "Master of the vault's credentials: each n8n server's account password and the vault's TLS key\n"
             "are derived from it (tasks/vaultkeys.py). `openssl rand -hex 32`; changing it re-keys both ends\n"
             "on the next deploy.",
             secret=True, needed=f"group:{groups.BACKUP_VAULT.name}", check=r"[A-Za-z0-9_-]{32,}",
             problem="must be at least 32 characters of letters, digits, _ or -",
             fix="generate it with `openssl rand -hex 32`", generate=_hex(32)),
    Variable("BACKUP_S3_REPOSITORY", HOSTS,
             "... and/or an S3-compatible bucket (AWS S3, Backblaze B2, Wasabi, MinIO, Cloudflare R2 ...),\n"
             "as a restic URL: s3:https://HOST/BUCKET/PATH (AWS: s3:s3.amazonaws.com/BUCKET/PATH); each n8n server\n"
             "keeps its own repository under it, PATH/<server name>. Empty: none.",
             check=r"s3:(https?://)?[^/\s]+/[^/\s]+(/\S*)?", problem="is not a restic S3 URL",
             fix="write s3:https://HOST/BUCKET/PATH (any S3-compatible service; s3:s3.amazonaws.com/BUCKET/PATH for AWS)"),
    Variable("AWS_ACCESS_KEY_ID", HOSTS,
             "Its access key (read, write and delete on that bucket only), written 0600 on the n8n servers.",
             needed="var:BACKUP_S3_REPOSITORY",
             fix="set the access key the S3 service issued for that bucket (read, write and delete on it)"),
    Variable("AWS_SECRET_ACCESS_KEY", HOSTS, "", secret=True, needed="var:BACKUP_S3_REPOSITORY",
             fix="set the access key the S3 service issued for that bucket (read, write and delete on it)"),
    Variable("AWS_DEFAULT_REGION", HOSTS, "Region, where the service needs one (optional)."),
    # --- secrets -------------------------------------------------------------------------------
    Variable("N8N_ENCRYPTION_KEY", SECRETS,
             "Encrypts every n8n credential. Generate ONCE (`openssl rand -hex 32`), keep it forever in a\n"
             "password manager AND here. Never rotate it: with another key n8n cannot read its credentials.",
             secret=True, needed="always", check=r"[A-Za-z0-9+/=_-]{32,}",
             problem="must be at least 32 characters of letters, digits or + / = _ -",
             fix="generate it ONCE with `openssl rand -hex 32`, keep it forever and never rotate it: n8n encrypts "
                 "every credential with it (an existing server's key is in /opt/n8n/.env)",
             generate=_hex(32)),
    Variable("POSTGRES_PASSWORD", SECRETS, "Password of n8n's own PostgreSQL (user n8n). `openssl rand -hex 24`",
             secret=True, needed="always", check=r"[A-Za-z0-9_-]{16,}",
             problem="must be at least 16 characters of letters, digits, _ or -",
             fix="generate it with `openssl rand -hex 24`", generate=_hex(24)),
    Variable("N8N_RUNNERS_AUTH_TOKEN", SECRETS,
             "Shared by n8n's task broker and its runners (n8n_runners_mode \"external\"), the one secret the\n"
             "runners' containers hold. `openssl rand -hex 32`",
             secret=True, needed="always", check=r"[A-Za-z0-9_-]{32,}",
             problem="must be at least 32 letters, digits, _ or -",
             fix="generate it with `openssl rand -hex 32`", generate=_hex(32)),
    Variable("N8N_OWNER_EMAIL", SECRETS,
             "n8n's owner account, claimed by the first deploy so a fresh server is never open for takeover.\n"
             "Password: 8-64 characters with a digit and a capital letter.",
             needed="always", check=r"[^@\s]+@[^@\s]+\.[^@\s]+", problem="must be an e-mail address",
             fix="set the e-mail of n8n's owner account"),
    Variable("N8N_OWNER_PASSWORD", SECRETS, "", secret=True, needed="always", check=r"(?=.*[0-9])(?=.*[A-Z]).{8,64}",
             problem="must be 8-64 characters with at least one digit and one capital letter (n8n's rule)",
             fix="choose one, e.g. `echo \"N8n$(openssl rand -hex 12)\"`",
             generate=lambda: f"N8n{secrets.token_hex(12)}"),
    Variable("RESTIC_PASSWORD", SECRETS,
             "Password of the restic backup repositories (local and off-host). `openssl rand -hex 24`.\n"
             "Keep a copy in the password manager: without it no backup can be read.",
             secret=True, needed="always", check=r".{16,}", problem="must be at least 16 characters",
             fix="generate it with `openssl rand -hex 24` and keep a copy in the password manager: without it no "
                 "backup can be read", generate=_hex(24)),
    Variable("SUPABASE_DB_URL", SECRETS,
             "Supabase's database, dumped by the daily backup and cleaned weekly (empty: skipped).\n"
             "The DATABASE host: db.<project-ref>.supabase.co (or the pooler), not <ref>.supabase.co.\n"
             "Supabase: Project Settings > Database > Connection string (URI).",
             secret=True, check=POSTGRES_URL,
             problem="must look like postgresql://USER:PASSWORD@HOST:5432/postgres",
             fix="Supabase: Project Settings > Database > Connection string", extra=_supabase_url),
    Variable("DR_DRILL_SUPABASE_URL", SECRETS,
             "The database the DR drill restores Supabase into, in one transaction, and checks: an empty\n"
             "database of its own (a staging project, or `create database drill` beside it), NEVER the one\n"
             "SUPABASE_DB_URL names. Empty: the drill does not restore Supabase (docs/runbooks/dr_drill.md).",
             secret=True, check=POSTGRES_URL, problem=POSTGRES_URL_PROBLEM,
             fix="point it at an empty database of its own, never the one SUPABASE_DB_URL names",
             extra=postgres_url_problem),
    Variable("N8N_HOST", SECRETS, "Public host name of n8n (DNS A record -> the server). Caddy gets its certificate for it.",
             needed="always", check=r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?",
             problem="must be a bare host name (no https://, no path), e.g. n8n.mottivme.com.br",
             fix="set the public name whose DNS points at the server", example="n8n.mottivme.com.br"),
    # --- monitoring ----------------------------------------------------------------------------
    Variable(groups.MONITORS.variable, MONITORING,
             "The monitor host(s), host or host:port. Serves the status page (group_data monitor_status_host)."),
    Variable("MONITOR_PING_TOKEN", MONITORING,
             "Master of the heartbeat tokens (backup done, disk usage): each server gets a token derived from it\n"
             "for its own checks only (mottivme_monitor/tokens.py); this one stays here and on the monitor.\n"
             "`openssl rand -hex 24`",
             secret=True, needed=f"group:{groups.MONITORS.name}", check=r"[A-Za-z0-9_-]{24,}",
             problem="must be at least 24 letters, digits, _ or -",
             fix="generate it with `openssl rand -hex 24` (each server's heartbeat token is derived from it)",
             generate=_hex(24)),
    Variable("MONITOR_OPS_PASSWORD", MONITORING,
             "The operators' status page (https://<monitor_status_host>/ops/: every check, the servers' backups,\n"
             "disks and capacity, the reasons as written): its password, user group_data monitor_ops_user.\n"
             "`openssl rand -hex 16`",
             secret=True, needed=f"group:{groups.MONITORS.name}", check=r"[A-Za-z0-9_-]{24,}",
             problem="must be at least 24 letters, digits, _ or - (a generated one: its hash is cheap to check)",
             fix="generate it with `openssl rand -hex 16`", generate=_hex(16)),
    Variable("MONITOR_DEADMAN_URL", MONITORING,
             "Who watches the monitor: a dead man's switch outside (healthchecks.io or a compatible service)\n"
             "pinged after every round; it alerts when the pings stop. e.g. https://hc-ping.com/<uuid>; empty = none.",
             secret=True, check=r"https?://[^\s/'\\$]+(/[^\s'\\$]*)?", problem="must be an http(s) ping URL",
             fix="paste the check's ping URL from healthchecks.io (or a compatible service)"),
    Variable("MONITOR_WHATSAPP_URL", MONITORING,
             "Notification channels, as apprise URLs (https://github.com/caronc/apprise/wiki); empty = off.\n"
             "WhatsApp (Meta Cloud API), an approved template with one body parameter (Meta delivers a free-form\n"
             "message only within 24 h of the recipient's last one; docs/monitoring.md, WhatsApp):\n"
             "whatsapp://TEMPLATE:TOKEN@FROM_PHONE_ID/TO_PHONE?lang=pt_BR&:body=1", secret=True),
    Variable("MONITOR_EMAIL_URL", MONITORING,
             "E-mail: mailtos://user:password@smtp.example.com?to=oncall@mottivme.com.br", secret=True),
    Variable("MONITOR_CLIENTS_URL", MONITORING,
             "The clients' channel (e.g. a WhatsApp group or a mailing list, as an apprise URL): the incidents\n"
             "the team posts with --notify-clients, and an outage past its check's clients_after_minutes.",
             secret=True),
    Variable("MONITOR_PHONE_URL", MONITORING,
             "Phone call (apprise has none): a provider's HTTP API taking a form POST, e.g. Twilio's\n"
             "https://api.twilio.com/2010-04-01/Accounts/ACxxx/Calls.json with AUTH \"ACxxx:auth-token\"."),
    Variable("MONITOR_PHONE_AUTH", MONITORING, "", secret=True),
    Variable("MONITOR_PHONE_TO", MONITORING, ""),
    Variable("MONITOR_PHONE_FROM", MONITORING, ""),
    Variable("RAILWAY_HEALTH_URL", MONITORING,
             "Services checked (a check whose variables are empty is left out; the deploy says which).\n"
             "Railway's health URL, e.g. https://agenticoskevsacademy-production.up.railway.app/health"),
    Variable("RAILWAY_STATUS_URL", MONITORING,
             "Railway's own status (a warning when a component of theirs is not operational):\n"
             "https://api.railwaystatus.com/status, the JSON behind status.railway.com (empty: not checked)",
             check=HTTP_URL, problem=HTTP_URL_PROBLEM,
             fix="set it to https://api.railwaystatus.com/status, or leave it empty"),
    Variable("SUPABASE_PROJECT_REF", MONITORING,
             "Supabase REST API: https://<ref>.supabase.co/rest/v1/ with the anon (public) key"),
    Variable("SUPABASE_ANON_KEY", MONITORING, "", secret=True),
    Variable("GHL_LOCATION_ID", MONITORING,
             "GoHighLevel API v2 (services.leadconnectorhq.com): a location id and a private integration token"),
    Variable("GHL_API_TOKEN", MONITORING, "", secret=True),
    Variable("SOCIALFY_URL", MONITORING, "Socialfy (the SOP's fourth endpoint), e.g. https://socialfy-platform.vercel.app"),
    # --- Railway -------------------------------------------------------------------------------
    Variable("RAILWAY_TOKEN", RAILWAY,
             "A Railway account or workspace token (railway.com: Account Settings, Tokens) that may redeploy\n"
             "the service; the runbook sends it as `Authorization: Bearer`.", secret=True, check=UUID,
             problem="must be a Railway token (a UUID)", fix="create one at railway.com: Account Settings, Tokens"),
    Variable("RAILWAY_SERVICE_ID", RAILWAY,
             "The service and its environment (the dashboard's URL: /project/P/service/S?environmentId=E)",
             check=UUID, problem="must be the service's id (a UUID)", needed="var:RAILWAY_TOKEN",
             fix="copy it from the service's URL in Railway's dashboard"),
    Variable("RAILWAY_ENVIRONMENT_ID", RAILWAY, "", check=UUID, problem="must be the environment's id (a UUID)",
             needed="var:RAILWAY_TOKEN", fix="copy it from the service's URL in Railway's dashboard (environmentId=)"),
    Variable("RAILWAY_API_URL", RAILWAY,
             "Railway's public GraphQL API; empty = https://backboard.railway.com/graphql/v2 (the tests: a stand-in)",
             check=HTTP_URL, problem=HTTP_URL_PROBLEM,
             fix="leave it empty for Railway's own API"),
    # --- scaling -------------------------------------------------------------------------------
    Variable("REDIS_PASSWORD", SCALING, "Password of Redis (n8n's queue). Needed from tier prata up. `openssl rand -hex 24`",
             secret=True, needed=f"group:{groups.N8N_WORKERS.name}", check=r"[A-Za-z0-9_-]{16,}",
             problem="must be at least 16 letters, digits, _ or -",
             fix="generate it with `openssl rand -hex 24` (queue mode)", generate=_hex(24)),
    Variable(groups.N8N_WORKERS.variable, SCALING,
             "Servers that run only n8n workers (tiers ouro and platina), host or host:port, comma-separated."),
    Variable("WORKER_TUNNEL_KEY_FILE", SCALING,
             "Private key the worker servers use for their SSH tunnel to the main server's Redis and\n"
             "PostgreSQL (its public half goes into a forwarding-only account there).\n"
             "Create it with: ssh-keygen -t ed25519 -N '' -f ~/.ssh/mottivme-worker-tunnel",
             needed=f"group:{groups.N8N_WORKERS.name}", file=True,
             fix="the worker servers reach Redis and PostgreSQL through an SSH tunnel with this key; create it "
                 "with `ssh-keygen -t ed25519 -N '' -f ~/.ssh/mottivme-worker-tunnel`"),
    # --- where the settings come from ----------------------------------------------------------
    Variable("MOTTIVME_ENV_FILE", "", ""),  # another file instead of ./.env (tests); not in .env itself
    # another images lock instead of ./images.lock (tasks/images.py: one per environment, tests)
    Variable("MOTTIVME_IMAGES_LOCK", "", ""),
    # "sandbox": the local sandbox whatever .env lists, and no value from .env or the shell (make demo)
    Variable("MOTTIVME_TARGET", "", ""),
)

BY_NAME = {v.name: v for v in VARIABLES}
ALWAYS = tuple(v.name for v in VARIABLES if v.needed == "always")
IN_ENV_EXAMPLE = tuple(v for v in VARIABLES if v.section)


def problems(env, group_hosts: dict[str, list]) -> list[str]:
    """Every problem of `env` (a mapping), each naming the variable and its fix; never its value."""
    out = []
    for v in VARIABLES:
        value = env.get(v.name, "") or ""
        why = ""
        if v.needed == "always":
            why = "always"
        elif v.needed.startswith("group:") and group_hosts.get(v.needed[6:]):
            why = next(g.variable for g in groups.GROUPS if g.name == v.needed[6:])
        elif v.needed.startswith("var:") and env.get(v.needed[4:]):
            why = v.needed[4:]
        if not value:
            if why == "always":
                out.append(f"{v.name} is not set: {v.fix}, then put it in .env (see .env.example)")
            elif why:
                out.append(f"{v.name} is not set but {why} is: {v.fix}")
            continue
        if value != value.strip():
            out.append(f"{v.name} has spaces at its start or end (inside quotes in .env?): remove them")
            continue
        if (v.section == MONITORING or v.name == "SUPABASE_DB_URL") and re.search(r"['\\$\n]", value):
            # (the monitor's environment file holds these; the Supabase URL for its database check)
            out.append(f"{v.name} holds a quote, a backslash or a $, which the monitor's environment file (systemd) "
                       "does not keep as written: percent-encode them in a URL (' as %27, \\ as %5C, $ as %24)")
            continue
        if v.check and not re.fullmatch(v.check, value):
            out.append(f"{v.name} {v.problem}: {v.fix}")  # never the value: it may be a secret mistyped
            continue
        if v.file and (v.needed == "" or why) and not Path(value).expanduser().exists():
            out.append(f"{v.name}={value} does not exist: {v.fix}")
            continue
        if v.extra:
            problem = v.extra(value)
            if problem:
                out.append(f"{v.name} {problem}")
    return out


def source_problems(sources: list[dict], env) -> list[str]:
    """group_data `backup_sources` (tasks/backup.py): well-formed, and each postgres source's URL
    (named by its `url_env`) a PostgreSQL URL when set. Never the URL itself in a message."""
    out, names = [], []
    where = "group_data backup_sources"
    for i, s in enumerate(sources):
        name, kind = s.get("name", ""), s.get("kind")
        if not SOURCE_NAME.fullmatch(str(name)) or name in RESERVED_SOURCE_NAMES or name in names:
            out.append(f"{where}[{i}]: name {name!r} must be unique, up to 40 lower-case letters, digits, _ or -, "
                       f"and not {', '.join(sorted(RESERVED_SOURCE_NAMES))} (its directory in the snapshot)")
        names.append(name)
        if kind == "n8n":
            if name != "n8n":
                out.append(f"{where}[{i}]: the n8n source is named \"n8n\"")
            exclude = s.get("exclude", [])
            if not isinstance(exclude, list) or not all(isinstance(x, str) and x and not x.startswith("-")
                                                        for x in exclude):
                out.append(f"{where}[{i}] (n8n): exclude must be a list of tar patterns of files left out of n8n's "
                           "volumes, e.g. [\"n8nEventLog*.log\"]")
        elif kind == "postgres":
            var = s.get("url_env", "")
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", str(var)):
                out.append(f"{where}[{i}] ({name}): url_env must name the .env variable holding its URL, e.g. "
                           "ANALYTICS_DB_URL")
            elif env.get(var) and not re.fullmatch(POSTGRES_URL, env[var]):
                out.append(f"{var} (backup source {name}) {POSTGRES_URL_PROBLEM}")
            elif env.get(var) and (problem := postgres_url_problem(env[var])):
                out.append(f"{var} (backup source {name}) {problem}")
            drill = s.get("drill_url_env", "")
            if drill and not re.fullmatch(r"[A-Z][A-Z0-9_]*", str(drill)):
                out.append(f"{where}[{i}] ({name}): drill_url_env must name the .env variable of the DR drill's "
                           "database, e.g. DR_DRILL_SUPABASE_URL")
            elif drill and env.get(drill) and same_database(env.get(drill, ""), env.get(var, "")):
                out.append(f"{drill} names the database {var} names (backup source {name}): the DR drill would "
                           "restore over it; point it at an empty database of its own")
            elif drill and env.get(drill) and drill not in BY_NAME and (problem := postgres_url_problem(env[drill])):
                out.append(f"{drill} (the drill database of {name}) {problem}")
            schemas = s.get("schemas", ["public"])
            if schemas != "all" and (not isinstance(schemas, list) or not schemas or not all(
                    isinstance(x, str) and SCHEMA_NAME.fullmatch(x) for x in schemas)):
                out.append(f"{where}[{i}] ({name}): schemas must be \"all\" or a list of lower-case schema names, "
                           "e.g. [\"public\"]")
            for key, pattern, what in (("exclude_schemas", SCHEMA_NAME, "lower-case schema names"),
                                       ("managed_schemas", SCHEMA_NAME, "lower-case schema names"),
                                       ("exclude_tables", TABLE_NAME, "lower-case schema.table names")):
                listed = s.get(key, [])
                if not isinstance(listed, list) or not all(isinstance(x, str) and pattern.fullmatch(x) for x in listed):
                    out.append(f"{where}[{i}] ({name}): {key} must be a list of {what}")
                elif listed and schemas != "all":
                    out.append(f"{where}[{i}] ({name}): {key} goes with schemas \"all\" (a list of schemas names "
                               "what is dumped)")
        else:
            out.append(f"{where}[{i}] ({name}): kind must be \"n8n\" or \"postgres\", not {kind!r}")
    if names.count("n8n") != 1:
        out.append(f"{where}: needs exactly one source of kind n8n, named \"n8n\"")
    return out


def env_example() -> str:
    """The text of .env.example."""
    lines = ["# mottivme-infra configuration. Copy to .env (git-ignored) and fill in. Every variable the",
             "# project reads is listed here. The deploy checks them all before it contacts any host and",
             "# names any that is missing or malformed. (Generated from tasks/variables.py:",
             "# `python -m tasks.variables > .env.example`.)"]
    section = None
    for v in IN_ENV_EXAMPLE:
        if v.section != section:
            section = v.section
            head = f"# --- {section} "
            lines += ["", head + "-" * max(3, 96 - len(head))]
        lines += [f"# {line}" for line in v.doc.splitlines()]
        lines.append(f"{v.name}={v.example}")
    return "\n".join(lines) + "\n"


def generated(have: dict[str, str]) -> dict[str, str]:
    """Throwaway values for every generable variable that `have` lacks (the sandbox's secrets)."""
    return {v.name: v.generate() for v in VARIABLES if v.generate and not have.get(v.name)}


if __name__ == "__main__":
    sys.stdout.write(env_example())
