"""python -m sandbox up [--hosts N] [--group G] | down [NAME...] | status | images | ssh NAME [CMD...]"""

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from sandbox.core import RELEASES, Sandbox, SandboxError


def readiness(url: str) -> str:
    import ssl
    import urllib.request

    ctx = ssl._create_unverified_context()  # the sandbox's Caddy uses its own local CA
    try:
        with urllib.request.urlopen(url + "healthz/readiness", context=ctx, timeout=10) as r:
            return f"HTTP {r.status} {r.read().decode()[:60]}"
    except Exception as e:  # noqa: BLE001 - report whatever went wrong, in one line
        return f"not ready ({e})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start (or add) servers")
    up.add_argument("--hosts", type=int, default=int(os.environ.get("HOSTS", "1")))
    up.add_argument("--group", default="n8n_servers",
                    help="inventory group of the new servers (n8n_servers, backup_vault, monitors, ...)")
    up.add_argument("--debian", default=None, help="Debian release of the new servers: 13 (default; or SBX_DEBIAN) or 12")
    down = sub.add_parser("down", help="remove servers (default: all) and stop what the sandbox runs")
    down.add_argument("names", nargs="*")
    sub.add_parser("status", help="print .sandbox/hosts.json")
    images = sub.add_parser("images", help="build the server and stand-in images (cached on disk)")
    images.add_argument("--debian", default=None, help="only this Debian release's server image (default: 13 and 12)")
    sub.add_parser("urls", help="print each server's n8n URL and its readiness")
    seed = sub.add_parser("seed", help="fill the Supabase stand-in and n8n with production-shaped data")
    seed.add_argument("--rows", type=int, default=5000, help="rows of the big tables")
    seed.add_argument("--workflows", type=int, default=5)
    ssh = sub.add_parser("ssh", help="open a shell (or run CMD) on a server")
    ssh.add_argument("name")
    ssh.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    sbx = Sandbox()
    try:
        if a.cmd == "up":
            sbx.up(a.hosts, a.group, a.debian)
            print(f"hosts: {sbx.hosts_file}")
        elif a.cmd == "down":
            sbx.down(a.names or None)
        elif a.cmd == "status":
            print(json.dumps(sbx.load(), indent=2))
        elif a.cmd == "images":
            releases = [a.debian] if a.debian else sorted(RELEASES, reverse=True)  # 13, then 12
            # the other releases' server images (debootstrap) build beside the first release's
            # steps: a cold cache mostly waits on the network
            with ThreadPoolExecutor() as pool:
                others = [pool.submit(sbx.build_images, ["server"], r) for r in releases[1:]]
                sbx.build_images(release=releases[0])
                for f in others:
                    f.result()
        elif a.cmd == "seed":
            from sandbox import seed as seeding

            if any(h["group"] == "supabase" for h in sbx.load()["hosts"]):
                seeding.seed_supabase(sbx, a.rows)
            seeding.seed_n8n(sbx, a.workflows)
        elif a.cmd == "urls":
            for h in sbx.load()["hosts"]:
                url = f"https://localhost:{h['https_port']}/"
                print(f"{h['name']}: n8n at {url}  readiness: {readiness(url)}")
        elif a.cmd == "ssh":
            h = next((h for h in sbx.load()["hosts"] if h["name"] == a.name), None)
            if h is None:
                raise SandboxError(f"no server {a.name} in {sbx.hosts_file}")
            os.execvp("ssh", sbx.ssh_args(h) + a.command)
    except SandboxError as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
