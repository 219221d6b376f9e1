"""pyinfra deploy: the sandbox's stand-in for Supabase's database (PostgreSQL 17 + pgvector) on the
sandbox servers of the group `supabase`. Sandbox only: `pyinfra -y inventory.py sandbox/supabase.py`.
Reachable by the other sandbox servers on <private ip>:5432 (SUPABASE_DB_URL is set from it; its
database `drill` is DR_DRILL_SUPABASE_URL's).

Both databases are shaped as a Supabase project is (SUPABASE_SHAPE): the roles anon,
authenticated, service_role (and the platform's admin roles owning auth and storage), extensions
in the schema `extensions` (on the search path), `auth.users` and `auth.uid()`, storage's buckets
and objects with row-level security, Supabase's grants, its `supabase_realtime` publication and an
event trigger calling a function in `extensions` (a schema the backup leaves out), so that a dump
of it carries what a real project's does."""

import os
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

from tasks import operations
from tasks.docker import docker

# Idempotent: applied to each database at every run (psql -v ON_ERROR_STOP=1, its DBNAME variable).
SUPABASE_SHAPE = r"""
do $$ begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls; end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator noinherit login; end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then create role supabase_admin nologin; end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole nologin; end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin noinherit createrole nologin; end if;
end $$;
grant anon, authenticated, service_role to authenticator;
create schema if not exists extensions;
create extension if not exists vector with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
grant usage on schema extensions to anon, authenticated, service_role;
alter database :"DBNAME" set search_path to "$user", public, extensions;
create or replace function extensions.pgrst_ddl_watch() returns event_trigger language plpgsql as $f$ begin end $f$;
do $$ begin if not exists (select 1 from pg_event_trigger where evtname = 'pgrst_ddl_watch') then
  create event trigger pgrst_ddl_watch on ddl_command_end execute function extensions.pgrst_ddl_watch(); end if; end $$;
do $$ begin if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
  create publication supabase_realtime; end if; end $$;

create schema if not exists auth authorization supabase_auth_admin;
create table if not exists auth.users (instance_id uuid, id uuid primary key, aud varchar(255), role varchar(255),
  email varchar(255) unique, encrypted_password varchar(255), email_confirmed_at timestamptz,
  raw_app_meta_data jsonb, raw_user_meta_data jsonb, created_at timestamptz, updated_at timestamptz);
alter table auth.users owner to supabase_auth_admin;
create or replace function auth.uid() returns uuid language sql stable
  as $f$ select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $f$;
grant usage on schema auth to anon, authenticated, service_role;
grant all on auth.users to postgres;
-- the services' record of their own migrations (Supabase revokes them from postgres)
create table if not exists auth.schema_migrations (version varchar(255) primary key);
alter table auth.schema_migrations owner to supabase_auth_admin;
insert into auth.schema_migrations values ('20240101000000') on conflict do nothing;

create schema if not exists storage authorization supabase_storage_admin;
create table if not exists storage.buckets (id text primary key, name text not null unique, owner uuid,
  public boolean default false, created_at timestamptz default now());
create table if not exists storage.objects (id uuid primary key default extensions.uuid_generate_v4(),
  bucket_id text references storage.buckets (id), name text, owner uuid, metadata jsonb,
  created_at timestamptz default now());
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.objects enable row level security;
create table if not exists storage.migrations (id integer primary key, name varchar(100) unique not null);
alter table storage.migrations owner to supabase_storage_admin;
insert into storage.migrations values (0, 'create-migrations-table') on conflict do nothing;
grant usage on schema storage to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to service_role, postgres;

grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
"""

if "supabase" in host.groups:
    docker()
    operations.image(name="image postgres", ref=host.data.postgres_image)
    files.directory(name="stand-in directory", path="/opt/supabase-standin", mode="700")
    files.put(name="stand-in env (0600)", dest="/opt/supabase-standin/env", mode="600",
              src=StringIO(f"POSTGRES_PASSWORD={os.environ['SUPABASE_STANDIN_PASSWORD']}\n"))
    files.put(name="stand-in: Supabase's shape", dest="/opt/supabase-standin/shape.sql", mode="600",
              src=StringIO(SUPABASE_SHAPE))
    server.shell(name="stand-in database running", commands=[
        "docker inspect supabase-db >/dev/null 2>&1 || docker run -d --name supabase-db --restart unless-stopped "
        "-p 5432:5432 --env-file /opt/supabase-standin/env -v supabase_data:/var/lib/postgresql/data "
        f"{host.data.postgres_image}",
        "for i in $(seq 60); do docker exec supabase-db pg_isready -h 127.0.0.1 -U postgres && break; sleep 1; done",
        # the DR drill's own database (DR_DRILL_SUPABASE_URL): it restores Supabase there, never over it
        "docker exec supabase-db psql -U postgres -Atc \"select 1 from pg_database where datname = 'drill'\" "
        "| grep -q 1 || docker exec supabase-db createdb -U postgres drill",
        "for db in postgres drill; do docker exec -i supabase-db psql -U postgres -d $db -v ON_ERROR_STOP=1 -q "
        "< /opt/supabase-standin/shape.sql || exit 1; done",
    ])
