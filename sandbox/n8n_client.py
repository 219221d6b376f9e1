"""n8n's REST and public API through a sandbox server's HTTPS port (Caddy, local CA): for the
integration tests, the benchmarks and seeding."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_WORKFLOW = ROOT / "sandbox" / "fixtures" / "webhook-code-workflow.json"


class N8nClient:
    """n8n's REST API through the sandbox's HTTPS port (Caddy, local CA)."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.ctx = ssl._create_unverified_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx),
                                                  urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with self.opener.open(req, timeout=60) as r:
                raw = r.read().decode()
                return r.status, (json.loads(raw) if raw.startswith(("{", "[")) else raw)
        except urllib.error.HTTPError as e:
            raw = e.read().decode()
            return e.code, (json.loads(raw) if raw.startswith(("{", "[")) else raw)


    def raw(self, method: str, path: str, data: bytes | None = None, headers=None) -> tuple[int, bytes]:
        """A request whose body and answer are bytes (a file uploaded or served)."""
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def n8n_api(n8n: N8nClient, secrets: dict) -> dict:
    """Headers for n8n's public API: the owner (`secrets`: the sandbox's secrets.env) logs in and makes an API key."""
    s = secrets
    assert n8n.request("POST", "rest/login", {"emailOrLdapLoginId": s["N8N_OWNER_EMAIL"],
                                              "password": s["N8N_OWNER_PASSWORD"]})[0] == 200
    _, scopes = n8n.request("GET", "rest/api-keys/scopes")
    _, key = n8n.request("POST", "rest/api-keys", {"label": f"itest-{time.time()}", "scopes": scopes["data"],
                                                  "expiresAt": None})
    return {"X-N8N-API-KEY": key["data"]["rawApiKey"]}


def webhook_workflow(n8n: N8nClient, api: dict, name: str, path: str, webhook_id: str, **changes) -> str:
    """Create and activate sandbox/fixtures/webhook-code-workflow.json as `name` on /webhook/<path>
    (`changes`: response_mode, code); wait until the webhook answers; return the workflow's id."""
    wf = json.loads(WEBHOOK_WORKFLOW.read_text())
    wf["name"] = name
    hook, code = wf["nodes"]
    hook["parameters"]["path"], hook["webhookId"] = path, webhook_id
    if "response_mode" in changes:
        hook["parameters"]["responseMode"] = changes["response_mode"]
    if "code" in changes:
        code["parameters"]["jsCode"] = changes["code"]
    wf_id = create_active(n8n, api, wf)
    for _ in range(60):
        if n8n.request("GET", f"webhook/{path}")[0] == 200:
            return wf_id
        time.sleep(0.5)
    raise AssertionError(f"webhook {path} never answered")


def create_active(n8n: N8nClient, api: dict, wf: dict) -> str:
    """Create the workflow `wf` through the public API and activate it; its id."""
    status, created = n8n.request("POST", "api/v1/workflows", wf, api)
    assert status == 200, created
    status, body = n8n.request("POST", f"api/v1/workflows/{created['id']}/activate", None, api)
    assert status == 200, body
    return created["id"]
