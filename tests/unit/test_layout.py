"""The shape the project keeps: production code never reaches into the sandbox, the host
programs need nothing but the server's python3, templates hold configuration only."""

import ast
import importlib
import re
import sys

from tests.helpers import ROOT

PRODUCTION = ["tasks", "runbooks", "mottivme_host"]


def imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_production_code_never_imports_the_sandbox():
    offenders = [str(p.relative_to(ROOT)) for d in PRODUCTION for p in (ROOT / d).rglob("*.py")
                 if "sandbox" in imports(p)]
    assert offenders == []


def test_sandbox_settings_live_in_group_data_sandbox_only():
    assert not re.search(r"^sandbox_\w+\s*=", (ROOT / "group_data" / "all.py").read_text(), re.M)


def test_host_programs_need_only_the_standard_library():
    """The deploy copies mottivme_host to servers that have python3 and nothing from PyPI."""
    allowed = set(sys.stdlib_module_names) | {"mottivme_host", "__future__"}
    for p in (ROOT / "mottivme_host").rglob("*.py"):
        assert imports(p) <= allowed, f"{p.name} imports {imports(p) - allowed}"


def test_what_the_deploy_takes_from_the_monitor_is_standard_library_only():
    """The deploy takes what the monitor's package holds once for both: the heartbeat token
    derivation, the ${VAR} expansion of its configuration and the WhatsApp URL's form; those
    modules need nothing the monitor's virtualenv adds."""
    from_monitor = {m for d in ("tasks", "runbooks", "mottivme_console") for p in (ROOT / d).rglob("*.py")
                    for m in modules_imported(p) if m.split(".")[0] == "mottivme_monitor"}
    assert from_monitor == {"mottivme_monitor.config", "mottivme_monitor.tokens", "mottivme_monitor.whatsapp"}
    for name in ("config", "tokens", "whatsapp"):
        assert imports(ROOT / "mottivme_monitor" / f"{name}.py") <= set(sys.stdlib_module_names) | {"__future__"}


def test_host_programs_run_on_debian_12_python():
    """Debian 12's python3 is 3.11: no syntax from later versions."""
    for p in [*(ROOT / "mottivme_host").rglob("*.py"), ROOT / "mottivme_host" / "bin" / "mottivme-host"]:
        ast.parse(p.read_text(), feature_version=(3, 11))


def modules_imported(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_tests_and_benches_stand_on_their_own():
    """No test module imports another (shared code is tests/helpers.py); bench/ imports nothing of tests/."""
    for p in (ROOT / "tests").rglob("*.py"):
        from_tests = {m for m in modules_imported(p) if m.split(".")[0] == "tests"}
        assert from_tests <= {"tests.helpers"}, f"{p.relative_to(ROOT)} imports {from_tests}"
    for p in (ROOT / "bench").glob("*.py"):
        assert not {m for m in modules_imported(p) if m.split(".")[0] == "tests"}, p.name


def test_each_concern_deploy_py_runs_is_a_pyinfra_deploy():
    """deploy.py's concerns are pyinfra deploys (their operations named `<concern> / <operation>`,
    which the deploy's output, its profile and bench/converge.py read)."""
    tree = ast.parse((ROOT / "deploy.py").read_text())
    imported = {a.asname or a.name: f"{node.module}.{a.name}" for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for a in node.names}
    called = set()  # what deploy.py calls, as "module.function"
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in imported:
            called.add(imported[n.func.id])
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                and n.func.value.id in imported:
            called.add(f"{imported[n.func.value.id]}.{n.func.attr}")
    # what deploy.py calls that is not a concern: checks, settings, the barrier, values
    helpers = {"tasks.rotation.refuse_deploy_if_pending", "tasks.platform.refuse_unsupported_os",
               "tasks.versions.refuse_swaps_and_downgrades", "tasks.versions.stack_version",
               "tasks.versions.upgrade_due", "tasks.scaling.settings", "tasks.operations.barrier",
               "tasks.n8n.worker_hosts", "tasks.n8n.host_settings", "tasks.monitoring.monitor_hosts",
               "tasks.backup.backup_settings", "tasks.backup.vault_settings", "tasks.hostprograms.cleanup_settings",
               "tasks.monitoring.report_settings", "tasks.workers.host_settings",
               "tasks.versions.change_version"}  # the last: the emergency deploy's sequence, its own deploys within
    concerns = {x for x in called if x.startswith("tasks.") and not x.startswith("tasks.settings.")} - helpers
    assert {"tasks.n8n.n8n_stack", "tasks.workers.start_configured_workers", "tasks.base.base"} <= concerns
    for path in sorted(concerns):
        module, _, name = path.rpartition(".")
        fn = getattr(importlib.import_module(module), name)
        assert getattr(getattr(fn, "_inner", None), "deploy_name", None), f"{path}: not a @deploy"
