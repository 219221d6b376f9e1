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
from runbooks import _args  # (importable: catalog put the project on sys.path)

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
        raise Exit(code=rc if rc > 0 else 128 - rc)  # killed by signal N: 128 + N, like a shell


def _param(name: str, default) -> inspect.Parameter:
    return inspect.Parameter(name + "_" if keyword.iskeyword(name) else name,
                             inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)


def _task(name: str, doc: str, options: dict, body, extra: dict | None = None) -> Task:
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
                raise Exit(f"mottivme {name}: --{opt.replace('_', '-')} {_args.mask(value)!r} is not valid: "
                           f"{options[opt][2]}", code=2)
        body(given)

    call.__signature__ = inspect.Signature(params)
    call.__doc__ = doc
    return Task(call, name=name, help=helps, auto_shortflags=False)


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
              {}, lambda g: remote.ssh(g.get("server"), g.get("command")),
              extra={"server": (None, "the server's inventory name (default: the only n8n server)"),
                     "command": (None, "run this command instead of a shell")}),
        _task("logs", "Follow or read a service's logs (SOP 05: `docker-compose logs -f n8n`).\n\n"
                      "Example: mottivme logs n8n --follow",
              {}, lambda g: remote.logs(g.get("service") or "n8n", bool(g.get("follow")), g.get("tail") or "100",
                                        g.get("server")),
              extra={"service": (None, "n8n (default), postgres, caddy, redis, n8n-worker-1, ..."),
                     "follow": (False, "keep printing new lines (Ctrl-C ends it)"),
                     "tail": (None, "lines of history first (default: 100; all for everything)"), **server}),
        _task("psql", "A psql shell on n8n's database or a backup source's (supabase); no password on any "
                      "command line.\n\nExample: mottivme psql supabase --command 'select count(*) from rag_documents'",
              {}, lambda g: remote.psql(g.get("database") or "", g.get("command"), g.get("server")),
              extra={"database": (None, "n8n or supabase (any database backup source)"),
                     "command": (None, "run this SQL and exit"), **server}),
        _task("doctor", "What is wrong, each finding with its fix: configuration, rotation, monitor and vault, DNS, "
                        "every server's containers, files, certificate, disk, memory, backups, firewall, sshd."
                        "\n\nExample: mottivme doctor --drift",
              {}, lambda g: remote.doctor(bool(g.get("drift"))),
              extra={"drift": (False, "also run a dry deploy and report what it would change (slower)")}),
        _task("access", "Who can log in where (SOP 05, Controle de Acesso): group_data `people` and every key each "
                        "server holds, by fingerprint; exit 1 while an absent person's key is still on a server."
                        "\n\nExample: mottivme access", {}, lambda g: remote.access()),
        _task("update", "SOP 05's monthly update, the report: images.lock against the registries (moved tags, "
                        "newer n8n versions), and per server the images it runs, pending Debian packages, a "
                        "required reboot; each with its next step. With --apply, n8n moves up: group data and "
                        "images.lock pin the new version (the old one kept for an emergency deploy back) and the "
                        "deploy rolls it out (snapshot first, rollback on failure, workers follow)."
                        "\n\nExample: mottivme update --apply --n8n 2.42.0",
              {"n8n": ("", r"\d+\.\d+\.\d+", "an n8n version like 2.42.0 (with --apply; default: the newest the "
                                              "registry offers)")},
              _update,
              extra={"apply": (False, "move n8n up and deploy it (the report first; nothing moves if it failed)"),
                     "reboot": (False, "then reboot the servers that need it, one at a time, each back before the "
                                       "next, in a maintenance window"),
                     "yes": (False, "do not ask before the deploy changes the servers (scripts)")}),
        _task("status", "Every server at a glance: n8n version, containers, last backup, disk (! = needs "
                        "attention).\n\nExample: mottivme status", {}, lambda g: remote.status()),
    ]


def _update(given: dict) -> None:
    if given.get("n8n") and not given.get("apply"):
        raise Exit("mottivme update: --n8n moves n8n only with --apply (the report alone: mottivme update)", 2)

    def deploy():
        try:
            run([*PYINFRA, *(["-y"] if given.get("yes") else []), "inventory.py", "deploy.py"])
        except Exit as e:
            print("mottivme update: the deploy did not finish (above: where); a server whose new n8n failed its "
                  "health gate is back on the old one. group_data and images.lock pin the new version now: fix "
                  "and `mottivme deploy`, or put those files back", file=sys.stderr)
            raise e

    def window(action: str, reason: str, timeout: int) -> bool:
        """The monitor's maintenance window for every check (False: no monitor answers, no window)."""
        monitors = [n for n, d in remote.hosts_of(remote.inventory(), "monitors") if remote.answers(n, d) is None]
        if not monitors:
            print("mottivme update: warning: no monitor answers: no maintenance window, its checks may page people "
                  "during the reboot", file=sys.stderr)
            return False
        argv = [*PYINFRA, "-y", "inventory.py", "runbooks/maintenance.py", "--data", f"action={action}",
                "--data", "checks=*"]
        if action == "start":
            argv += ["--data", f"minutes={timeout // 60 + 5}", "--data", f"reason={reason}"]
        for m in monitors:
            argv += ["--limit", m]
        run(argv)
        return True

    remote.update(bool(given.get("apply")), given.get("n8n"), deploy, bool(given.get("reboot")), window)


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
        if len(self.tasks) > 1:  # Invoke would run them one after the other: never two runbooks by accident
            names = " and ".join(t.name for t in self.tasks)
            raise ParseError(f"mottivme: one command at a time, not {names} (a stray word is read as a command)")

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
    if argv is None:  # the command itself (not a caller in-process): `mottivme | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 1:
        argv.append("--list")
    argv = _checked(argv)
    try:
        ns = namespace()
    except catalog.CatalogError as e:
        sys.exit(f"mottivme: {e}")
    _refuse_unknown_flags(ns, argv)
    Console(name="mottivme", binary="mottivme", namespace=ns, version="0.1.0").run(argv)


def _refuse_unknown_flags(ns: Collection, argv: list[str]) -> None:
    """An unknown --flag of the command, with the nearest known one (the word after an option that
    takes a value is that value, whatever it looks like)."""
    if len(argv) < 3 or argv[1] not in ns.task_names:
        return
    args = ns[argv[1]].get_arguments()
    known = {"--" + n for a in args for n in a.names}
    takes_value = {"--" + n for a in args for n in a.names if a.kind is not bool}
    skip = False
    for token in argv[2:]:
        if skip:
            skip = False
            continue
        flag = token.split("=")[0]
        if flag.startswith("--") and flag not in known | {"--help"}:
            close = difflib.get_close_matches(flag, sorted(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            _usage(f"No idea what '{flag}' is!{hint} `mottivme {argv[1]} --help` lists its options")
        skip = flag in takes_value and "=" not in token


# the one word a command may take without its flag: `mottivme ssh NAME`, `mottivme logs caddy`
BARE_WORD = {"ssh": "--server", "logs": "--service", "psql": "--database"}
# Invoke's own flags the console keeps (the others, like --dry or --echo, would silently change nothing)
CORE_FLAGS = {"--help", "-h", "--list", "-l", "--version", "-V"}


def _usage(message: str) -> None:
    print(f"mottivme: {message}", file=sys.stderr)
    sys.exit(2)


def _checked(argv: list[str]) -> list[str]:
    """Only the console's own flags before the command; `--help` after it is the command's help;
    a command's one bare word becomes its flag."""
    i = next((k for k, a in enumerate(argv[1:], 1) if not a.startswith("-")), len(argv))
    for flag in argv[1:i]:
        if flag not in CORE_FLAGS:
            _usage(f"{flag} is not an option of mottivme itself: options go after the command "
                   "(`mottivme COMMAND --help` lists them)")
    if i == len(argv):
        return argv
    command, rest = argv[i], argv[i + 1:]
    if {"--help", "-h"} & set(rest):
        return [argv[0], "--help", command]
    if command in BARE_WORD and rest and not rest[0].startswith("-"):
        rest = [BARE_WORD[command], *rest]
    return [*argv[:i + 1], *rest]


if __name__ == "__main__":
    main()
