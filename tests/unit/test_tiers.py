"""SOP 05's tiers become queue-mode settings; a tier that cannot run is refused."""

import pytest

from mottivme_host import settings as host_settings
from tasks import hostprograms, scaling, settings
from tasks.groupdata import Data
from tasks.groupdata import load as group_data
from tests.helpers import images_lock


def tier(name, **over):
    return scaling.settings(Data(group_data(), n8n_tier=name, **over))


def test_tiers_from_bronze_to_platina():
    assert tier("bronze").queue_mode is False and tier("bronze").main_services == ["n8n"]
    assert tier("prata").main_services == ["n8n", "n8n-worker-1"]
    assert tier("ouro").server_services == ["n8n-worker-1", "n8n-worker-2"]
    assert tier("platina").main_services == ["n8n", "n8n-webhook-1", "n8n-webhook-2"]


def test_direct_values_win_over_the_tier():
    s = tier("ouro", n8n_server_workers=4, n8n_main_workers=1)
    assert len(s.server_services) == 4 and s.main_services == ["n8n", "n8n-worker-1"]


def test_unknown_tier_and_workers_without_queue_mode_are_refused():
    with pytest.raises(scaling.ScalingError, match="choose one of bronze, prata, ouro, platina"):
        tier("gold")
    with pytest.raises(scaling.ScalingError, match="need queue mode"):
        tier("bronze", n8n_main_workers=2)


def test_a_tier_whose_workers_have_no_server_is_refused():
    (problem,) = scaling.check(tier("ouro"), worker_servers=0, env={"REDIS_PASSWORD": "x" * 24})
    assert "N8N_WORKER_SERVERS" in problem and "prata" in problem
    assert scaling.check(tier("ouro"), worker_servers=1, env={"REDIS_PASSWORD": "x" * 24}) == []
    assert scaling.check(tier("bronze"), worker_servers=0, env={}) == []


def test_queue_mode_needs_a_redis_password():
    (problem,) = scaling.check(tier("prata"), worker_servers=0, env={})
    assert problem.startswith("REDIS_PASSWORD is not set") and "openssl rand -hex 24" in problem


def test_compose_health_fact_reads_docker_inspect_lines():
    from tasks.facts import ComposeHealth

    fact = ComposeHealth()
    assert "com.docker.compose.project=n8n-worker" in fact.command("n8n-worker")
    got = fact.process(["n8n-worker-1 healthy", "n8n-worker-2 starting", "", "garbage"])
    assert got == {"n8n-worker-1": "healthy", "n8n-worker-2": "starting"}


def test_the_restart_runbook_is_told_which_processes_sit_behind_caddy():
    """The deploy writes the processors Caddy spreads webhooks over into the host programs'
    settings: n8n-restart drains those (and only those) before restarting them."""

    st = settings.Stack.from_data(Data(group_data(), images_lock=images_lock()))
    for name, pooled in (("platina", ("n8n-webhook-1", "n8n-webhook-2")), ("ouro", ()), ("bronze", ())):
        s = tier(name)
        written = hostprograms.stack_settings(st, compose="docker compose", project="n8n", stack_dir="/opt/n8n",
                                              services=s.main_services, n8n_host="n8n.test", pooled=s.webhook_services)
        assert host_settings.from_dict(written).pooled == pooled, name
