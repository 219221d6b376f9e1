"""Backup benchmark: prints a table.

    python bench/backup.py [--rows 2000000]     # default: about 1 GB of Supabase data

- backup time (n8n-backup, local repository) vs raw `pg_dump -Fc` of the same databases (n8n's and
  Supabase's, one after the other), same run; n8n's files (--files-mb of binary data in its
  volume) archived within it vs a raw tar of the volume; the pull of the restore's image for the
  Supabase major (once per major, beside the dump) within it;
- bytes a second backup adds after a small change, as % of the first, and its time vs the raw dumps;
- restore of the Supabase source (`n8n-restore --source supabase`: into a scratch database,
  checked) vs a raw `pg_restore -j` of the same dump into the same kind of scratch database, and
  its phases; n8n's source restored to ready (`--source n8n`) beside it;
- full restore onto a fresh server: new server + deploy.py + restore from the off-host repository.

Own sandbox (.sandbox-bench-backup, servers bkb-N), removed at the end.
"""

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from sandbox import seed  # noqa: E402
from sandbox.core import Sandbox  # noqa: E402
from tasks import groupdata  # noqa: E402

STATE = ROOT / ".sandbox-bench-backup"
JOBS = 2  # the restore's pg_restore -j on these 2-core machines (mottivme_host.restore.JOBS)


def pyinfra(*args: str) -> str:
    r = common.pyinfra(common.sandbox_env(STATE), *args)
    return r.stdout + r.stderr


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the big tables (2M is about 1 GB)")
    p.add_argument("--files-mb", type=int, default=50, help="MB of binary data n8n keeps in its volume (n8n's files)")
    p.add_argument("--dump-compression", help="group_data backup_dump_compression for this run (default: group_data's)")
    a = p.parse_args()
    sbx = Sandbox(state_dir=STATE, prefix="bkb")
    sbx.down(stop_shared_services=False)
    try:
        sbx.up(1, "n8n_servers")
        sbx.up(1, "backup_vault")
        sbx.up(1, "supabase")
        level = ["--data", f"backup_dump_compression={a.dump_compression}"] if a.dump_compression else []
        pyinfra(*level, "deploy.py", "sandbox/supabase.py")
        t_seed, _ = timed(lambda: seed.seed_supabase(sbx, a.rows))
        hosts = {h["group"]: h for h in sbx.load()["hosts"]}
        n8n = hosts["n8n_servers"]

        def sh(cmd: str) -> str:
            return seed.ssh(sbx, n8n, cmd)

        # Supabase's URL from the host programs' settings, into the environment (never argv)
        url = ("SUPABASE_DB_URL=$(python3 -c 'import json; print(next(s[\"url\"] for s in json.load(open("
               "\"/etc/mottivme/host.json\"))[\"backup\"][\"sources\"] if s[\"name\"] == \"supabase\"))'); "
               "export SUPABASE_DB_URL; ")
        pg = groupdata.load()["postgres_image"]  # on the server (the deploy tags the locked digest)
        size = sh(url + "docker run --rm --network host "
                  f"-e SUPABASE_DB_URL {pg} sh -c 'psql \"$SUPABASE_DB_URL\" -Atc "
                  "\"select pg_database_size(current_database())\"'").strip()
        # the reference dumps what the backup dumps: the source's schemas less its exclusions
        src = next(x for x in groupdata.load()["backup_sources"] if x["name"] == "supabase")
        scope = " ".join([f"--exclude-schema={x}" for x in src.get("exclude_schemas", [])]
                         + [f"--exclude-table={x}" for x in src.get("exclude_tables", [])])
        raw_dump, _ = timed(lambda: sh(url + "docker run --rm --network host -e SUPABASE_DB_URL "
                                       f"{pg} sh -c 'pg_dump -Fc {scope} \"$SUPABASE_DB_URL\"' > /tmp/raw.dump"))
        raw_n8n, _ = timed(lambda: sh("mottivme-host compose exec -T postgres pg_dump -U n8n -Fc n8n "
                                      "> /tmp/raw-n8n.dump"))
        # n8n's files: binary data as n8n keeps it (1 MB files of random bytes in its volume)
        vol = sh("docker volume inspect -f '{{.Mountpoint}}' n8n_n8n_data").strip()
        sh(f"mkdir -p {vol}/storage/bench && for i in $(seq 1 {a.files_mb}); do head -c 1048576 /dev/urandom "
           f"> {vol}/storage/bench/f$i; done && chown -R 1000:1000 {vol}/storage/bench")
        raw_tar, _ = timed(lambda: sh(f"tar -C {vol} -cf /tmp/raw-files.tar . && rm -f /tmp/raw-files.tar"))
        repo_bytes = lambda: int(sh("du -sb /var/backups/n8n/restic | cut -f1"))  # noqa: E731
        backup1, _ = timed(lambda: sh("n8n-backup --no-offsite"))
        size1 = repo_bytes()
        archived = sh("grep 'n8n files archived' /var/log/n8n-backup.log | tail -n 1")
        files_s = float(re.search(r", ([0-9.]+) s\)", archived).group(1))
        # the first backup of a major version also pulls the restore's image of it, beside the dump
        pulled = sh("grep \"the restore's image for PostgreSQL\" /var/log/n8n-backup.log | tail -n 1 || true")
        pull_s = float(m.group(1)) if (m := re.search(r"pulled \(([0-9.]+) s\)", pulled)) else 0.0
        seed.ssh(sbx, hosts["supabase"], "docker exec -i supabase-db psql -U postgres -q",
                 "insert into agent_metrics (agent, metric, value) select 'bench', 'x', g from generate_series(1, 1000) g;")
        backup2, _ = timed(lambda: sh("n8n-backup --no-offsite"))
        added = repo_bytes() - size1
        # the reference restores need what the dump names: the source's roles, its extension where it was
        roles = seed.ssh(sbx, hosts["supabase"], "docker exec -i supabase-db psql -U postgres -At",
                         "select rolname from pg_roles where rolname !~ '^pg_' and rolname <> 'postgres'").split()
        prepare = "".join(f'create role "{r}" nologin; ' for r in roles)
        prepare += "create schema if not exists extensions; create extension vector with schema extensions;"

        def raw_restore_with(how: str) -> float:
            return timed(lambda: sh(
                "docker rm -f rawscratch >/dev/null 2>&1; docker run -d --name rawscratch --network none "
                f"-e POSTGRES_PASSWORD=x -v /tmp/raw.dump:/tmp/raw.dump:ro {pg} >/dev/null; "
                "until docker exec rawscratch pg_isready -h 127.0.0.1 -U postgres >/dev/null 2>&1; do sleep 0.5; done; "
                f"docker exec rawscratch psql -U postgres -qc '{prepare}'; "
                f"docker exec rawscratch pg_restore -U postgres -d postgres --no-owner {how} /tmp/raw.dump; "
                "docker rm -f rawscratch >/dev/null"))[0]

        raw_restore = raw_restore_with(f"-j {JOBS}")
        raw_one = raw_restore_with("--single-transaction")  # all or nothing, as n8n-restore restores
        restore_supabase, out_supabase = timed(lambda: sh("n8n-restore --snapshot latest --source supabase"))
        phases = [line.strip() for line in out_supabase.splitlines() if re.match(r"\s+\S.*\s[0-9.]+ s$", line)]
        restore_n8n, _ = timed(lambda: sh("n8n-restore --snapshot latest --source n8n --no-safety-snapshot"))
        # full restore onto a fresh server: the n8n server is destroyed and rebuilt from nothing
        sh("n8n-backup")  # make sure the off-host repository has the newest snapshot
        sbx.down([n8n["name"]])
        t0 = time.perf_counter()
        sbx.up(1, "n8n_servers")
        pyinfra(*level, "deploy.py")
        out = pyinfra(*level, "runbooks/restore.py", "--data", "from=offsite", "--data", "safety_snapshot=no")
        fresh = time.perf_counter() - t0
        assert re.search(r"restore ok", out), out[-2000:]
    finally:
        sbx.down()
    mb = int(size) / 1e6
    print()
    print(f"Supabase stand-in: {a.rows} rows in the big tables, database {mb:.0f} MB (seeded in {t_seed:.0f} s); "
          f"the backup's dumps: pg_dump -Z{a.dump_compression or groupdata.load()['backup_dump_compression']}")
    print()
    print("| measure | value | reference | ratio |")
    print("|---|---:|---:|---:|")
    raw = raw_dump + raw_n8n
    print(f"| backup (n8n-backup, first) | {backup1:.1f} s | raw pg_dump -Fc of both databases {raw:.1f} s "
          f"(Supabase {raw_dump:.1f} s, n8n {raw_n8n:.1f} s) | {backup1 / raw:.2f} |")
    print(f"| the restore's image pulled, within the first backup (beside the Supabase dump; once per major) "
          f"| {pull_s:.1f} s | | |")
    print(f"| n8n files ({a.files_mb} MB) archived, within the backup (beside the Supabase dump) | {files_s:.1f} s "
          f"| raw tar of the volume {raw_tar:.1f} s | {files_s / raw_tar:.2f} |")
    print(f"| second backup after 1000 new rows | {backup2:.1f} s, +{added / 1e6:.1f} MB | first {size1 / 1e6:.1f} MB | {100 * added / size1:.1f} % |")
    print(f"| the same against the raw dumps | {backup2:.1f} s | raw pg_dump -Fc of both databases {raw:.1f} s "
          f"| {backup2 / raw:.2f} |")
    print(f"| restore of the Supabase source (scratch database, counts checked) | {restore_supabase:.1f} s "
          f"| raw pg_restore -j {JOBS} into a scratch database {raw_restore:.1f} s | {restore_supabase / raw_restore:.2f} |")
    print(f"| the same, against an all-or-nothing raw restore | {restore_supabase:.1f} s "
          f"| raw pg_restore --single-transaction {raw_one:.1f} s | {restore_supabase / raw_one:.2f} |")
    print(f"| restore of the n8n source, to ready | {restore_n8n:.1f} s | | |")
    print(f"| full restore onto a fresh server (up + deploy + restore from vault) | {fresh:.1f} s | | |")
    print()
    print("Phases of the Supabase restore (n8n-restore's own table):")
    print("\n".join(f"    {line}" for line in phases))


if __name__ == "__main__":
    main()
