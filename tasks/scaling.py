"""SOP 05's traffic tiers as n8n queue-mode settings (group_data `n8n_tier`, `n8n_tiers`).

`settings(data)` turns the tier (and any direct override) into what the stacks need; the compose
templates, the worker servers' deploy (tasks/workers.py) and the runbooks all read it, so one value
in group_data moves the whole installation between tiers.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

WORKER_PREFIX = "n8n-worker-"  # a queue worker's compose service: n8n-worker-1, n8n-worker-2, ...


def worker_services(count: int) -> list[str]:
    return [f"{WORKER_PREFIX}{i}" for i in range(1, count + 1)]


def is_worker(service: str) -> bool:
    """A queue worker's compose service (not its runners', `n8n-worker-1-runners`)."""
    return service.startswith(WORKER_PREFIX) and service.removeprefix(WORKER_PREFIX).isdigit()


@dataclass(frozen=True)
class Scaling:
    tier: str
    queue_mode: bool
    main_workers: int  # worker processes on the main server
    server_workers: int  # worker processes on each n8n_workers server
    webhook_processors: int  # on the main server (platina)
    concurrency: int
    leads_per_day: int | None = None  # the tier's upper bound (SOP 05's table); None: none

    @property
    def main_services(self) -> list[str]:
        """n8n's compose services on the main server, main process first."""
        return ["n8n"] + worker_services(self.main_workers) + self.webhook_services

    @property
    def webhook_services(self) -> list[str]:
        """The webhook processors' compose services (Caddy spreads /webhook/ over them)."""
        return [f"n8n-webhook-{i}" for i in range(1, self.webhook_processors + 1)]

    @property
    def server_services(self) -> list[str]:
        return worker_services(self.server_workers)

    @property
    def executing_services(self) -> list[str]:
        """The main server's n8n services that run executions (and so Code nodes): the main process,
        or in queue mode its workers (manual executions go to the workers too)."""
        return [x for x in self.main_services if is_worker(x)] if self.queue_mode else ["n8n"]


def runners_of(services: list[str]) -> list[str]:
    """The task runners' compose services (external mode): one beside each n8n process that runs code."""
    return [f"{x}-runners" for x in services]


class ScalingError(Exception):
    pass


def settings(data) -> Scaling:
    """The effective scaling of `data` (pyinfra host data, or any mapping with attribute access)."""
    get = data.get if hasattr(data, "get") else (lambda k, d=None: getattr(data, k, d))
    tier = get("n8n_tier")
    tiers = get("n8n_tiers")
    if tier not in tiers:
        raise ScalingError(f"n8n_tier={tier!r} is not a tier: choose one of {', '.join(tiers)} (group_data/all.py)")
    base = tiers[tier]

    def pick(key: str, override: str):
        value = get(override)
        return base[key] if value is None else value

    s = Scaling(tier=tier, queue_mode=bool(pick("queue_mode", "n8n_queue_mode")),
                main_workers=int(pick("main_workers", "n8n_main_workers")),
                server_workers=int(pick("server_workers", "n8n_server_workers")),
                webhook_processors=int(pick("webhook_processors", "n8n_webhook_processors")),
                concurrency=int(get("n8n_worker_concurrency")), leads_per_day=base.get("leads_per_day"))
    if not s.queue_mode and (s.main_workers or s.server_workers or s.webhook_processors):
        raise ScalingError(f"tier {tier}: workers and webhook processors need queue mode (n8n_queue_mode)")
    return s


def check(s: Scaling, worker_servers: int, env=None) -> list[str]:
    """Problems that would leave executions with nobody to run them, or a secret missing."""
    env = os.environ if env is None else env
    problems = []
    if s.queue_mode and not (s.main_workers or (s.server_workers and worker_servers)):
        problems.append(f"tier {s.tier} runs its workers on the n8n_workers servers, but the inventory has none: "
                        "add them (N8N_WORKER_SERVERS in .env) or choose a tier with workers on the main server "
                        "(prata)")
    if s.queue_mode and not env.get("REDIS_PASSWORD"):
        problems.append(f"REDIS_PASSWORD is not set but tier {s.tier} uses Redis: generate it with "
                        "`openssl rand -hex 24` and put it in .env")
    return problems


def refuse_if_unfit(s: Scaling, worker_servers: int) -> None:
    """Stop the deploy before any operation runs when the tier cannot work (exit 2)."""
    problems = check(s, worker_servers)
    if problems:
        print("mottivme-infra: cannot deploy this tier, nothing was changed:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(2)
