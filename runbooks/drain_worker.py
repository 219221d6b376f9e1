"""Take worker servers out of service without losing an execution (queue mode):

    pyinfra inventory.py runbooks/drain_worker.py --limit worker2.example.com

On each worker server it runs against: its workers stop taking executions, finish the running
ones (up to group_data n8n_worker_drain_seconds) and stop; executions still queued stay in Redis
for the other workers; its tunnel to the main server is closed. Then remove the server from
N8N_WORKER_SERVERS. Without --limit it drains every worker server (executions then wait in
Redis until a worker comes back: `pyinfra inventory.py deploy.py` starts them again).
See docs/runbooks/drain_worker.md."""

from pyinfra import host
from pyinfra.operations import systemd

from tasks.workers import drain

RUNS_ON = ["n8n_workers"]  # its groups (the console runs it on these only)
OPTIONS: dict = {}  # none (inventory.py refuses any --data key that is not a group_data one)

if "n8n_workers" in host.groups:
    drain()
    systemd.service(name="workers: close the tunnel", service="n8n-tunnel.service", running=False)
