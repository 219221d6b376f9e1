"""`mottivme`: the on-call console. Every runbook, the deploy and the SOP's hands-on commands, with
task listing, per-command help and strict options (Fabric's Invoke core).

    mottivme                          list every command with its purpose
    mottivme restore --help           its options, their defaults, an example
    mottivme restore --snapshot 3e123456 --from offsite

Runbooks run as `python -m pyinfra -y inventory.py runbooks/NAME.py --data k=v ...` with this very
interpreter (any virtualenv), from the repository root; values reach them exactly as typed.
"""

from __future__ import annotations

import difflib
import inspect
import keyword
import os
import re
import signal
import subprocess
import sys

from invoke import Collection, Program, Task
from invoke.exceptions import Exit, ParseError

from mottivme_console import catalog, remote

ROOT = catalog.ROOT
PYINFRA = [sys.executable, "-m", "pyinfra"]
ENV = dict(os.environ)  # what the commands it runs get: the caller's environment, not what reading the inventory added


def run(argv: list[str]) -> None:
    """Run a command from the repository root, in the foreground (Ctrl-C reaches it too and it
    finishes its own clean-up); a failure ends the console with the same exit status."""
    p = subprocess.Popen(argv, cwd=ROOT, env=ENV)
    while True:
        try:
            rc = p.wait()
            break
        except KeyboardInterrupt:
            continue  # the child got the same Ctrl-C: wait for it to clean up and exit
    if rc:
        raise Exit(code=rc)


def _param(name: str, default) -> inspect.Parameter:
    return inspect.Parameter(name + "_" if keyword.iskeyword(name) else name,
                             inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)


def _task(name: str, doc: str, options: dict, body, extra: dict | None = None, positional=()) -> Task:
    """An Invoke task `name` whose options are `options` (name -> (default, pattern, explanation))
    plus `extra` (name -> (default, help)); `body(given)` gets the options the user gave, as typed."""
    extra = extra or {}
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    helps = {}
    for opt, (default, _pattern, explain) in options.items():
        params.append(_param(opt, False if default is False else None))
        shown = f" (default: {default})" if default not in ("", False) else ""
        helps[params[-1].name] = explain + shown
    for opt, (default, text) in extra.items():
        params.append(_param(opt, default))
        helps[params[-1].name] = text

    def call(c, **kw):
        given = {k.rstrip("_"): v for k, v in kw.items() if v not in (None, False)}
        for opt, value in given.items():  # the runbook checks again; here it costs no inventory load
            if opt in options and options[opt][1] and not re.fullmatch(options[opt][1], value):
                raise Exit(f"mottivme {name}: --{opt.replace('_', '-')} {value!r} is not valid: "
                           f"{options[opt][2]}", code=2)
        body(given)

    call.__signature__ = inspect.Signature(params)
    call.__doc__ = doc
    return Task(call, name=name, help=helps, auto_shortflags=False, positional=list(positional))


def _example(command: str, options: dict) -> str:
    for opt, (default, _pattern, _explain) in options.items():
        flag = "--" + opt.replace("_", "-")
        if default is False:
            return f"mottivme {command} {flag}"
        return f"mottivme {command} {flag} {default or '...'}"
    return f"mottivme {command}"


def runbook_task(rb: catalog.Runbook) -> Task:
    doc = f"{rb.summary}.\n\n{rb.doc.strip()}\n\nExample: {_example(rb.command, rb.options)}"
    if rb.is_program:
        def body(given):
            args = []
            for k, v in given.items():
                args += ["--" + k.replace("_", "-")] + ([] if v is True else [v])
            run([sys.executable, "-m", f"runbooks.{rb.name}", *args])

        return _task(rb.command, doc, rb.options, body)

    def body(given):
        limit = given.pop("limit", None)
        argv = [*PYINFRA, "-y", "inventory.py", f"runbooks/{rb.name}.py"]
        for target in [limit] if limit else remote.targets(rb.runs_on):
            argv += ["--limit", target]
        for k, v in given.items():
            argv += ["--data", f"{k}={v}"]
        run(argv)

    return _task(rb.command, doc, rb.options, body,
                 extra={"limit": (None, "only these hosts or groups (pyinfra's --limit; default: the hosts of "
                                        f"{', '.join(rb.runs_on)})")})


def deploy_task() -> Task:
    def body(given):
        argv = [*PYINFRA, "inventory.py", "deploy.py"]
        argv += ["-y"] if given.get("yes") else []
        argv += ["--dry"] if given.get("dry") else []
        argv += ["--limit", given["limit"]] if given.get("limit") else []
        run(argv)

    doc = ("Converge every server to the configuration (deploy.py): shows the changes and asks first.\n\n"
           "Safe to re-run; a second run changes nothing.\n\nExample: mottivme deploy --dry")
    return _task("deploy", doc, {}, body, extra={
        "dry": (False, "show what would change, change nothing"),
        "limit": (None, "only these hosts or groups"),
        "yes": (False, "do not ask before changing (scripts)"),
    })


def server_tasks() -> list[Task]:
    """The SOP's hands-on commands, on the servers (mottivme_console/remote.py)."""
    server = {"server": (None, "the server (default: the only n8n server)")}
    return [
        _task("ssh", "A shell on a server (or one command on it).\n\nExample: mottivme ssh n8n1.example.com",
              {}, lambda g: remote.ssh(g.get("server"), g.get("command")), positional=["server"],
              extra={"server": (None, "the server's inventory name (default: the only n8n server)"),
                     "command": (None, "run this command instead of a shell")}),
        _task("logs", "Follow or read a service's logs (SOP 05: `docker-compose logs -f n8n`).\n\n"
                      "Example: mottivme logs n8n --follow",
              {}, lambda g: remote.logs(g.get("service") or "n8n", bool(g.get("follow")), g.get("tail") or "100",
                                        g.get("server")), positional=["service"],
              extra={"service": (None, "n8n (default), postgres, caddy, redis, n8n-worker-1, ..."),
                     "follow": (False, "keep printing new lines (Ctrl-C ends it)"),
                     "tail": (None, "lines of history first (default: 100; all for everything)"), **server}),
        _task("psql", "A psql shell on n8n's database or a backup source's (supabase); no password on any "
                      "command line.\n\nExample: mottivme psql supabase --command 'select count(*) from rag_documents'",
              {}, lambda g: remote.psql(g.get("database") or "", g.get("command"), g.get("server")),
              positional=["database"],
              extra={"database": (None, "n8n or supabase (any database backup source)"),
                     "command": (None, "run this SQL and exit"), **server}),
        _task("status", "Every server at a glance: n8n version, containers, last backup, disk (! = needs "
                        "attention).\n\nExample: mottivme status", {}, lambda g: remote.status()),
    ]


def namespace() -> Collection:
    ns = Collection()
    ns.add_task(deploy_task())
    for t in server_tasks():
        ns.add_task(t)
    for rb in catalog.runbooks():
        ns.add_task(runbook_task(rb))
    return ns


class Console(Program):
    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as e:
            raise ParseError(self._one_line(e), e.context) from None

    def parse_core(self, argv) -> None:
        try:
            super().parse_core(argv)
        except ParseError as e:
            raise ParseError(self._one_line(e), e.context) from None

    def _one_line(self, e: ParseError) -> str:
        """Invoke's message, plus the fix: the nearest option or command, and where the list is."""
        msg = str(e)
        ctx = e.context
        where = f"`mottivme {ctx.name} --help` lists its options" if ctx and ctx.name else "`mottivme` lists the commands"
        word = msg.split("'")[1] if msg.count("'") >= 2 else ""
        if ctx and ctx.name and word.startswith("-"):
            flags = [f for f in ctx.flags if f.startswith("--")]
            close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
            if close:
                return f"mottivme: {msg} Did you mean {close[0]}? {where}"
        elif word:
            close = difflib.get_close_matches(word, list(self.collection.task_names), n=1)
            if close:
                return f"mottivme: {msg} Did you mean {close[0]}? {where}"
        return f"mottivme: {msg} {where}"


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mottivme | head`: end quietly, like any CLI
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 1:
        argv.append("--list")
    elif len(argv) > 2 and not argv[1].startswith("-") and {"--help", "-h"} & set(argv[2:]):
        argv = [argv[0], "--help", argv[1]]  # `mottivme psql --help`: a positional would take "--help" as its value
    try:
        ns = namespace()
    except catalog.CatalogError as e:
        sys.exit(f"mottivme: {e}")
    _refuse_unknown_flags(ns, argv)
    Console(name="mottivme", binary="mottivme", namespace=ns, version="0.1.0").run(argv)


def _refuse_unknown_flags(ns: Collection, argv: list[str]) -> None:
    """An unknown --flag, before Invoke's parser sees it (a command with a positional argument
    would take the misspelled flag as that argument's value)."""
    if len(argv) < 3 or argv[1] not in ns.task_names:
        return
    known = {"--" + n for a in ns[argv[1]].get_arguments() for n in a.names}
    for token in argv[2:]:
        flag = token.split("=")[0]
        if flag.startswith("--") and flag not in known | {"--help"}:
            close = difflib.get_close_matches(flag, sorted(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            print(f"mottivme: No idea what '{flag}' is!{hint} `mottivme {argv[1]} --help` lists its options",
                  file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
