# mottivme-infra: run everything from the repository root.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
HOSTS   ?= 1
BENCH_ROWS ?= 2000000
PYINFRA := $(BIN)/pyinfra

.PHONY: help venv demo deploy images-check images-lock images-add lint test test-unit sandbox-up sandbox-down sandbox-status images bench dr-drill clean

help:
	@echo "make demo          sandbox server + deploy + print the n8n URL (fresh machine: installs what it needs)"
	@echo "make test          unit tests, then integration tests on sandbox servers"
	@echo "make test-unit     the quick tier only (seconds)"
	@echo "make lint          ruff on the Python, shellcheck on the shell scripts"
	@echo "make images-check  the registries' images against images.lock; images-lock moves the lock to them"
	@echo "make images-add    adds to images.lock only the images it lacks (a new n8n version's); the rest stay"
	@echo "make sandbox-up HOSTS=n | sandbox-down | sandbox-status | images"
	@echo "make bench         benchmarks (print tables)"
	@echo "runbooks: .venv/bin/mottivme lists them (the on-call console, installed by make venv)"

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

# the demo targets the local sandbox only, whatever .env says (MOTTIVME_TARGET=sandbox: no host
# and no secret from .env), so it can never reach a production server
demo: venv
	@echo "demo: the local sandbox only (never the hosts of .env)"
	@test -s .sandbox/hosts.json && grep -q '"name"' .sandbox/hosts.json || $(BIN)/python -m sandbox up --hosts $(HOSTS)
	MOTTIVME_TARGET=sandbox $(PYINFRA) -y inventory.py deploy.py
	@$(BIN)/python -m sandbox urls

# production: pyinfra shows what it will change and asks before it does (no -y here)
deploy: venv
	$(PYINFRA) inventory.py deploy.py

# images.lock (tasks/images.py): what the registries serve now against it, and moving it there
images-check: venv
	$(BIN)/python -m tasks.images check

images-lock: venv
	$(BIN)/python -m tasks.images lock

images-add: venv
	$(BIN)/python -m tasks.images add

# every tracked shell script (templates are Jinja, not shell)
SHELL_SCRIPTS = $(shell git ls-files | grep -v '^templates/' | xargs grep -lsE '^\#!.*(ba)?sh' 2>/dev/null)

lint: venv
	$(BIN)/ruff check .
	shellcheck -S warning $(SHELL_SCRIPTS)

# the quick tier first (a failure there stops before any server starts), then the integration
# tier on its two lines at once, each with sandbox servers of its own (docs/sandbox.md)
test: venv
	$(BIN)/pytest -m "not integration" -n auto
	$(BIN)/pytest -m integration -n 2 --durations=25

test-unit: venv
	$(BIN)/pytest -m "not integration" -n auto

sandbox-up: venv
	$(BIN)/python -m sandbox up --hosts $(HOSTS)

sandbox-down: venv
	$(BIN)/python -m sandbox down

sandbox-status: venv
	$(BIN)/python -m sandbox status

images: venv
	$(BIN)/python -m sandbox images

bench: venv
	$(BIN)/python bench/converge.py
	$(BIN)/python bench/backup.py --rows $(BENCH_ROWS)
	$(BIN)/python bench/runbooks.py
	$(BIN)/python bench/monitor.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/restart_load.py

dr-drill: venv
	$(BIN)/python -m runbooks.dr_drill

clean: sandbox-down
	rm -rf $(VENV) .pytest_cache
