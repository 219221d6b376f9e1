"""docs/architecture.md (SOP 05's infrastructure diagram) against the code: its servers table is the
group registry's, its ports the firewall's, every variable it names is in the registry."""

import re

from tasks import groupdata, settings, variables
from tasks import groups as group_registry
from tasks.base import firewall_ports
from tests.helpers import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()


def servers_table() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| `([A-Z0-9_]+)` \| [^|]+ \| ([0-9, ]+) \|$", DOC, re.M)
    return {g: (var, ports) for g, var, ports in rows}


def test_every_group_is_in_the_servers_table_with_its_variable_and_open_ports():
    table = servers_table()
    assert list(table) == list(group_registry.NAMES)
    for g in group_registry.GROUPS:
        data = groupdata.load(g.name)
        ports = firewall_ports(settings.Base.from_data(data), [g.name], settings.Backup.from_data(data))
        assert table[g.name] == (g.variable, ", ".join(map(str, ports))), g.name


def test_every_variable_the_page_names_is_registered():
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", DOC))
    assert named, "the page names its credentials"
    assert named <= {v.name for v in variables.VARIABLES}, named - {v.name for v in variables.VARIABLES}
