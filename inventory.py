"""pyinfra inventory: `pyinfra inventory.py deploy.py`.

Hosts come from `.env` or the environment (N8N_SERVERS=host1,host2:2222, SSH_USER, SSH_KEY_FILE;
the groups are tasks/groups.py). With none configured, the running sandbox (`make sandbox-up`)
is the target (inventory_sources.py). Secrets are checked here, before pyinfra connects to
anything (tasks/config.py, tasks/variables.py and .env.example).
"""

from inventory_sources import choose as _choose
from runbooks._args import check_command_line as _check_runbook_input
from tasks.config import load_inventory as _load
from tasks.groups import NAMES as _NAMES

_check_runbook_input()  # a runbook's --data, before any configuration or host
_groups = _load(_choose())
# one pyinfra group per registered group (n8n_servers, n8n_workers, backup_vault, monitors), plus
# whatever else the source has (the sandbox: `sandbox` for group_data/sandbox.py, `supabase`
# for its stand-in of Supabase's database). (Names with a leading _ are not groups.)
globals().update({name: _groups.get(name, []) for name in _NAMES})
globals().update({name: hosts for name, hosts in _groups.items() if name not in _NAMES})
