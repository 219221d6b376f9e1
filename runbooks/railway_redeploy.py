"""Redeploy the Railway service (SOP 05, "Cenário Railway fora do ar"), and wait until it runs again:

    python -m runbooks.railway_redeploy [--timeout 900]

Through Railway's public GraphQL API (RAILWAY_API_URL, default https://backboard.railway.com/graphql/v2)
with RAILWAY_TOKEN, for RAILWAY_SERVICE_ID in RAILWAY_ENVIRONMENT_ID (.env):
1. the service's latest deployment and its status;
2. `serviceInstanceRedeploy`: Railway builds and deploys the service's latest deployment again;
3. waits for the new deployment: SUCCESS ends it (then RAILWAY_HEALTH_URL, when set, must answer
   200); FAILED, CRASHED or the timeout end it with exit 1 and the deployment's id for Railway's logs.
Exit 2: a variable missing or malformed (nothing was asked); 3: Railway refused the token or the
request. It never prints the token. Unlike the pyinfra runbooks it is a program: it talks to
Railway, not to the servers. Tell the clients after 30 minutes down: `mottivme incident`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks import config, variables  # noqa: E402

# its options, as data (read by the `mottivme` console too): name -> (default, pattern, explanation)
OPTIONS = {
    "timeout": ("900", r"[1-9][0-9]{0,4}", "seconds to wait for the new deployment to succeed (default 900)"),
}
API = "https://backboard.railway.com/graphql/v2"
NEEDED = ("RAILWAY_TOKEN", "RAILWAY_SERVICE_ID", "RAILWAY_ENVIRONMENT_ID")
DONE_BAD = {"FAILED", "CRASHED", "REMOVED", "SKIPPED"}
LATEST = """query latest($serviceId: String!, $environmentId: String!) {
  deployments(first: 1, input: {serviceId: $serviceId, environmentId: $environmentId}) {
    edges { node { id status createdAt } }
  }
}"""
REDEPLOY = """mutation redeploy($serviceId: String!, $environmentId: String!) {
  serviceInstanceRedeploy(serviceId: $serviceId, environmentId: $environmentId)
}"""


class Refused(Exception):
    """Railway answered with an error (GraphQL's `errors`, or an HTTP status)."""


class Railway:
    def __init__(self, url: str, token: str, service: str, environment: str, timeout: float = 30):
        import requests

        self.http, self.url, self.timeout = requests.Session(), url, timeout
        self.http.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self.ids = {"serviceId": service, "environmentId": environment}

    def ask(self, query: str) -> dict:
        r = self.http.post(self.url, json={"query": query, "variables": self.ids}, timeout=self.timeout)
        try:
            body = r.json()
        except ValueError:
            raise Refused(f"HTTP {r.status_code} without a JSON answer") from None
        if body.get("errors"):
            raise Refused("; ".join(e.get("message", "?") for e in body["errors"]))
        if r.status_code != 200 or "data" not in body:
            raise Refused(f"HTTP {r.status_code}")
        return body["data"]

    def latest(self) -> dict | None:
        edges = self.ask(LATEST)["deployments"]["edges"]
        return edges[0]["node"] if edges else None

    def redeploy(self) -> None:
        if self.ask(REDEPLOY).get("serviceInstanceRedeploy") is not True:
            raise Refused("serviceInstanceRedeploy did not answer true")


def problems(env) -> list[str]:
    """The variables this runbook needs, as the deploy checks them (tasks/variables.py)."""
    out = [f"{name} is not set: {variables.BY_NAME[name].fix}, then put it in .env (see .env.example)"
           for name in NEEDED if not env.get(name)]
    checked = [p for p in variables.problems(env, {}) if p.startswith("RAILWAY_")]
    return out + [p for p in checked if p not in out]


def healthy(url: str, timeout: float) -> bool:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return True
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(2)


def main(argv: list[str] | None = None, poll: float = 5) -> int:
    p = argparse.ArgumentParser(prog="python -m runbooks.railway_redeploy", description=__doc__.split("\n")[0])
    p.add_argument("--timeout", type=int, default=int(OPTIONS["timeout"][0]))
    a = p.parse_args(argv)
    config.load_env()
    found = problems(os.environ)
    if found:
        print("railway-redeploy: cannot start, nothing was asked of Railway:", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    rw = Railway(os.environ.get("RAILWAY_API_URL") or API, os.environ["RAILWAY_TOKEN"],
                 os.environ["RAILWAY_SERVICE_ID"], os.environ["RAILWAY_ENVIRONMENT_ID"])
    try:
        before = rw.latest()
        print(f"railway-redeploy: latest deployment {before['id']}: {before['status']}" if before
              else "railway-redeploy: the service has no deployment yet", flush=True)
        rw.redeploy()
        print("railway-redeploy: redeploy asked (serviceInstanceRedeploy)", flush=True)
        deadline = time.monotonic() + a.timeout
        status, new = "", None
        while time.monotonic() < deadline:
            new = rw.latest()
            if new and (before is None or new["id"] != before["id"]):
                if new["status"] != status:
                    status = new["status"]
                    print(f"railway-redeploy: deployment {new['id']}: {status} "
                          f"({time.monotonic() - t0:.0f} s)", flush=True)
                if status == "SUCCESS" or status in DONE_BAD:
                    break
            time.sleep(poll)
    except Refused as e:
        print(f"railway-redeploy: FAILED Railway refused it: {e} (is RAILWAY_TOKEN a token of the service's "
              "workspace, with RAILWAY_SERVICE_ID and RAILWAY_ENVIRONMENT_ID from its URL?)", file=sys.stderr)
        return 3
    except Exception as e:  # noqa: BLE001 - the network: one line, never a traceback
        print(f"railway-redeploy: FAILED cannot reach Railway's API: {e.__class__.__name__}", file=sys.stderr)
        return 3
    if status != "SUCCESS":
        why = (f"ended {status}" if status in DONE_BAD
               else f"did not finish within {a.timeout} s" + (f" (still {status})" if status else ""))
        which = f"deployment {new['id']}" if new and before and new["id"] != before["id"] else "the new deployment"
        print(f"railway-redeploy: FAILED {which} {why}: its build and deploy logs are in Railway's dashboard",
              file=sys.stderr)
        return 1
    health = os.environ.get("RAILWAY_HEALTH_URL", "")
    if health and not healthy(health, min(120, a.timeout)):
        print(f"railway-redeploy: FAILED deployed, but {health} does not answer 200", file=sys.stderr)
        return 1
    print(f"railway-redeploy: ok: running again in {time.monotonic() - t0:.0f} s"
          + (f", {health} answers 200" if health else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
