"""The floor for bench/converge.py: a pyinfra deploy that gathers, on each host, exactly the facts
a no-op run of deploy.py gathered there (recorded by bench/record_facts.py in MOTTIVME_FACTS_FILE)
and runs no operation."""

import importlib
import json
import os

from pyinfra import host

with open(os.environ["MOTTIVME_FACTS_FILE"]) as f:
    _facts = json.load(f).get(host.name, [])

for module, name, args, kwargs in _facts:
    if args is None:  # recorded with a value JSON could not hold
        continue
    host.get_fact(getattr(importlib.import_module(module), name), *args, **kwargs)
