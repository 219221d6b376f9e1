"""Incident runbooks on the sandbox's n8n server."""

import re

from tests.conftest import run_pyinfra
from tests.integration.conftest import N8nClient


def test_restart_measures_unavailability_and_n8n_is_back(n8n_server, sandbox_env, first_deploy):
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"unavailable for ([0-9.]+)s \(restart \+ readiness took ([0-9.]+)s\)", out)
    assert m, out[-3000:]
    assert 0 < float(m.group(1)) <= float(m.group(2))
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200


def test_restart_with_a_broken_configuration_fails_with_the_containers_log(n8n_server, sandbox_env, first_deploy):
    config = "docker exec n8n_n8n_1 sh -c"
    n8n_server.sh(f"{config} 'cp /home/node/.n8n/config /home/node/.n8n/config.keep && echo \"{{not json\" > /home/node/.n8n/config'")
    try:
        r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py", "--data", "timeout=25"], sandbox_env)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert "not ready 25s after the restart" in out and "Last log lines" in out
        assert re.search(r"config|JSON|Unexpected token", out.split("Last log lines", 1)[1])
    finally:
        n8n_server.sh("docker run --rm -v n8n_n8n_data:/d --entrypoint sh " +
                      "docker.n8n.io/n8nio/n8n:2.41.1 -c 'mv /d/config.keep /d/config'")
    r = run_pyinfra(["-y", "inventory.py", "runbooks/restart_n8n.py"], sandbox_env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert N8nClient(n8n_server.url).request("GET", "healthz/readiness")[0] == 200
