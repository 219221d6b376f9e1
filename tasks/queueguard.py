"""The queue guard on the main n8n server (mottivme_host/queue_guard.py: executions a stopping
worker took but never started go back to n8n's queue): a systemd service in queue mode, stopped
and disabled otherwise. It runs the host programs' code and reads their settings at start: a
change to either restarts it."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from tasks import settings
from tasks.hostprograms import ENTRY

UNIT = "mottivme-queue-guard.service"


@deploy("n8n queue guard")
def queue_guard(queue_mode: bool, programs):
    """`programs`: host_programs()'s operations that install the package and write its settings
    (a change restarts the guard: it reads both when it starts)."""
    st = settings.Stack.from_data(host.data)
    unit = files.template(name="queue guard: unit", src=f"templates/{UNIT}.j2", dest=f"/etc/systemd/system/{UNIT}",
                          mode="644", entry=ENTRY, seconds=st.queue_guard_seconds, grace=st.queue_guard_grace_seconds)
    systemd.daemon_reload(name="queue guard: systemd reload (unit changed)", _if=unit.did_change)
    if not queue_mode:
        systemd.service(name="queue guard: stopped (not in queue mode)", service=UNIT, running=False, enabled=False)
        return
    systemd.service(name="queue guard: running", service=UNIT, running=True, enabled=True)
    systemd.service(name="queue guard: restart (unit or host programs changed)", service=UNIT, restarted=True,
                    _if=any_changed(unit, *programs))
