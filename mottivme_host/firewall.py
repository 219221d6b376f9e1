"""The host firewall's ruleset: nftables' table inet mottivme_fw (mottivme-firewall.service loads it
with `nft -f`). Only this table is touched, so Docker's own rules stay as they are.

ruleset() is pure (tests/unit/mottivme_host/test_firewall.py); the deploy writes its text to
/etc/mottivme/firewall.nft (tasks/base.py).
"""

from __future__ import annotations

import re

BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # a Linux interface name

HEAD = """#!/usr/sbin/nft -f
# Managed by mottivme-infra (mottivme_host/firewall.py). Only this table is touched, so Docker's
# own rules stay as they are (no `flush ruleset`).
table inet mottivme_fw
delete table inet mottivme_fw

table inet mottivme_fw {
\t# a packet for 127.0.0.0/8 or ::1 that did not come from this host: dropped before Docker's
\t# DNAT would send it on to a port published on loopback (tiers ouro/platina publish Redis and
\t# PostgreSQL on 127.0.0.1 for the worker tunnel; the kernel only refuses such a packet after NAT)
\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\tiifname != "lo" ip daddr 127.0.0.0/8 drop
\t\tiifname != "lo" ip6 daddr ::1 drop
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tiifname "lo" accept
"""


def _ports(ports) -> str:
    if not ports or any(isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536 for p in ports):
        raise ValueError(f"firewall: TCP ports must be numbers 1-65535, not {list(ports)!r}")
    return ", ".join(map(str, ports))


def ruleset(open_tcp_ports, runners_bridge: str = "", broker_ports=()) -> str:
    """The table: inbound only `open_tcp_ports` (and what this host itself opened); with
    `runners_bridge` (the task runners' network), nothing of this host from it but `broker_ports`,
    and nothing beyond it."""
    if runners_bridge and not BRIDGE.fullmatch(runners_bridge):
        raise ValueError(f"firewall: {runners_bridge!r} is not an interface name")
    out = [HEAD]
    if runners_bridge:
        out.append("\t\t# the task runners' network: nothing of this host"
                   + (" but the workers' task brokers" if broker_ports else "") + "\n")
        if broker_ports:
            out.append(f'\t\tiifname "{runners_bridge}" tcp dport {{ {_ports(broker_ports)} }} accept\n')
        out.append(f'\t\tiifname "{runners_bridge}" drop\n')
    out.append("\t\t# containers of the stack talking to the host (DNS, gateway)\n"
               '\t\tiifname "docker0" accept\n'
               '\t\tiifname "br-*" accept\n'
               "\t\tmeta l4proto { icmp, ipv6-icmp } accept\n"
               f"\t\ttcp dport {{ {_ports(open_tcp_ports)} }} accept\n"
               "\t}\n")
    if runners_bridge:
        out.append("\n\t# the task runners reach nothing beyond their network: no other server, no Internet\n"
                   "\tchain forward {\n"
                   "\t\ttype filter hook forward priority filter; policy accept;\n"
                   f'\t\tiifname "{runners_bridge}" oifname != "{runners_bridge}" drop\n'
                   "\t}\n")
    out.append("}\n")
    return "".join(out)
