"""Base system: packages, timezone, unattended security upgrades, SSH hardening, firewall."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from mottivme_host import firewall
from tasks import access, scaling, settings


@deploy("Base system")
def base():
    b = settings.Base.from_data(host.data)
    apt.update(name="apt: refresh package lists (at most hourly)", cache_time=3600)
    apt.packages(name="apt: base packages", packages=b.packages, no_recommends=True)

    zone = b.timezone
    tz = files.link(name=f"timezone: {zone}", path="/etc/localtime", target=f"/usr/share/zoneinfo/{zone}")
    files.put(name="timezone: /etc/timezone", src=_text(zone + "\n"), dest="/etc/timezone")
    # cron reads the timezone when it starts: the backup schedule is in the server's timezone
    systemd.service(name="timezone: restart cron (timezone changed)", service="cron.service", restarted=True,
                    _if=tz.did_change)

    files.template(name="unattended security upgrades", src="templates/20auto-upgrades.j2",
                   dest="/etc/apt/apt.conf.d/20auto-upgrades")

    # sshd keeps the FIRST value it reads, and reads the drop-ins in name order: 00- comes before
    # anything an image brings (cloud-init's 50-cloud-init.conf enables passwords, for one)
    sshd = files.template(name="ssh: keys only, no passwords", src="templates/sshd-hardening.conf.j2",
                          dest="/etc/ssh/sshd_config.d/00-mottivme.conf", mode="644")
    old = files.file(name="ssh: the earlier drop-in (50-mottivme.conf) is gone",
                     path="/etc/ssh/sshd_config.d/50-mottivme.conf", present=False)
    server.shell(name="ssh: check and reload sshd", commands=["sshd -t", "systemctl reload ssh"],
                 _if=any_changed(sshd, old))
    if b.people:
        access.refuse_problems(b.people)  # also what --data people=... gives, after the inventory's check
        present, absent = access.wanted(b.people)
        access.authorized_keys(name=f"ssh: people's keys ({len(present)} present, {len(absent)} absent)",
                               user=b.ssh_user or "root", present=present, absent=absent)

    files.directory(name="firewall: /etc/mottivme", path="/etc/mottivme", mode="700")
    ports = firewall_ports(b, host.groups, settings.Backup.from_data(host.data))
    bridge, brokers = runners_firewall(host.data, host.groups)
    rules = files.put(name=f"firewall: rules (inbound only {'/'.join(map(str, ports))})",
                      src=_text(firewall.ruleset(ports, bridge, brokers)), dest="/etc/mottivme/firewall.nft",
                      mode="644")
    unit = files.template(name="firewall: systemd unit", src="templates/mottivme-firewall.service.j2",
                          dest="/etc/systemd/system/mottivme-firewall.service", mode="644")
    systemd.daemon_reload(name="firewall: systemd reload (unit changed)", _if=unit.did_change)
    systemd.service(name="firewall: enabled and loaded", service="mottivme-firewall.service",
                    running=True, enabled=True)
    systemd.service(name="firewall: reload rules (changed)", service="mottivme-firewall.service",
                    reloaded=True, _if=any_changed(rules, unit))


def runners_firewall(data, groups) -> tuple[str, list[int]]:
    """The task runners' bridge on an n8n server (external mode; "" elsewhere) and the host ports
    its containers may reach: a worker server's task brokers, one per worker (5700 + N)."""
    st = settings.Stack.from_data(data)
    if not st.external_runners or not {"n8n_servers", "n8n_workers"} & set(groups):
        return "", []
    s = scaling.settings(data)
    workers = s.server_workers if "n8n_workers" in groups and s.queue_mode else 0
    return st.runners_bridge, [5700 + i for i in range(1, workers + 1)]


def firewall_ports(b: settings.Base, groups, bk: settings.Backup) -> list[int]:
    """The TCP ports open to the world: group_data's, and on the vault its REST server's (the n8n
    servers' backups arrive there: TLS, an account each)."""
    return list(b.firewall_open_tcp_ports) + ([bk.vault_port] if "backup_vault" in groups else [])


def _text(s: str):
    from io import StringIO

    return StringIO(s)
