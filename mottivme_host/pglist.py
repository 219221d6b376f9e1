"""What a database source's dump restores into a target, and what the target needs first.

A database source's dump (backup.py) is the whole database less PostgreSQL's own schemas and the
source's `exclude_schemas` (a platform's internals: Supabase's graphql, realtime, vault, ...),
with its grants, row-level-security policies and extensions. Its manifest names the roles and the
extensions (and their schemas) the database had. Before a restore, the target gets those roles
(NOLOGIN, when it lacks them: an ACL or a policy `TO authenticated` names them) and extensions, in
their schemas; then pg_restore takes the dump's list (`pg_restore -l`) as `restore_list` keeps it:

- extensions are left out (made beforehand, never dropped: `--clean` would drop them);
- a schema the target has keeps its own definition (`public`, Supabase's `extensions`);
- a `managed` schema the target has (Supabase's auth and storage: the platform makes their tables
  in every project) keeps its tables as they are: only their rows (and sequences) are restored,
  into tables emptied first, in the restore's one transaction (`pre_sql`);
- what a platform keeps for itself is left out: event triggers, publications, subscriptions, and
  default privileges of roles other than the one restoring (a target whose user is not superuser
  may not set them).

Pure functions: no I/O (tests/unit/mottivme_host/test_pglist.py)."""

from __future__ import annotations

import re

from .stack import SCHEMA_NAME

# a role or an extension a manifest names, as they are quoted into SQL here
ROLE_NAME = re.compile(r"(?!pg_)[A-Za-z_][A-Za-z0-9_-]{0,62}")  # never PostgreSQL's own; no $ (dollar quotes)
EXTENSION_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,62}")

# the entries' kinds of more than one word (pg_dump's "desc"), longest first where one starts another
KINDS = sorted(("TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "DEFAULT ACL", "ROW SECURITY", "FK CONSTRAINT",
                "CHECK CONSTRAINT", "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "EVENT TRIGGER",
                "PUBLICATION TABLES IN SCHEMA", "PUBLICATION TABLE", "SUBSCRIPTION TABLE", "TEXT SEARCH CONFIGURATION",
                "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "FOREIGN TABLE",
                "FOREIGN DATA WRAPPER", "FOREIGN SERVER", "USER MAPPING", "LARGE OBJECT", "BLOB DATA", "ACCESS METHOD",
                "OPERATOR CLASS", "OPERATOR FAMILY", "TABLE ATTACH", "INDEX ATTACH", "DATABASE PROPERTIES",
                "SHELL TYPE", "DUMMY TYPE", "STATISTICS DATA", "PROCEDURAL LANGUAGE", "SECURITY LABEL",
                "BLOB METADATA"), key=len, reverse=True)
# a platform's own: event triggers, publications, subscriptions, security labels (Supabase's pgsodium)
PLATFORMS = frozenset({"EVENT TRIGGER", "PUBLICATION", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA",
                       "SUBSCRIPTION", "SUBSCRIPTION TABLE", "SECURITY LABEL"})
# what a project adds to a managed schema's tables (a trigger on auth.users, a policy on
# storage.objects): left out over a target that has the schema (its owner's), and named
PROJECTS = frozenset({"TRIGGER", "POLICY", "ROW SECURITY", "INDEX"})
ROWS = frozenset({"TABLE DATA", "SEQUENCE SET"})  # what a managed schema's tables get back


def entry(line: str) -> tuple[str, str, str, str] | None:
    """A line of `pg_restore -l`: (kind, schema or "-", name, owner); None for a comment."""
    if not line.strip() or line.lstrip().startswith(";") or ";" not in line:
        return None
    words = line.partition(";")[2].split()[2:]  # after "<id>;" come the catalog and object ids
    text = " ".join(words)
    kind = next((k for k in KINDS if text == k or text.startswith(k + " ")), words[0] if words else "")
    rest = text[len(kind):].split()
    if line.rstrip("\r\n").endswith(" "):  # no owner (an extension, a comment on one)
        rest.append("")
    schema = rest[0] if rest else "-"
    return kind, schema, " ".join(rest[1:-1]), rest[-1] if len(rest) > 1 else ""


def restore_list(lines: list[str], have: set[str], managed: set[str], user: str | None,
                 publications: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], list, list[str]]:
    """The lines of the dump's list a target takes; the (schema, table) pairs of managed schemas
    whose rows are restored (emptied first); and what the project had added there that is left out
    ("TRIGGER auth.users on_auth_user_created"). `have`: the target's schemas (after its extensions'
    were made); `user`: the role restoring (None: a superuser, which keeps every default privilege);
    `publications`: the target's, whose tables the dump re-creates get added back to them (Supabase's
    supabase_realtime: a table dropped and made again would leave Realtime)."""
    kept, rows, left = [], [], []
    for line in lines:
        e = entry(line)
        if e is None:
            kept.append(line)
            continue
        kind, schema, name, owner = e
        # a publication's table: "supabase_realtime leads"; COMMENT / ACL on a schema or an extension:
        # "SCHEMA auth", "EXTENSION vector"
        what = name.split(" ", 1)
        if kind == "PUBLICATION TABLE" and what[0] in publications and not (schema in managed and schema in have):
            kept.append(line)  # (a managed table the target keeps is still in it)
            continue
        if kind in PLATFORMS or kind == "EXTENSION" or (kind == "COMMENT" and what[0] == "EXTENSION"):
            continue
        if kind == "DEFAULT ACL" and user is not None and owner != user:
            continue
        if kind == "SCHEMA" and name in have:
            continue
        if kind in ("ACL", "COMMENT") and schema == "-" and what[0] == "SCHEMA" and what[-1] in managed & have:
            continue
        if schema in managed and schema in have:
            if kind in PROJECTS:  # "users on_auth_user_created": the table, then the object's own name
                left.append(f"{kind} {schema}.{' '.join(what)}")
            if kind not in ROWS:
                continue
            if kind == "TABLE DATA":
                rows.append((schema, name))
        kept.append(line)
    return kept, rows, left


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def prepare_sql(roles: list[str], extensions: dict[str, str]) -> str:
    """The roles a dump names (made NOLOGIN when missing; `NOTICE: role <name> created` for each) and
    its extensions in their schemas (made when missing and available), for psql -v ON_ERROR_STOP=1."""
    bad = [r for r in roles if not ROLE_NAME.fullmatch(r)]
    bad += [f"{e} ({s})" for e, s in extensions.items() if not (EXTENSION_NAME.fullmatch(e) and SCHEMA_NAME.fullmatch(s))]
    if bad:
        raise ValueError(f"not a plain role, extension or schema name: {', '.join(bad)}")
    out = []
    for r in roles:
        lit = "'" + r + "'"
        out.append(f"do $$ begin if not exists (select 1 from pg_roles where rolname = {lit}) then "
                   f"create role {_q(r)} nologin; raise notice 'role % created', {lit}; end if; end $$;")
    for e, s in extensions.items():  # one this PostgreSQL lacks or cannot make (a platform's own) is
        lit = "'" + e + "'"             # named, not fatal: the restore stops later if a table needs it
        out.append(f"do $$ begin if exists (select 1 from pg_available_extensions where name = {lit}) then "
                   f"create schema if not exists {_q(s)}; create extension if not exists {_q(e)} with schema {_q(s)} "
                   f"cascade; else raise notice 'extension % not available', {lit}; end if; "
                   f"exception when others then raise notice 'extension % not made: %', {lit}, sqlerrm; end $$;")
    return "\n".join(out) + "\n"


def pre_sql(tables: list[tuple[str, str]]) -> str:
    """What runs first in the restore's one transaction when managed tables get their rows back:
    no trigger and no foreign-key check fires while the rows load (the target's own triggers on
    them, rows loaded in the dump's order: Supabase's documented data restore), and the tables and
    those referring to them are emptied (one statement). Nothing when there are none."""
    if not tables:
        return ""
    return ("set session_replication_role = replica;\n"
            "truncate " + ", ".join(f"{_q(s)}.{_q(t)}" for s, t in tables) + ";\n")


# the tables (schema, name) that reference `tables` by foreign keys, directly or not: a restore
# that empties them must restore those too (or stop before it changes anything); `%s`: the list
# of ('schema', 'table') pairs, quoted by `referrers_sql`
REFERRERS = """with recursive t(oid) as (
  select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where (n.nspname, c.relname) in (%s)
  union select k.conrelid from pg_constraint k join t on k.confrelid = t.oid where k.contype = 'f')
select n.nspname || ' ' || c.relname from t join pg_class c on c.oid = t.oid
join pg_namespace n on n.oid = c.relnamespace order by 1"""


def referrers_sql(tables: list[tuple[str, str]]) -> str:
    pairs = ", ".join("(" + ", ".join("'" + x.replace("'", "''") + "'" for x in pair) + ")" for pair in tables)
    return REFERRERS % pairs
