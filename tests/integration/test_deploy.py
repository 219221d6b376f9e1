"""`pyinfra inventory.py deploy.py` on a fresh sandbox server, checked the way a user would."""

import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from sandbox.n8n_client import WEBHOOK_WORKFLOW, N8nClient, n8n_api, webhook_workflow
from tasks import groupdata, vaultkeys
from tasks.groups import NAMES as GROUP_NAMES
from tests.helpers import ROOT, STATE, lock_holding, run_mottivme, run_pyinfra, secrets_of, tcp_from


def test_fresh_server_answers_ready_through_https(n8n_server, first_deploy):
    status, body = N8nClient(n8n_server.url).request("GET", "healthz/readiness")
    assert status == 200 and body == {"status": "ok"}
    # the deploy said so too (it asks for N8N_HOST, whose certificate came from the ACME CA)
    assert "n8n ready (/healthz/readiness through Caddy)" in first_deploy.stderr + first_deploy.stdout


def served_certificate(server, name: str) -> str:
    """The certificate `server` serves on 443 for `name` (SNI): its issuer, serial and names."""
    return server.sh(f"openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null "
                     "| openssl x509 -noout -issuer -serial -ext subjectAltName", check=False)


def test_certificates_come_from_the_acme_ca_and_a_new_caddy_container_keeps_them(n8n_server, monitor, sbx,
                                                                                 first_deploy):
    """The sandbox's ACME CA (Let's Encrypt's test server pebble, sandbox/acme.py) stands in for
    Let's Encrypt, through the automatic HTTPS production uses: the n8n server's certificate for
    N8N_HOST and the monitor's for its status host are ones it issued. Caddy keeps its certificates
    in a volume: a re-created container serves the same one (no new order at every deploy)."""
    name, status_host = secrets_of(sbx)["N8N_HOST"], groupdata.load("sandbox")["monitor_status_host"]
    n8n_cert = served_certificate(n8n_server, name)
    assert "issuer=CN=Pebble Intermediate CA" in n8n_cert and f"DNS:{name}" in n8n_cert, n8n_cert
    status_cert = served_certificate(monitor, status_host)
    assert "issuer=CN=Pebble Intermediate CA" in status_cert and f"DNS:{status_host}" in status_cert, status_cert
    # the extra name localhost (how this machine reaches the sandbox) cannot have a public one
    assert "Caddy Local Authority" in served_certificate(n8n_server, "localhost")

    n8n_server.sh("mottivme-host compose up -d --force-recreate caddy >/dev/null 2>&1")
    deadline = time.time() + 60
    while "serial=" not in (again := served_certificate(n8n_server, name)) and time.time() < deadline:
        time.sleep(0.5)
    serial = re.compile(r"serial=\w+")
    assert serial.search(again) and serial.search(again)[0] == serial.search(n8n_cert)[0], (n8n_cert, again)


def test_owner_is_claimed_and_login_works(n8n, sbx):
    s = secrets_of(sbx)
    status, settings = n8n.request("GET", "rest/settings")
    assert status == 200
    assert settings["data"]["userManagement"]["showSetupOnFirstLoad"] is False
    # nobody can take the fresh server over
    status, _ = n8n.request("POST", "rest/owner/setup", {
        "email": "attacker@example.test", "firstName": "A", "lastName": "B", "password": "Attacker-123"})
    assert status >= 400
    status, _ = n8n.request("POST", "rest/login", {"emailOrLdapLoginId": "attacker@example.test",
                                                   "password": "Attacker-123"})
    assert status == 401
    status, me = n8n.request("POST", "rest/login", {"emailOrLdapLoginId": s["N8N_OWNER_EMAIL"],
                                                    "password": s["N8N_OWNER_PASSWORD"]})
    assert status == 200 and me["data"]["email"] == s["N8N_OWNER_EMAIL"]


def test_workflow_imported_and_executed_through_the_api(n8n, sbx):
    s = secrets_of(sbx)
    assert n8n.request("POST", "rest/login", {"emailOrLdapLoginId": s["N8N_OWNER_EMAIL"],
                                              "password": s["N8N_OWNER_PASSWORD"]})[0] == 200
    _, scopes = n8n.request("GET", "rest/api-keys/scopes")
    status, key = n8n.request("POST", "rest/api-keys", {"label": f"itest-{time.time()}",
                                                        "scopes": scopes["data"], "expiresAt": None})
    assert status == 200, key
    api = {"X-N8N-API-KEY": key["data"]["rawApiKey"]}
    workflow = json.loads(WEBHOOK_WORKFLOW.read_text())
    status, created = n8n.request("POST", "api/v1/workflows", workflow, api)
    assert status == 200, created
    status, active = n8n.request("POST", f"api/v1/workflows/{created['id']}/activate", None, api)
    assert status == 200 and active["active"] is True
    # the webhook runs the workflow; its Code node runs in n8n 2.x's task runner
    for _ in range(30):  # activation registers the webhook; allow n8n a moment to do so
        status, answer = n8n.request("GET", "webhook/itest-ping?ping=hello&n=21")
        if status != 404:
            break
        time.sleep(0.5)
    assert status == 200, answer
    assert answer == {"pong": "hello", "doubled": 42, "runner": "code"}
    for _ in range(20):
        _, execs = n8n.request("GET", f"api/v1/executions?workflowId={created['id']}", None, api)
        if execs["data"] and execs["data"][0]["finished"]:
            break
        time.sleep(0.5)
    assert [(e["status"], e["mode"]) for e in execs["data"]] == [("success", "webhook")]


PROBE_CODE = r"""const out = {};
const attempt = (name, f) => { try { out[name] = String(f()); } catch (e) { out[name] = 'refused: ' + e.message; } };
attempt('process', () => typeof process);
attempt('env', () => JSON.stringify(process.env));
attempt('fs', () => require('fs').readFileSync('/proc/1/environ', 'latin1'));
attempt('child', () => require('child_process').execSync('cat /proc/*/environ').toString());
attempt('ctor', () => JSON.stringify(this.constructor.constructor('return process.env')()));
attempt('crypto', () => typeof require('crypto').randomUUID());
attempt('dollarEnv', () => JSON.stringify([$env.N8N_ENCRYPTION_KEY, $env.DB_POSTGRESDB_PASSWORD]));
return [{ json: out }];"""


def test_code_nodes_run_in_the_runners_container_where_no_secret_of_n8n_is(n8n, n8n_server, probe, sbx):
    """External task runners (n8n_runners_mode "external"): a Code node runs in the runners
    container beside n8n, which holds none of n8n's secrets: not in what the code can reach, not in
    any of its processes' environments, not on a volume; and the container reaches nothing but its
    n8n process."""
    s = secrets_of(sbx)
    secret_values = [s[k] for k in ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "N8N_OWNER_PASSWORD")]
    api = n8n_api(n8n, s)
    webhook_workflow(n8n, api, "itest runners probe", "itest-runners", "77777777-7777-4777-8777-777777777777",
                     code=PROBE_CODE)
    status, out = n8n.request("GET", "webhook/itest-runners")
    assert status == 200, out
    readable = [*secret_values, s["N8N_RUNNERS_AUTH_TOKEN"]]  # the launcher holds the token; the code must not
    assert not any(v in json.dumps(out) for v in readable), "a Code node read one of n8n's secrets"
    assert out["process"] == "undefined" and out["fs"].startswith("refused") and out["child"].startswith("refused")
    assert out["dollarEnv"].startswith("refused"), out["dollarEnv"]  # N8N_BLOCK_ENV_ACCESS_IN_NODE
    # the runners image's own settings (its launcher's configuration) apply: crypto is allowed there
    # and not in n8n's internal runner, which only n8n's environment configures
    assert out["crypto"] == "string"
    # the JavaScript runner is a process of the runners container, not of n8n's
    def runner_processes(service) -> int:
        count = ("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done "
                 "| grep -c '[t]ask-runner.*start.js' || true")
        return int(n8n_server.sh(f"mottivme-host compose exec -T {service} sh -s", stdin=count).strip() or 0)
    assert runner_processes("n8n-runners") == 1 and runner_processes("n8n") == 0
    # every process's environment, as the container's user (all its processes run as it; root there
    # has no right to read another user's): the launcher's and the runner's are among them
    env = n8n_server.sh("mottivme-host compose exec -T n8n-runners sh -s",
                        stdin="for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done")
    names = {line.split("=", 1)[0] for line in env.splitlines() if "=" in line}
    assert {"N8N_RUNNERS_GRANT_TOKEN", "N8N_RUNNERS_AUTH_TOKEN"} <= names and "N8N_ENCRYPTION_KEY" not in names
    assert not any(v in env for v in secret_values), "a secret of n8n is in a runners process's environment"
    # its network: n8n's broker, nothing else (not PostgreSQL, not the host, not another server)
    gateway = str(next(ipaddress.ip_network(groupdata.load()["n8n_runners_subnet"]).hosts()))  # the host's address there
    assert tcp_from(n8n_server, "n8n-runners", "n8n", 5679) == "open"
    for address, port in (("postgres", 5432), (gateway, 22), (probe.h["private_ip"], 22)):
        assert tcp_from(n8n_server, "n8n-runners", address, port) == "closed", (address, port)
    assert tcp_from(n8n_server, "n8n", probe.h["private_ip"], 22) == "open"  # what a way out looks like
    mounts = n8n_server.sh("docker inspect --format '{{json .Mounts}}' $(mottivme-host compose ps -q n8n-runners)")
    assert json.loads(mounts) == []


def test_env_file_is_root_only(n8n_server, first_deploy):
    assert n8n_server.sh("stat -c '%a %U %G' /opt/n8n/.env").split() == ["600", "root", "root"]


def test_postgres_is_not_reachable_from_outside_the_stack(n8n_server, probe, first_deploy):
    # not published on the host ...
    assert "5432" not in n8n_server.sh("ss -Hltn")
    assert "5432" not in n8n_server.sh("docker ps --format '{{.Ports}}'")
    # ... not reachable from another machine ...
    ip = n8n_server.h["private_ip"]
    assert probe.sh(f"timeout 3 bash -c '</dev/tcp/{ip}/5432' 2>/dev/null && echo open || echo closed",
                    check=False).strip() == "closed"
    # ... and its network has no way out or in but n8n (compose network `backend` is internal)
    out = n8n_server.sh("docker network inspect n8n_backend -f '{{.Internal}}'")
    assert out.strip() == "true"


@pytest.mark.parametrize("port,expected", [(22, "open"), (80, "open"), (443, "open"), (5678, "closed"),
                                           (5432, "closed"), (2375, "closed"), (3142, "closed")])
def test_only_22_80_443_are_open_to_other_machines(n8n_server, probe, first_deploy, port, expected):
    ip = n8n_server.h["private_ip"]
    got = probe.sh(f"timeout 3 bash -c '</dev/tcp/{ip}/{port}' 2>/dev/null && echo open || echo closed",
                   check=False).strip()
    assert got == expected


def test_firewall_drops_a_new_listener(n8n_server, probe, first_deploy):
    """A service someone starts by hand on 8080 is still unreachable from outside."""
    n8n_server.sh("systemd-run --unit itest-listener socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:'echo hi'")
    try:
        ip = n8n_server.h["private_ip"]
        assert n8n_server.sh("timeout 3 bash -c '</dev/tcp/127.0.0.1/8080' && echo open", check=False).strip() == "open"
        assert probe.sh(f"timeout 3 bash -c '</dev/tcp/{ip}/8080' 2>/dev/null && echo open || echo closed",
                        check=False).strip() == "closed"
    finally:
        n8n_server.sh("systemctl stop itest-listener", check=False)


@pytest.fixture(scope="module")
def second_run(sandbox_env, first_deploy):
    """`pyinfra -y --json inventory.py deploy.py` right after the first deploy."""
    return run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)


def test_second_run_changes_nothing(second_run):
    r = second_run
    assert r.returncode == 0, r.stderr[-3000:]
    totals = json.loads(r.stdout)["results"]["totals"]
    assert totals["error"] == 0
    changed = [op["name"] for op in json.loads(r.stdout)["results"]["operations"] if op["success"]]
    assert totals["success"] == 0, f"second run changed: {changed}"
    assert totals["no_change"] > 20


def test_drift_is_converged(n8n_server, sandbox_env, first_deploy):
    """A stopped n8n container, a hand-edited compose file and a hand-edited Caddyfile that Caddy
    was made to serve are all put back by the next run: the stack is applied and Caddy serves the
    deploy's Caddyfile again (one run that does both once left Caddy on the old one)."""
    served = "curl -sk -o /dev/null -D - https://localhost/healthz"
    n8n_server.sh("sed -i 's/^\t\t-Server$/\t\t-Server\\n\t\tX-Drift \"by hand\"/' /opt/n8n/caddy/Caddyfile && "
                  "mottivme-host compose exec -T caddy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile")
    assert "x-drift: by hand" in n8n_server.sh(served).lower()
    n8n_server.sh("docker stop $(mottivme-host compose ps -q n8n) >/dev/null && "
                  "echo '# edited by hand' >> /opt/n8n/docker-compose.yml")
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-3000:]
    changed = {op["name"] for op in json.loads(r.stdout)["results"]["operations"] if op["success"]}
    assert {"n8n stack | apply configuration (compose up -d)", "n8n stack | Caddyfile"} <= changed, changed
    assert "edited by hand" not in n8n_server.sh("cat /opt/n8n/docker-compose.yml")
    assert "X-Drift" not in n8n_server.sh("cat /opt/n8n/caddy/Caddyfile")
    assert "x-drift" not in n8n_server.sh(served).lower()
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_a_secret_in_use_that_differs_from_env_stops_the_deploy_and_changes_nothing(n8n_server, sandbox_env,
                                                                                    first_deploy):
    """As if .env came from another installation: the server's encryption key and restic password
    differ from it. The deploy names both with their fix and writes neither (a new key would make
    every credential unreadable; a new restic password every backup)."""
    n8n_server.sh("cp -p /opt/n8n/.env /root/env.keep && cp -p /etc/mottivme/restic-password /root/restic.keep && "
                  "sed -i 's/^N8N_ENCRYPTION_KEY=.*/N8N_ENCRYPTION_KEY=the-other-installations-key-0123456789/' "
                  "/opt/n8n/.env && echo the-other-restic-password-0123 > /etc/mottivme/restic-password")
    try:
        before = n8n_server.sh("sha256sum /opt/n8n/.env /etc/mottivme/restic-password")
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)
        out = r.stdout + r.stderr
        assert r.returncode == 2, out[-3000:]
        assert "N8N_ENCRYPTION_KEY in .env is not the one this server uses: n8n encrypts every credential" in out
        assert "RESTIC_PASSWORD in .env is not the one this server uses" in out and "Nothing was changed." in out
        assert "the-other-" not in out
        assert n8n_server.sh("sha256sum /opt/n8n/.env /etc/mottivme/restic-password") == before
    finally:
        n8n_server.sh("cp -p /root/env.keep /opt/n8n/.env && cp -p /root/restic.keep /etc/mottivme/restic-password "
                      "&& rm -f /root/env.keep /root/restic.keep")


def test_unreachable_host_others_converge_and_run_fails_naming_it(sbx, sandbox_env, tmp_path, first_deploy):
    """A second server that does not answer: the good one still converges, the run exits
    non-zero and the output names the unreachable host."""
    state = json.loads((STATE / "hosts.json").read_text())
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    gone = dict(state["hosts"][0], name="tst-gone", ssh_port=dead_port)
    state["hosts"] = [h for h in state["hosts"] if h["group"] == "n8n_servers"] + [gone]
    (tmp_path / "hosts.json").write_text(json.dumps(state))
    for f in ("secrets.env", "images.lock"):
        shutil.copy(STATE / f, tmp_path / f)
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], dict(sandbox_env, SBX_STATE=str(tmp_path)))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "tst-gone" in out
    good = state["hosts"][0]["name"]
    assert re.search(rf"\[{good}\]\s+Connected", out)
    assert re.search(r"\[tst-gone\]\s+Could not connect", out)
    assert "n8n owner account claimed" in out  # the good host ran the whole deploy


def test_no_secret_value_in_any_output(sbx, sandbox_env, first_deploy, second_run):
    # the first deploy, --json, and -v with --debug-operations (every operation's arguments);
    # -vvv --diff: test_secret_files_never_shown_and_ssh_hardening_holds_over_an_image_drop_in
    runs = [first_deploy, second_run]
    runs.append(run_pyinfra(["--dry", "-v", "--debug-operations", "inventory.py", "deploy.py"], sandbox_env))
    text = "\n".join(r.stdout + r.stderr for r in runs)
    s = secrets_of(sbx)
    for name in ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "N8N_OWNER_PASSWORD"):
        assert s[name] not in text, f"{name} leaked into pyinfra output"
    assert "*MASKED*" in text or "Results" in text


def test_secret_files_never_shown_and_ssh_hardening_holds_over_an_image_drop_in(n8n_server, vault, sbx, sandbox_env,
                                                                                   first_deploy):
    """Every secret file changed on the host, and a drop-in of the kind an image brings (cloud-init's)
    that enables passwords; then one deploy with --diff -vvv (pyinfra's own files.put/template would
    print secret contents): no secret value in the output, each secret file written back 0600 root,
    sshd's effective settings are the deploy's, and the next run changes nothing."""
    secret_files = ["/opt/n8n/.env", "/etc/mottivme/restic-password", "/etc/mottivme/host.json",
                    "/etc/mottivme/vault-password"]
    vault_files = ["/etc/restic-rest-server/tls.key", "/etc/restic-rest-server/users.htpasswd"]
    n8n_server.sh("for f in " + " ".join(secret_files) + "; do echo '# drift' >> $f; done")
    vault.sh("for f in " + " ".join(vault_files) + "; do echo '# drift' >> $f; done")
    n8n_server.sh("printf 'PasswordAuthentication yes\\nPermitRootLogin yes\\nKbdInteractiveAuthentication yes\\n' "
                  "> /etc/ssh/sshd_config.d/50-cloud-init.conf && systemctl reload ssh")
    try:
        r = run_pyinfra(["-y", "--diff", "-vvv", "inventory.py", "deploy.py"], sandbox_env, timeout=1200)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        s = secrets_of(sbx)
        for name in ("N8N_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "RESTIC_PASSWORD", "N8N_OWNER_PASSWORD",
                     "SUPABASE_STANDIN_PASSWORD", "MONITOR_PING_TOKEN"):
            if s.get(name):
                assert s[name] not in out, f"{name} shown by --diff -vvv"
        assert "BEGIN OPENSSH PRIVATE KEY" not in out and "it holds a secret: its content is not shown" in out
        assert "PRIVATE KEY" not in out and "$2b$" not in out  # the vault's TLS key, its accounts' hashes
        assert s["BACKUP_VAULT_SECRET"] not in out
        assert vaultkeys.password(s["BACKUP_VAULT_SECRET"], n8n_server.name) not in out
        assert vault.sh("stat -c '%a %U %G' " + " ".join(vault_files) + "; cat " + " ".join(vault_files)
                        + " | grep -c '# drift' || true").split("\n")[:3] == ["640 root restic-rest-server"] * 2 + ["0"]
        listing = n8n_server.sh("stat -c '%a %U %n' " + " ".join(secret_files) + "; grep -l '# drift' "
                                + " ".join(secret_files) + " || true")
        assert listing.split("\n")[:4] == [f"600 root {f}" for f in secret_files], listing
        assert "# drift" not in listing
        effective = set(n8n_server.sh("sshd -T").splitlines())
        assert {"passwordauthentication no", "kbdinteractiveauthentication no", "permitemptypasswords no",
                "permitrootlogin without-password", "x11forwarding no", "maxauthtries 4",
                "authorizedkeysfile .ssh/authorized_keys"} <= effective
        r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
        assert r.returncode == 0 and json.loads(r.stdout)["results"]["totals"]["success"] == 0, r.stderr[-2000:]
    finally:
        n8n_server.sh("rm -f /etc/ssh/sshd_config.d/50-cloud-init.conf && systemctl reload ssh")


def test_metrics_stay_inside_and_security_headers_are_sent(n8n_server, first_deploy):
    """n8n's /metrics (on: n8n_metrics) answers inside the stack but not through Caddy; the site
    sends the usual security headers."""
    import ssl
    import urllib.error
    import urllib.request

    inside = n8n_server.sh("docker exec $(mottivme-host compose ps -q n8n) node -e \"fetch('http://127.0.0.1:5678/metrics')"
                           ".then(r=>console.log(r.status),()=>console.log(0))\"")
    assert inside.strip() == "200"
    ctx = ssl._create_unverified_context()
    try:
        urllib.request.urlopen(n8n_server.url + "metrics", context=ctx, timeout=30)
        raise AssertionError("/metrics answered through Caddy")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    with urllib.request.urlopen(n8n_server.url + "healthz/readiness", context=ctx, timeout=30) as r:
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"]
        assert "Server" not in r.headers


def test_people_come_and_go_by_group_data_and_keys_nobody_listed_stay(sbx, n8n_server, sandbox_env, first_deploy,
                                                                      tmp_path):
    """SOP 05 access control as data: a present person's key logs in on every server, a person set
    absent is refused everywhere (their key taken off whatever its comment), a key nobody listed is
    left alone, and `mottivme access` shows who has what where."""
    keys = {}
    for who in ("ana", "bruno", "stray"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{who}@notebook", "-f",
                        str(tmp_path / who)], check=True)
        keys[who] = (tmp_path / f"{who}.pub").read_text().strip()
    n8n_server.sh(f"echo '{keys['stray']}' >> /root/.ssh/authorized_keys")
    servers = [h for h in sbx.load()["hosts"] if h["group"] in GROUP_NAMES]  # the servers the deploy manages

    def logs_in(h: dict, who: str) -> bool:
        args = sbx.ssh_args(h)  # the sandbox's options, with this person's key in place of its own
        args[args.index("-i") + 1] = str(tmp_path / who)
        return subprocess.run([*args, "true"], capture_output=True, timeout=60).returncode == 0

    people = [{"name": "Ana Souza", "email": "ana@mottivme.com.br", "ssh_key": keys["ana"], "state": "present",
               "n8n": "member"},
              {"name": "Bruno Lima", "email": "bruno@mottivme.com.br", "ssh_key": keys["bruno"], "state": "present",
               "n8n": "member"}]
    r = run_pyinfra(["-y", "inventory.py", "deploy.py", "--data", f"people={json.dumps(people)}"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "n8n users: invited ana@mottivme.com.br, bruno@mottivme.com.br" in out, out[-3000:]
    assert all(logs_in(h, "ana") and logs_in(h, "bruno") for h in servers), "a present person cannot log in"
    # their n8n accounts: members; Bruno takes his invitation (the link the owner can hand out)
    secrets = secrets_of(sbx)
    assert secrets["N8N_OWNER_PASSWORD"] not in out
    owner = N8nClient(n8n_server.url)
    assert owner.request("POST", "rest/login", {"emailOrLdapLoginId": secrets["N8N_OWNER_EMAIL"],
                                                "password": secrets["N8N_OWNER_PASSWORD"]})[0] == 200
    users = {u["email"]: u for u in owner.request("GET", "rest/users")[1]["data"]["items"]}
    assert users["ana@mottivme.com.br"]["role"] == users["bruno@mottivme.com.br"]["role"] == "global:member"
    status, link = owner.request("POST", f"rest/users/{users['bruno@mottivme.com.br']['id']}/invite-link")
    assert status == 200, link
    token = re.search(r"token=([^&\s]+)", link["data"]["link"]).group(1)
    bruno = N8nClient(n8n_server.url)
    status, body = bruno.request("POST", "rest/invitations/accept", {"token": token, "firstName": "Bruno",
                                                                     "lastName": "Lima", "password": "Bruno12345x"})
    assert status == 200, body

    def n8n_login(email: str, password: str) -> int:
        return N8nClient(n8n_server.url).request("POST", "rest/login", {"emailOrLdapLoginId": email,
                                                                        "password": password})[0]

    assert n8n_login("bruno@mottivme.com.br", "Bruno12345x") == 200
    bruno = N8nClient(n8n_server.url)  # a workflow of Bruno's own, which must outlive his account
    assert bruno.request("POST", "rest/login", {"emailOrLdapLoginId": "bruno@mottivme.com.br",
                                                "password": "Bruno12345x"})[0] == 200
    status, body = bruno.request("POST", "rest/workflows", {"name": "itest bruno's workflow", "nodes": [],
                                                            "connections": {}, "settings": {}})
    assert status == 200, body

    people[1]["state"] = "absent"  # Bruno leaves the team
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py", "--data", f"people={json.dumps(people)}"],
                    sandbox_env)
    assert r.returncode == 0, r.stderr[-3000:]
    changed = {op["name"] for op in json.loads(r.stdout)["results"]["operations"] if op["success"]}
    assert changed == {"Base system | ssh: people's keys (1 present, 1 absent)",
                       "n8n stack | n8n users: people's accounts (1 present, 1 absent)"}, changed
    for h in servers:
        assert not logs_in(h, "bruno"), f"{h['name']}: an absent person still logs in"
        assert logs_in(h, "ana"), h["name"]
    assert n8n_login("bruno@mottivme.com.br", "Bruno12345x") == 401  # his n8n account is gone
    emails = {u["email"] for u in owner.request("GET", "rest/users")[1]["data"]["items"]}
    assert "bruno@mottivme.com.br" not in emails and {"ana@mottivme.com.br", secrets["N8N_OWNER_EMAIL"]} <= emails
    # his workflows stay: they went to the owner with the account (n8n's transferId), none was deleted
    api = n8n_api(N8nClient(n8n_server.url), secrets)
    status, listed = owner.request("GET", "api/v1/workflows?limit=250", None, api)
    assert status == 200 and "itest bruno's workflow" in [w["name"] for w in listed["data"]], listed
    # the owner can never be removed this way: refused before anything runs
    gone = [*people, {"name": "Owner", "email": secrets["N8N_OWNER_EMAIL"], "ssh_key": keys["stray"],
                      "state": "absent", "n8n": "member"}]
    r = run_pyinfra(["-y", "inventory.py", "deploy.py", "--data", f"people={json.dumps(gone)}"], sandbox_env)
    assert r.returncode != 0 and "the owner can never be removed this way" in r.stdout + r.stderr
    assert n8n_login(secrets["N8N_OWNER_EMAIL"], secrets["N8N_OWNER_PASSWORD"]) == 200
    assert logs_in(n8n_server.h, "stray"), "a key nobody listed was taken off"
    assert subprocess.run(sbx.ssh_args(n8n_server.h) + ["true"]).returncode == 0  # nor the deploy's own

    # the access table (group_data here has nobody: the report reads people from group_data)
    r = run_mottivme(["access"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("who ")).split()
    assert head[-1] == f"n8n@{n8n_server.name}", head  # the n8n server's accounts come last
    ssh = slice(-len(servers) - 1, -1)
    stray = next(line for line in lines if line.startswith("(not in group_data) stray@notebook"))
    assert dict(zip(head[ssh], stray.split()[ssh], strict=True)) == {
        h["name"]: "yes" if h["name"] == n8n_server.name else "no" for h in servers}, out
    # n8n's accounts, read from its database: the owner and Ana (Bruno's is gone)
    accounts = {line.split()[5]: line.split()[-1] for line in lines if line.startswith("(n8n account not in group_data)")}
    assert accounts == {secrets["N8N_OWNER_EMAIL"].lower(): "owner", "ana@mottivme.com.br": "invited"}, out


def test_a_port_published_on_loopback_is_out_of_a_neighbours_reach(n8n_server, probe, first_deploy):
    """A neighbour on the same network segment sends a SYN for 127.0.0.1:PORT to the server's MAC:
    without the firewall's prerouting rule Docker's DNAT would hand it to a container published on
    127.0.0.1 (what tiers ouro/platina do with Redis and PostgreSQL for the worker tunnel)."""
    n8n_server.sh("docker rm -f itest-loopback >/dev/null 2>&1; docker run -d --name itest-loopback "
                  f"-p 127.0.0.1:7777:80 {groupdata.load()['caddy_image']} caddy file-server --listen :80 >/dev/null && "
                  "for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:7777/ && break; sleep 0.2; done")
    try:
        mac = n8n_server.sh("cat /sys/class/net/$(ip -o route get 1.1.1.1 | awk '{print $5}')/address").strip()
        script = (ROOT / "tests" / "forged_syn.py").read_text()
        ip = n8n_server.h["private_ip"]

        def forged(dest: str, port: int) -> str:
            return probe.sh(f"python3 - {mac} {dest} {port} {probe.h['private_ip']} <<'EOF'\n{script}\nEOF").strip()

        assert forged(ip, 443) == "answered"  # the forged frame itself is fine: an open port answers it
        assert forged("127.0.0.1", 7777) == "silent", "a loopback-published port answered a neighbour"
    finally:
        n8n_server.sh("docker rm -f itest-loopback >/dev/null 2>&1", check=False)


def on_services(sbx, command: str) -> subprocess.CompletedProcess:
    """A command on the sandbox's services server (its registry: sandbox/registry.py)."""
    return subprocess.run(sbx.ssh_args(sbx.load()["services"]["server"]) + [command], capture_output=True, text=True,
                          timeout=300)


def test_images_run_pinned_by_digest_and_a_moved_tag_waits_for_the_lock(n8n_server, sbx, sandbox_env, first_deploy):
    """The deploy pulls and runs each image by the digest images.lock holds (the sandbox's lock came
    from its registry, through tasks/images.py). A tag that moves in the registry changes nothing
    until someone moves the lock; a digest the registry does not serve stops the deploy with one
    line before anything changed; `make images-lock` moves the lock and the next deploy rolls the
    new image out."""
    # converged first: an earlier test's deploy with another inventory leaves changes to put back
    r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-3000:]
    caddy = groupdata.load()["caddy_image"]
    lock_file = STATE / "images.lock"
    locked = json.loads(lock_file.read_text())["images"][caddy]
    running = "docker image inspect --format '{{json .RepoDigests}}' $(mottivme-host compose images -q caddy)"
    assert f"caddy@{locked}" in n8n_server.sh(running)
    assert f"image: {caddy}@{locked}" in n8n_server.sh("cat /opt/n8n/docker-compose.yml")
    check = [sys.executable, "-m", "tasks.images", "check"]
    r = subprocess.run(check, cwd=ROOT, env=sandbox_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"{caddy:<40} {locked}  unchanged" in r.stdout, r.stdout + r.stderr

    # the tag moves in the registry: the same Caddy pushed again as an OCI manifest, a new digest
    # (pushed again as it was, skopeo would reuse the blobs and the manifest: the same digest)
    moved = on_services(sbx, f"skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --format oci "
                             f"docker://127.0.0.1/library/{caddy} docker://127.0.0.1/library/{caddy} && "
                             f"skopeo inspect --tls-verify=false --format '{{{{.Digest}}}}' docker://127.0.0.1/library/{caddy}")
    assert moved.returncode == 0, moved.stderr
    new = moved.stdout.strip()
    assert new != locked
    r = subprocess.run(check, cwd=ROOT, env=sandbox_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and f"{caddy:<40} {new}  moved from {locked}" in r.stdout, r.stdout + r.stderr
    assert "1 image(s) differ from images.lock: if the change is wanted, `make images-lock`, then deploy" in r.stderr
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    changed = [op["name"] for op in json.loads(r.stdout)["results"]["operations"] if op["success"]]
    assert r.returncode == 0 and changed == [], (changed, r.stderr[-3000:])
    assert f"caddy@{locked}" in n8n_server.sh(running)

    container = n8n_server.sh("mottivme-host compose ps -q caddy")

    # a digest the registry never served: one line, and the stack's files are as they were
    compose_before = n8n_server.sh("sha256sum /opt/n8n/docker-compose.yml")
    bogus = "sha256:" + "0" * 64
    with lock_holding({caddy: bogus}):
        r = run_pyinfra(["-y", "inventory.py", "deploy.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and f"{caddy}@{bogus}: not pulled (docker's reason above)" in out, out[-3000:]
    assert n8n_server.sh("sha256sum /opt/n8n/docker-compose.yml") == compose_before

    # the lock moved on purpose: the next deploy runs the new image, and the site answers
    r = subprocess.run([sys.executable, "-m", "tasks.images", "lock"], cwd=ROOT, env=sandbox_env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and json.loads(lock_file.read_text())["images"][caddy] == new, r.stdout + r.stderr
    r = run_pyinfra(["-y", "--json", "inventory.py", "deploy.py"], sandbox_env)
    assert r.returncode == 0, r.stderr[-3000:]
    changed = {op["name"] for op in json.loads(r.stdout)["results"]["operations"] if op["success"]}
    assert {f"n8n stack | image {caddy} (pinned by digest)", "n8n stack | apply configuration (compose up -d)"} <= changed
    assert f"image: {caddy}@{new}" in n8n_server.sh("cat /opt/n8n/docker-compose.yml")
    assert n8n_server.sh("mottivme-host compose ps -q caddy") != container  # re-created on it
    assert f"caddy@{new}" in n8n_server.sh(running)
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
