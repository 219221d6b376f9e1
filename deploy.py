"""`pyinfra inventory.py deploy.py`: bare Debian 12 -> production n8n host. Safe to re-run:
a second run reports zero changes. Each concern is one @deploy function in tasks/."""

from pyinfra import host

from tasks.base import base
from tasks.docker import docker
from tasks.n8n import n8n_stack

if "n8n_servers" in host.groups:
    base()
    docker()
    n8n_stack()
