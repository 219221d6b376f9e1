"""mottivme_host/firewall.py: the host firewall's nftables ruleset, as the deploy writes it."""

import pytest

from mottivme_host import firewall
from tasks import settings
from tasks.base import firewall_ports, runners_firewall
from tasks.groupdata import Data
from tests.helpers import group_data


def test_firewall_opens_only_configured_ports():
    """The ruleset the deploy writes for each kind of server (group data, tasks/base.py)."""
    d = group_data()
    b, bk = settings.Base.from_data(d), settings.Backup.from_data(d)
    def rules(groups, **data):
        bridge, brokers = runners_firewall(Data(d, **data), groups)
        return firewall.ruleset(firewall_ports(b, groups, bk), bridge, brokers)

    text = rules(["n8n_servers"])
    assert "tcp dport { 22, 80, 443 } accept" in text
    # the task runners' bridge: nothing of the host, nothing beyond it (their n8n is on the bridge)
    assert 'iifname "mottivme-run" drop' in text and "iifname \"mottivme-run\" tcp" not in text
    assert 'iifname "mottivme-run" oifname != "mottivme-run" drop' in text
    assert text.index('iifname "mottivme-run" drop') < text.index('iifname "br-*" accept')
    # a worker server: its workers' brokers, on that bridge only
    worker = rules(["n8n_workers"], n8n_tier="ouro")
    assert 'iifname "mottivme-run" tcp dport { 5701, 5702 } accept' in worker
    assert worker.index("tcp dport { 5701, 5702 }") < worker.index('iifname "mottivme-run" drop')
    # internal mode, and servers without n8n: no such bridge
    for groups, data in ((["n8n_servers"], {"n8n_runners_mode": "internal"}), (["monitors"], {})):
        assert "mottivme-run" not in rules(groups, **data) and "chain forward" not in rules(groups, **data)
    # the vault: its REST server's port too
    vault = rules(["backup_vault"])
    assert "tcp dport { 22, 80, 443, 8000 } accept" in vault
    assert "policy drop" in text
    assert not any(line.strip().startswith("flush") for line in text.splitlines())


@pytest.mark.parametrize("ports, bridge, brokers", [([], "", ()), ([22, "80"], "", ()), ([22, 70000], "", ()),
                                                    ([22], "run;drop", ()), ([22], "mottivme-run", [True])])
def test_what_is_no_port_or_interface_name_is_refused(ports, bridge, brokers):
    with pytest.raises(ValueError, match=r"^firewall: "):
        firewall.ruleset(ports, bridge, brokers)
