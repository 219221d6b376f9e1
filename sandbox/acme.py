"""The sandbox's ACME certificate authority: Let's Encrypt's test server, Debian's `pebble`, on the
sandbox's services server, which no deploy targets (`<prefix>-services`, hosts.json's
"services"; the container registry, sandbox/registry.py, runs there too).

Caddy on the n8n servers and on the monitor gets its certificates from it through the automatic
HTTPS production uses; only the CA's directory URL and the root that signs its HTTPS differ
(caddy_acme_ca, caddy_acme_ca_root: host data the sandbox's inventory gives every server, from
`settings()`). Pebble validates no challenge here (PEBBLE_VA_ALWAYS_VALID, its own setting): the
sandbox has no DNS that would lead it to the servers. Its HTTPS certificate is the sandbox's own
(the services' CA, the certificate for the server's address: Caddy's containers reach it by
address, as they have no name for it); the certificates it issues chain to a root pebble makes
each time it starts ("Pebble Root CA ...", "Pebble Intermediate CA ...").
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

PORT = 14000
CONFIG = "/etc/pebble/sandbox.json"
UNIT = "sbx-pebble.service"


def url(ip: str) -> str:
    """pebble's ACME directory at `ip`."""
    return f"https://{ip}:{PORT}/dir"


def settings(state: dict) -> dict:
    """The host data that sends a sandbox server's Caddy to the sandbox's ACME CA ({} without one)."""
    acme = state.get("services", {}).get("acme")
    if not acme:  # none, or its set-up failed (sandbox/core.py said so)
        return {}
    return {"caddy_acme_ca": acme["url"], "caddy_acme_ca_root": Path(acme["root"]).read_text()}


def _files(ca: str, cert: str, key: str) -> dict[str, str]:
    config = {"pebble": {"listenAddress": f"0.0.0.0:{PORT}", "managementListenAddress": "127.0.0.1:15000",
                         "certificate": "/etc/pebble/https.pem", "privateKey": "/etc/pebble/https-key.pem",
                         "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
                         "externalAccountBindingRequired": False}}
    unit = ("[Unit]\nDescription=pebble, the sandbox's ACME CA (Let's Encrypt's test server)\n"
            "After=network-online.target\n\n[Service]\n"
            # every challenge valid (no DNS here), no artificial delays, no nonce rejected at random
            "Environment=PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0\n"
            f"ExecStart=/usr/bin/pebble -config {CONFIG}\nRestart=on-failure\n\n"
            "[Install]\nWantedBy=multi-user.target\n")
    return {CONFIG: json.dumps(config, indent=2) + "\n", "/etc/pebble/https.pem": cert, "/etc/pebble/sandbox-ca.pem": ca,
            "/etc/pebble/https-key.pem": key, f"/etc/systemd/system/{UNIT}": unit}


def set_up(ssh_args: list[str], h: dict, certs: dict) -> dict:
    """Install and start pebble on the server `h` (reached with `ssh_args`), its HTTPS over `certs`
    (sandbox/receivers.make_certs: for the server's address); the record hosts.json keeps: the
    directory URL and the root of pebble's HTTPS."""
    script = "set -e\numask 077\ninstall -d -m 755 /etc/pebble\n"
    pems = (Path(certs[k]).read_text() for k in ("ca", "cert", "key"))
    for path, text in _files(*pems).items():  # umask 077: the key is never readable by others
        mode = "600" if path.endswith("-key.pem") else "644"
        script += f"cat > {path} <<'SBX_EOF'\n{text.rstrip()}\nSBX_EOF\nchmod {mode} {path}\n"
    script += ("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble >/dev/null "
               "|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
               "--no-install-recommends pebble >/dev/null; }\n"
               f"systemctl daemon-reload\nsystemctl enable --now -q {UNIT}\n")
    r = subprocess.run(ssh_args + ["bash", "-s"], input=script, text=True, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"pebble on {h['name']}: {(r.stderr or r.stdout).strip()[-500:]}")
    directory = url(h["private_ip"])
    deadline = time.time() + 60
    while True:  # pebble answers its directory, over the sandbox CA's certificate for its address
        r = subprocess.run(ssh_args + ["curl", "-sf", "-m", "5", "--cacert", "/etc/pebble/sandbox-ca.pem", "-o",
                                       "/dev/null", directory], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            break
        if time.time() > deadline:
            raise RuntimeError(f"pebble on {h['name']} does not answer {directory} "
                               f"(journalctl -u {UNIT} there)")
        time.sleep(0.3)
    return {"url": directory, "root": certs["ca"]}
