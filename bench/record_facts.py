"""pyinfra deploy file for bench/converge.py: runs deploy.py unchanged and writes down every fact
it gathers on each host (MOTTIVME_FACTS_FILE, JSON), so the floor (bench/facts_only.py) gathers
exactly the same ones: the no-op / floor ratio is then the project's own cost beyond its facts."""

import atexit
import json
import os

import pyinfra.api.facts as facts
from pyinfra import host

OUT = os.environ["MOTTIVME_FACTS_FILE"]

if not getattr(facts, "_mottivme_recorded", None):
    recorded: dict[str, list] = {}
    real = facts._get_fact

    def _recording(state, h, cls, args=None, kwargs=None, *rest, **kw):
        try:
            item = [cls.__module__, cls.__name__, list(args or ()), dict(kwargs or {})]
            json.dumps(item)
        except TypeError:  # a value JSON cannot hold: the floor cannot replay it, say so
            item = [cls.__module__, cls.__name__, None, None]
        if item not in recorded.setdefault(h.name, []):
            recorded[h.name].append(item)
        return real(state, h, cls, args, kwargs, *rest, **kw)

    facts._get_fact = _recording
    facts._mottivme_recorded = recorded

    @atexit.register
    def _write():
        with open(OUT, "w") as f:
            json.dump(recorded, f, indent=1)

with open("deploy.py") as f:
    exec(compile(f.read(), "deploy.py", "exec"), {"__file__": "deploy.py", "__name__": "deploy", "host": host})
