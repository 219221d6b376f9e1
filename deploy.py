"""`pyinfra inventory.py deploy.py`: bare Debian 12 -> production n8n host. Safe to re-run:
a second run reports zero changes."""

from tasks.base import base
from tasks.docker import docker
from tasks.n8n import n8n_stack

base()
docker()
n8n_stack()
