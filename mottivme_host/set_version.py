"""Set the n8n version of this server's stack (N8N_VERSION in its env file), and nothing else.

mottivme-host set-version VERSION

The compose file runs `<image repo>:${N8N_VERSION}`: the next `compose up -d` of the stack
applies the version. Worker servers use it to follow the main server's version (after an
emergency deploy) before their workers are started again. No container is touched here.
"""

from __future__ import annotations

import argparse
import os

from . import envfile
from .common import Fail, out_line
from .deploy_version import env_path, valid_version
from .run import Runner
from .settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("version", metavar="VERSION", help="the n8n version, like 2.41.1")


def main(ns, s: Settings, runner: Runner) -> int:
    version = ns.version
    if not valid_version(version):
        raise Fail(f"the version must look like 2.41.1, not '{version}'", 2)
    path = env_path(s)
    if not os.path.isfile(path):
        raise Fail(f"no {path}: there is no n8n stack here; provision it with deploy.py first", 4)
    old = envfile.read(path).get("N8N_VERSION", "").strip()
    if old == version:
        out_line(f"n8n version already {version} in {path}")
        return 0
    envfile.update(path, {"N8N_VERSION": version})
    out_line(f"n8n version set to {version} in {path} (was {old or 'not set'}); `compose up -d` applies it")
    return 0

