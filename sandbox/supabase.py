"""pyinfra deploy: the sandbox's stand-in for Supabase's database (PostgreSQL 17 + pgvector) on the
sandbox servers of the group `supabase`. Sandbox only: `pyinfra -y inventory.py sandbox/supabase.py`.
Reachable by the other sandbox servers on <private ip>:5432 (SUPABASE_DB_URL is set from it; its
database `drill` is DR_DRILL_SUPABASE_URL's)."""

import os
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

from tasks import operations
from tasks.docker import docker

if "supabase" in host.groups:
    docker()
    operations.image(name="image postgres", ref=host.data.postgres_image, archive_dir=host.data.image_archive_dir)
    files.directory(name="stand-in directory", path="/opt/supabase-standin", mode="700")
    files.put(name="stand-in env (0600)", dest="/opt/supabase-standin/env", mode="600",
              src=StringIO(f"POSTGRES_PASSWORD={os.environ['SUPABASE_STANDIN_PASSWORD']}\n"))
    server.shell(name="stand-in database running", commands=[
        "docker inspect supabase-db >/dev/null 2>&1 || docker run -d --name supabase-db --restart unless-stopped "
        "-p 5432:5432 --env-file /opt/supabase-standin/env -v supabase_data:/var/lib/postgresql/data "
        f"{host.data.postgres_image}",
        "for i in $(seq 60); do docker exec supabase-db pg_isready -h 127.0.0.1 -U postgres && break; sleep 1; done",
        "docker exec supabase-db psql -U postgres -qc 'create extension if not exists vector'",
        # the DR drill's own database (DR_DRILL_SUPABASE_URL): it restores Supabase there, never over it
        "docker exec supabase-db psql -U postgres -Atc \"select 1 from pg_database where datname = 'drill'\" "
        "| grep -q 1 || docker exec supabase-db createdb -U postgres drill",  # (its extensions: the restore's)
    ])
