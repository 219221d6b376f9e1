"""The sandbox's moving parts: private engine, images, apt proxy, servers, hosts.json."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sandbox import acme, registry
from tasks import groupdata, images, variables

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "sandbox"
# Caches that outlive a clone (CI runs in a fresh clone): images, debootstrap, npm, engine data.
CACHE = Path(
    os.environ.get("SBX_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mottivme-infra"
)
# apt-cacher-ng runs as its own user, which cannot enter root's home: its cache lives here.
APT_CACHE = Path(os.environ.get("SBX_APT_CACHE") or "/var/cache/mottivme-infra/aptproxy")
# The Debian releases a sandbox server can run (VERSION_ID -> debootstrap suite, server image).
# 13 is what a server rented today comes with (the default); 12 is still supported.
RELEASES = {"13": ("trixie", "mottivme-sbx/trixie-systemd:r1"), "12": ("bookworm", "mottivme-sbx/bookworm-systemd:r2")}
DEFAULT_RELEASE = "13"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
APT_PROXY_PORT = int(os.environ.get("SBX_APT_PROXY_PORT", "3142"))
LABEL = "mottivme.sandbox"
SANDBOX_N8N_HOST = "n8n.sbx.test"  # .test: a name reserved for tests (RFC 2606), never on the Internet


class SandboxError(RuntimeError):
    """A sandbox step failed; the message says what to do."""


def log(msg: str) -> None:
    print(f"[sandbox] {msg}", file=sys.stderr, flush=True)


# --- one sandbox = one state dir (.sandbox by default; the tests use their own) ---------------


def resolve_state_dir(path: str | Path | None = None) -> Path:
    """A sandbox's state directory: `path`, else SBX_STATE, else .sandbox (relative: to the repository)."""
    state = Path(path or os.environ.get("SBX_STATE") or ROOT / ".sandbox")
    return state if state.is_absolute() else ROOT / state


def release_of(value: str | None = None) -> str:
    """A Debian release the sandbox can start: `value`, else SBX_DEBIAN, else the default (13)."""
    rel = str(value or os.environ.get("SBX_DEBIAN") or DEFAULT_RELEASE)
    if rel not in RELEASES:
        raise SandboxError(f"Debian {rel} is not a sandbox release: use one of {', '.join(sorted(RELEASES))}")
    return rel


class Sandbox:
    def __init__(self, state_dir: str | Path | None = None, prefix: str | None = None):
        self.state_dir = resolve_state_dir(state_dir)
        self.hosts_file = self.state_dir / "hosts.json"
        # a sandbox keeps the prefix it was made with (its servers' names), whoever opens it later
        recorded = json.loads(self.hosts_file.read_text()).get("prefix") if self.hosts_file.exists() else None
        self.prefix = prefix or recorded or os.environ.get("SBX_PREFIX") or "sbx"
        self.key = self.state_dir / "id_ed25519"
        self.run_dir = self.state_dir / "run"
        self.network = f"mottivme-{self.prefix}"
        self._docker_host: str | None = None

    # -- state -------------------------------------------------------------------------------
    def load(self) -> dict:
        if self.hosts_file.exists():
            return json.loads(self.hosts_file.read_text())
        return {"hosts": []}

    def secrets(self) -> dict[str, str]:
        """This sandbox's throwaway secrets (secrets.env)."""
        from dotenv import dotenv_values

        f = self.state_dir / "secrets.env"
        return {k: v for k, v in dotenv_values(f, interpolate=False).items() if v is not None} if f.exists() else {}

    def save(self, state: dict) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state["prefix"] = self.prefix
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.hosts_file)

    # -- engine and images -------------------------------------------------------------------
    @property
    def docker_host(self) -> str:
        if self._docker_host is None:
            install_host_deps()
            out = _run([str(HERE / "engine.sh"), "start"], env=_cache_env(), capture=True)
            self._docker_host = out.strip().splitlines()[-1]
        return self._docker_host

    def docker(self, *args: str, capture: bool = True, check: bool = True) -> str:
        env = dict(os.environ, DOCKER_HOST=self.docker_host)
        return _run(["docker", *args], env=env, capture=capture, check=check)

    def build_images(self, steps: list[str] | None = None, release: str | None = None) -> None:
        """Build (or take from the cache) the server image of a Debian release and the stand-in images."""
        v = versions()
        suite, image = RELEASES[release_of(release)]
        env = dict(
            _cache_env(),
            DOCKER_HOST=self.docker_host,
            SERVER_IMAGE=image,
            SERVER_SUITE=suite,
            N8N_VERSION=v["n8n_version"],
            N8N_IMAGE=f"{v['n8n_image_repo']}:{v['n8n_version']}",
            N8N_EXTRA_VERSIONS=" ".join(v["n8n_other_versions"]),
            RUNNERS_REPO=v["n8n_runners_image_repo"],
            POSTGRES_IMAGE=registry.stand_in(v["postgres_image"]),
            PG_MAJOR=str(v["postgres_major"]),
            REDIS_IMAGE=registry.stand_in(v["redis_image"]),
            CADDY_IMAGE=registry.stand_in(v["caddy_image"]),
            NODE_WHEEL_VERSION=v["sandbox_node_wheel_version"],
        )
        _run([str(HERE / "build-images.sh"), *(steps or ["server", "postgres", "redis", "caddy", "n8n"])], env=env)

    # -- apt proxy (shared by every sandbox on this machine) --------------------------------
    def ensure_apt_proxy(self) -> None:
        run = CACHE / "run"
        acng = APT_CACHE
        for d in (run, acng / "cache", acng / "log", acng / "conf"):
            d.mkdir(parents=True, exist_ok=True)
        pidfile = acng / "acng.pid"
        if not _alive(pidfile):
            (acng / "conf" / "acng.conf").write_text(
                "# written by sandbox/core.py: loopback only\n"
                f"CacheDir: {acng}/cache\nLogDir: {acng}/log\nSupportDir: /usr/lib/apt-cacher-ng\n"
                f"BindAddress: 127.0.0.1\nPort: {APT_PROXY_PORT}\nPidFile: {pidfile}\n"
                "ForeGround: 0\nPassThroughPattern: .*\nExThreshold: 4\n"
            )
            if _port_in_use(APT_PROXY_PORT):
                raise SandboxError(
                    f"127.0.0.1:{APT_PROXY_PORT} is taken by another program: "
                    "set SBX_APT_PROXY_PORT to a free port"
                )
            _run(["chown", "-R", "apt-cacher-ng:", str(acng)])
            _run(["setpriv", "--reuid=apt-cacher-ng", "--regid=apt-cacher-ng", "--init-groups",
                  "/usr/sbin/apt-cacher-ng", "-c", str(acng / "conf")])
            _wait(lambda: _port_in_use(APT_PROXY_PORT), 10, "apt-cacher-ng did not start")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fwd = self.run_dir / "aptproxy-fwd.pid"
        sock = self.run_dir / "aptproxy.sock"
        if not _alive(fwd):
            _spawn(fwd, ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early,mode=666",
                         f"TCP4:127.0.0.1:{APT_PROXY_PORT}"])
            _wait(sock.exists, 10, "apt proxy socket did not appear")

    # -- servers -----------------------------------------------------------------------------
    def up(self, count: int = 1, group: str = "n8n_servers", release: str | None = None) -> list[dict]:
        """Start `count` new servers in `group` on Debian `release` (default: SBX_DEBIAN, else 13);
        return their records."""
        return self.up_each([(group, count, release)])

    def up_each(self, wanted: list[tuple[str, int, str | None]]) -> list[dict]:
        """Start new servers, `count` in `group` on Debian `release` for each of `wanted`, all of
        them before any is waited for (they boot together); return their records."""
        t0 = time.time()
        releases = [release_of(release) for _, _, release in wanted]
        release = releases[0]  # the sandbox's services server, if it starts now
        self._ensure_key()
        self._ensure_secrets()
        # one sandbox at a time loads images, starts the apt proxy and takes free ports (two test
        # lines and the Debian 12 tier start theirs at once); waiting for systemd is not shared
        with shared_lock():
            for r in dict.fromkeys(releases):
                self.build_images(release=r)
            self.ensure_apt_proxy()
            state = self.load()
            if not any(n["Name"] == self.network for n in self._networks()):
                self.docker("network", "create", "--label", f"{LABEL}={self.prefix}", self.network)
            if state.get("acme"):  # made before the services server (registry and ACME CA) existed
                raise SandboxError("this sandbox predates its registry: python -m sandbox down, then up again")
            refs = registry.wanted(versions())
            if not state.get("services"):
                from sandbox.receivers import make_certs

                # the sandbox's own services (registry, ACME CA), first: the servers trust its CA
                # from their first boot, as a real server trusts the Internet's
                svc = self._start(0, "sandbox_services", state, release, name=f"{self.prefix}-services", archives=True)
                state["services"] = {"server": svc}  # recorded first: down() removes it whatever happens next
                self.save(state)
                state["services"]["certs"] = make_certs(self.state_dir / "services", days=3650, name="services",
                                                        hosts=(svc["private_ip"], *registry.names(refs)))
                self.save(state)
            ca = Path(state["services"]["certs"]["ca"]).read_text()
            used = {h["index"] for h in state["hosts"]}
            new = []
            for (group, count, _), server_release in zip(wanted, releases, strict=True):
                for _ in range(count):
                    i = next(k for k in range(1, 1000) if k not in used)
                    used.add(i)
                    new.append(self._start(i, group, state, server_release, ca=ca))
                    state["hosts"].append(new[-1])
                    self.save(state)
        if "registry" not in state["services"]:  # new, or its set-up failed last time: (again) now
            self._set_up_services(state, state["services"]["server"], refs)
        for h in new:
            self._wait_ready(h)
        self._write_names(state)
        log(f"{len(new)} server(s) ready in {time.time() - t0:.1f}s: "
            + ", ".join(f"{h['name']} (Debian {h['release']}) ssh 127.0.0.1:{h['ssh_port']} https 127.0.0.1:{h['https_port']}" for h in new))
        return new

    def _set_up_services(self, state: dict, svc: dict, refs: dict[str, str]) -> None:
        """pebble (sandbox/acme.py) and the registry (sandbox/registry.py) on the services server."""
        self._wait_ready(svc)
        certs = state["services"]["certs"]
        t0 = time.time()
        try:
            state["services"]["acme"] = acme.set_up(self.ssh_args(svc), svc, certs)
            state["services"]["registry"] = registry.set_up(self.ssh_args(svc), svc, certs, refs, CACHE / "images",
                                                               registry.archive_repos(versions()))
            self.save(state)
            # the sandbox's images.lock, by the command that writes production's (tasks/images.py),
            # from its registry through the forwarded port
            from sandbox.inventory_source import SandboxSource

            source = SandboxSource(env_file=False, state_dir=self.state_dir)
            images.write(source.images_lock(), images.current(images.locked_refs(source.image_data()),
                                                              images.Registries(*source.registries())))
        except (RuntimeError, OSError, LookupError, subprocess.SubprocessError) as e:
            raise SandboxError(f"the sandbox's services: {e} (python -m sandbox down, then up again)") from None
        self.save(state)
        log(f"services on {svc['name']} in {time.time() - t0:.1f}s: ACME CA {state['services']['acme']['url']}, "
            f"registry for {', '.join(state['services']['registry']['names'])} ({len(refs)} images)")

    def _start(self, i: int, group: str, state: dict, release: str, name: str | None = None,
               ca: str = "", archives: bool = False) -> dict:
        """Start a server container; `ca`: a PEM its trust store takes; `archives`: the image
        archives mounted on /sbx/images (the services server, which pushes them to the registry)."""
        name = name or f"{self.prefix}-{i}"
        container = f"mottivme-{name}"
        self.docker("rm", "-f", "-v", container, check=False)
        # its dockerd's CPU (below): the next one round the sandbox's servers of every state
        # directory, so two servers deploying at once (the main line, the Debian 12 thread) pull apart
        cpu = len(self.docker("ps", "-q", "--filter", f"label={LABEL}").split()) % (os.cpu_count() or 1)
        cid = self.docker(
            "run", "-d", "--name", container, "--hostname", name,
            "--label", f"{LABEL}={self.prefix}",
            "--network", self.network,
            "--cgroupns=private",  # never bind-mount the machine's /sys/fs/cgroup (see docs/sandbox.md)
            "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_TIME",
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "-e", "container=docker", "-e", "SBX_NET=isolated",
            "--sysctl", "net.ipv4.ip_forward=1",
            "--stop-signal", "SIGRTMIN+3", "--restart", "on-failure",
            "-v", "/var/lib/docker",  # nested overlay2 needs a non-overlay filesystem
            *(["-v", f"{CACHE / 'images'}:/sbx/images:ro"] if archives else []),
            "-v", f"{self.run_dir}:/sbx/run",
            # what this machine trusts (it may reach PyPI through a TLS-inspecting proxy)
            *(["-v", f"{HOST_CA.resolve()}:/sbx/host-ca.crt:ro"] if HOST_CA.exists() else []),
            RELEASES[release][1],
        ).strip()
        ports = _free_ports(2, exclude={p for h in _servers(state) for p in (h["ssh_port"], h["https_port"])})
        host = {
            "name": name, "index": i, "group": group, "release": release, "container": container, "container_id": cid,
            "ssh_host": "127.0.0.1", "ssh_port": ports[0], "https_port": ports[1],
            "ssh_user": "root", "key": str(self.key),
            "private_ip": self.docker("inspect", "-f",
                                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid).strip(),
            "pids": [],
        }
        for port, target in ((host["ssh_port"], 22), (host["https_port"], 443)):
            pidfile = self.run_dir / f"{name}-{target}.pid"
            _spawn(pidfile, ["socat", f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=64",
                             f"EXEC:{HERE / 'files' / 'nsconnect'} {cid} {target}"],
                   env=dict(os.environ, DOCKER_HOST=self.docker_host))
            host["pids"].append(int(pidfile.read_text()))
        pub = (self.key.with_suffix(".pub")).read_text().strip()
        self.docker("exec", cid, "sh", "-c",
                    f"install -d -m 700 /root/.ssh && echo '{pub}' > /root/.ssh/authorized_keys "
                    "&& chmod 600 /root/.ssh/authorized_keys"
                    # the sandbox's CA, before anything (dockerd) reads the trust store
                    + (f" && printf '%s\\n' '{ca.strip()}' > /usr/local/share/ca-certificates/mottivme-sandbox.crt"
                       # not in /tmp: Debian 13 mounts a tmpfs there while it boots, under the command
                       " && TMPDIR=/root update-ca-certificates >/dev/null" if ca else "")
                    # dockerd on one CPU: it unpacks a layer in a thread of its own, handing every
                    # file over between threads; across this VM's CPUs each hand-over costs an
                    # interrupt, on one it does not (a fresh deploy: 291 s -> 143 s, docs/sandbox.md).
                    # Containers (run by containerd) keep every CPU.
                    + f" && install -d /etc/systemd/system/docker.service.d && printf '[Service]\\nCPUAffinity={cpu}\\n'"
                    " > /etc/systemd/system/docker.service.d/sandbox-cpu.conf")
        return host

    def _wait_ready(self, h: dict, timeout: float = 120) -> None:
        t0 = time.time()
        while True:
            r = subprocess.run(self.ssh_args(h) + ["systemctl", "is-system-running", "--wait"],
                               capture_output=True, text=True, timeout=timeout)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    failed = subprocess.run(self.ssh_args(h) + ["systemctl", "--failed", "--no-legend"],
                                            capture_output=True, text=True).stdout
                    log(f"{h['name']}: systemd degraded: {failed.strip()}")
                return
            if time.time() - t0 > timeout:
                raise SandboxError(f"{h['name']}: no SSH/systemd after {timeout:.0f}s "
                                   f"(docker logs {h['container']}): {r.stderr.strip()}")
            time.sleep(0.3)

    def _write_names(self, state: dict) -> None:
        """Every server's /etc/hosts: its peers, and the registries' names at the services server.
        And a resolver that answers at once: Docker gives a server on the sandbox's network its
        embedded DNS (127.0.0.11), which never answers in an engine without iptables, so every name
        lookup that reached it (an IPv6 address of a registry's name, say) waited 10 s for nothing
        (each `docker pull` did: 10.3 s for an image the server already had, 0.3 s now). Nothing
        listens on the server's own 127.0.0.1:53: a lookup beyond /etc/hosts is refused there and
        then, as a real server's resolver answers a name it does not know."""
        svc = state["services"]
        lines = "".join(f"{h['private_ip']} {h['name']}\n" for h in state["hosts"])
        lines += f"{svc['server']['private_ip']} {' '.join(svc['registry']['names'])}\n"
        for h in state["hosts"]:
            self.docker("exec", h["container_id"], "sh", "-c",
                        "sed -i '/# sandbox peers$/,$d' /etc/hosts && "
                        f"printf '# sandbox peers\\n{lines}' >> /etc/hosts && "
                        "printf 'nameserver 127.0.0.1\\noptions ndots:0\\n' > /etc/resolv.conf", check=False)

    def ssh_args(self, h: dict) -> list[str]:
        return ["ssh", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=5", "-p", str(h["ssh_port"]), f"{h['ssh_user']}@{h['ssh_host']}"]

    def down(self, names: list[str] | None = None, stop_shared_services: bool = True) -> None:
        """Remove the named servers (default: all), by the ids recorded when they started. With
        none left anywhere, the private engine and the apt proxy are stopped too (unless told
        not to: a caller about to start servers again keeps them, and so spares whatever else
        is starting on them right now)."""
        state = self.load()
        keep, gone = [], []
        for h in state["hosts"]:
            if names and h["name"] not in names:
                keep.append(h)
                continue
            gone.append(h)
        for old in ("services", "acme"):  # the last server gone: the sandbox's own services too
            if not keep and state.get(old):  # ("acme": a sandbox made before the registry)
                gone.append(state.pop(old)["server"])
        for h in gone:
            for pid in h.get("pids", []):
                _kill_group(pid)
        # one `docker rm` for all of them: the client removes them side by side (each removal
        # deletes the server's own Docker data, n8n's 167,000 files: tens of seconds)
        if gone and self.hosts_file.exists() and _engine_alive():
            self.docker("rm", "-f", "-v", *(h["container_id"] for h in gone), check=False)
        for h in gone:
            for f in self.run_dir.glob(f"{h['name']}-*.pid"):
                f.unlink()
            log(f"removed {h['name']}")
        state["hosts"] = keep
        self.save(state)
        if not keep:
            _kill_group_file(self.run_dir / "aptproxy-fwd.pid")
            if _engine_alive():
                self.docker("network", "rm", self.network, check=False)
                if stop_shared_services:
                    stop_shared_if_unused()
                    self._docker_host = None

    def _networks(self) -> list[dict]:
        out = self.docker("network", "ls", "--format", "{{json .}}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def _ensure_key(self) -> None:
        if not self.key.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"mottivme-{self.prefix}",
                  "-f", str(self.key)])

    def _ensure_secrets(self) -> None:
        """Throwaway secrets for the sandbox (never used anywhere else); missing ones are added."""
        f = self.state_dir / "secrets.env"
        have = f.read_text() if f.exists() else "# throwaway secrets of this sandbox, generated by sandbox/core.py\n"
        tunnel_key = self.state_dir / "tunnel_ed25519"
        # a sandbox made before its ACME CA named n8n localhost: the name it has now
        have = have.replace("\nN8N_HOST=localhost\n", f"\nN8N_HOST={SANDBOX_N8N_HOST}\n")
        names = {line.split("=", 1)[0] for line in have.splitlines() if "=" in line}
        # every generable variable of tasks/variables.py, and what only the sandbox has
        wanted = {k: (lambda v=v: v) for k, v in variables.generated(dict.fromkeys(names, "x")).items()}
        wanted.update({
            "N8N_OWNER_EMAIL": lambda: "owner@sandbox.test",
            # a name Caddy gets a certificate for from the sandbox's ACME CA (localhost never would)
            "N8N_HOST": lambda: SANDBOX_N8N_HOST,
            "SUPABASE_STANDIN_PASSWORD": lambda: secrets.token_hex(16),
            "WORKER_TUNNEL_KEY_FILE": lambda: str(tunnel_key),
        })
        added = "".join(f"{k}={make()}\n" for k, make in wanted.items() if k not in names)
        if added or (f.exists() and have != f.read_text()):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            f.touch(mode=0o600)  # 0600 before the first secret is in it
            f.chmod(0o600)
            f.write_text(have + added)
        if not tunnel_key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mottivme-worker-tunnel", "-f", str(tunnel_key)])


# --- shared pieces -----------------------------------------------------------------------------


def _servers(state: dict) -> list[dict]:
    """Every server of a sandbox's state: its hosts and its services server."""
    return state["hosts"] + [state[k]["server"] for k in ("services", "acme") if state.get(k)]


def versions() -> dict:
    """Image names and versions: group_data (all.py, then sandbox.py), one place for every tunable."""
    return groupdata.load("sandbox")


def install_host_deps() -> None:
    _run([str(HERE / "install-host-deps.sh")])


@contextlib.contextmanager
def shared_lock():
    """Held while a sandbox sets up what every sandbox on this machine shares."""
    (CACHE / "run").mkdir(parents=True, exist_ok=True)
    with open(CACHE / "run" / "sandbox.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def stop_shared_if_unused() -> None:
    """Stop the engine and the apt proxy when no sandbox server is left (of any sandbox)."""
    if not _engine_alive():
        return
    with shared_lock():
        env = dict(os.environ, DOCKER_HOST=_run([str(HERE / "engine.sh"), "start"], env=_cache_env(),
                                                capture=True).strip().splitlines()[-1])
        if not _run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], env=env, capture=True).split():
            stop_shared()


def stop_shared() -> None:
    """Stop the apt proxy and the private engine (nothing of the sandbox runs any more)."""
    _kill_group_file(APT_CACHE / "acng.pid", group=False)
    _run([str(HERE / "engine.sh"), "stop"], env=_cache_env(), check=False)


def _engine_alive() -> bool:
    return subprocess.run([str(HERE / "engine.sh"), "status"], env=_cache_env(),
                          capture_output=True).returncode == 0


def _cache_env() -> dict:
    return dict(os.environ, SBX_CACHE=str(CACHE))


def _run(cmd: list[str], env: dict | None = None, capture: bool = False, check: bool = True) -> str:
    r = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        detail = (r.stderr or "").strip() if capture else ""
        raise SandboxError(f"`{' '.join(cmd[:4])}` failed (exit {r.returncode}) {detail}".strip())
    return r.stdout or ""


def _spawn(pidfile: Path, cmd: list[str], env: dict | None = None) -> None:
    """Start a long-lived helper in its own process group and record its id."""
    log_file = open(pidfile.with_suffix(".log"), "ab")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                         start_new_session=True, env=env)
    pidfile.write_text(str(p.pid))
    time.sleep(0.1)
    if p.poll() is not None:
        raise SandboxError(f"{cmd[0]} exited at once: {pidfile.with_suffix('.log').read_text()[-500:]}")


def _alive(pidfile: Path) -> bool:
    try:
        return _ours(int(pidfile.read_text()))
    except (OSError, ValueError):
        return False


def _ours(pid: int) -> bool:
    """Is `pid` still a helper the sandbox started (socat, apt-cacher-ng), not a reused id?"""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return cmd.endswith((b"socat", b"apt-cacher-ng"))


def _kill_group(pid: int, group: bool = True) -> None:
    if not _ours(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM) if group else os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _kill_group_file(pidfile: Path, group: bool = True) -> None:
    if pidfile.exists():
        try:
            _kill_group(int(pidfile.read_text()), group)
        except ValueError:
            pass
        pidfile.unlink(missing_ok=True)  # apt-cacher-ng removes its own on SIGTERM, sometimes first


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_ports(n: int, exclude: set[int], start: int = 22100) -> list[int]:
    found = []
    port = start
    while len(found) < n:
        port += 1
        if port in exclude:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
    return found


def _wait(pred, timeout: float, msg: str) -> None:
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout:
            raise SandboxError(msg)
        time.sleep(0.1)

