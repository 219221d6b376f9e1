"""pglist: what a database source's dump restores into a target. The fixture is `pg_restore -l` of a
real pg_dump (PostgreSQL 17) of a database shaped like a Supabase project: auth and storage owned
by their admin roles, a pgvector column, policies TO authenticated, a publication, an event
trigger and default privileges of two roles."""

from __future__ import annotations

import os

import pytest

from mottivme_host import pglist

TOC = open(os.path.join(os.path.dirname(__file__), "fixtures", "supabase-shaped.toc")).read().splitlines()
MANAGED = {"auth", "storage"}


def kinds(lines):
    return [(e[0], e[1], e[2]) for e in map(pglist.entry, lines) if e]


def test_entries_are_read_with_multi_word_kinds_and_empty_owners():
    got = {line.split(";")[0]: pglist.entry(line) for line in TOC}
    assert got["3702"] == ("TABLE DATA", "auth", "users", "supabase_auth_admin")
    assert got["3549"] == ("FK CONSTRAINT", "crm", "leads leads_owner_fkey", "postgres")
    assert got["2286"] == ("DEFAULT ACL", "public", "DEFAULT PRIVILEGES FOR TABLES", "supabase_admin")
    assert got["2"] == ("EXTENSION", "-", "vector", "")
    assert got["3718"] == ("COMMENT", "-", "EXTENSION vector", "")
    assert got["3716"] == ("ACL", "-", "SCHEMA auth", "supabase_auth_admin")
    assert got["3538"] == ("EVENT TRIGGER", "-", "et", "postgres")
    assert pglist.entry(";") is None and pglist.entry("") is None


def test_a_fresh_scratch_database_takes_every_schema_whole_but_no_extension_or_platform_entry():
    kept, rows, left = pglist.restore_list(TOC, have={"public", "extensions"}, managed=MANAGED, user=None)
    k = kinds(kept)
    assert rows == [] and left == []  # auth and storage are made from the dump: nothing to empty
    assert ("SCHEMA", "-", "auth") in k and ("TABLE", "storage", "objects") in k and ("POLICY", "crm", "leads leads_own") in k
    assert ("ACL", "crm", "TABLE leads") in k and ("ROW SECURITY", "public", "profiles") in k
    assert not [x for x in k if x[0] in ("EXTENSION", "EVENT TRIGGER", "PUBLICATION", "SECURITY LABEL")]
    assert ("COMMENT", "-", "EXTENSION vector") not in k
    # a superuser keeps every role's default privileges
    assert [x[0] for x in k].count("DEFAULT ACL") == 2


def test_a_target_that_has_the_managed_schemas_gets_only_their_rows_and_keeps_its_own_definitions():
    kept, rows, left = pglist.restore_list(TOC, have={"public", "extensions", "auth", "storage", "crm"},
                                           managed=MANAGED, user="postgres")
    k = kinds(kept)
    assert rows == [("auth", "users"), ("storage", "buckets"), ("storage", "objects")]
    # what the project had added to the platform's tables is named, not applied over the target's
    assert left == ["TRIGGER auth.users on_auth_user_created", "POLICY storage.objects objects_own"]
    managed = [x for x in k if x[1] in MANAGED or x[2] in ("SCHEMA auth", "SCHEMA storage")]
    assert {x[0] for x in managed} == {"TABLE DATA"}
    # a schema the target has keeps its definition; the project's objects in it are restored whole
    assert ("SCHEMA", "-", "crm") not in k and ("TABLE", "crm", "leads") in k and ("ACL", "-", "SCHEMA crm") in k
    assert ("FK CONSTRAINT", "public", "profiles profiles_id_fkey") in k
    # only the restoring role's default privileges (another's need a superuser)
    assert [e[3] for e in map(pglist.entry, kept) if e and e[0] == "DEFAULT ACL"] == ["postgres"]
    assert not [x for x in k if x[0].startswith("PUBLICATION")]  # the target has no publication
    assert [line for line in kept if line.startswith(";")] == [line for line in TOC if line.startswith(";")]


def test_a_schema_the_source_manages_but_the_target_lacks_is_made_from_the_dump():
    kept, rows, _ = pglist.restore_list(TOC, have={"public", "auth"}, managed=MANAGED, user="postgres")
    k = kinds(kept)
    assert rows == [("auth", "users")]
    assert ("SCHEMA", "-", "storage") in k and ("TABLE", "storage", "buckets") in k
    assert ("TABLE", "auth", "users") not in k


def test_prepare_sql_makes_missing_roles_nologin_and_available_extensions_in_their_schemas():
    sql = pglist.prepare_sql(["anon", "authenticated"], {"vector": "extensions", "uuid-ossp": "extensions"})
    assert "create role \"authenticated\" nologin; raise notice 'role % created', 'authenticated'" in sql
    assert "where rolname = 'anon'" in sql
    assert ('create schema if not exists "extensions"; create extension if not exists "uuid-ossp" with schema '
            '"extensions"') in sql
    assert "pg_available_extensions where name = 'vector'" in sql


@pytest.mark.parametrize("roles, ext", [(["anon'; drop table x; --"], {}), (["a b"], {}),
                                        ([], {"vector": "Ext"}), ([], {"vec tor": "extensions"})])
def test_prepare_sql_refuses_names_that_are_not_plain(roles, ext):
    with pytest.raises(ValueError, match="not a plain role, extension or schema name"):
        pglist.prepare_sql(roles, ext)


def test_the_restore_starts_with_no_trigger_firing_and_the_tables_emptied_quoted():
    assert pglist.pre_sql([("auth", "users"), ("public", 'we"ird')]) == (
        'set session_replication_role = replica;\ntruncate "auth"."users", "public"."we""ird";\n')
    assert pglist.pre_sql([]) == ""
    assert "(('auth', 'users'), ('public', 'o''brien'))" in pglist.referrers_sql([("auth", "users"), ("public", "o'brien")])


@pytest.mark.parametrize("name", ["x$$--", "pg_read_all_data", "a'b", ""])
def test_a_role_name_that_could_leave_its_quotes_or_is_postgresqls_own_is_refused(name):
    assert not pglist.ROLE_NAME.fullmatch(name)
    with pytest.raises(ValueError):
        pglist.prepare_sql([name], {})


def test_a_table_the_dump_makes_again_goes_back_into_the_targets_publication():
    kept, _, _ = pglist.restore_list(TOC, have={"public", "extensions", "auth", "storage", "crm"}, managed=MANAGED,
                                     user="postgres", publications={"supabase_realtime"})
    k = kinds(kept)
    # crm.leads is dropped and made again: added back; auth.users is kept as it is, still in it
    assert [x for x in k if x[0].startswith("PUBLICATION")] == [("PUBLICATION TABLE", "crm", "supabase_realtime leads")]
