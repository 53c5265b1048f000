# runbook-checks: `make help` lists the targets.
VENV   ?= .venv
PY     := $(VENV)/bin/python
RC     := $(VENV)/bin/runbook-checks
RUNBOOK ?= runbooks/files-incident-response.md
BACKEND ?= local
PYTEST_ARGS ?=

# Python writes bytecode here even where the environment says not to: with
# PYTHONDONTWRITEBYTECODE every process (each drill's pytest, the API, the servers)
# compiles the project's modules again and pytest rewrites its plugin's modules again,
# ~2.5 s of CPU per drill process (the caches go to __pycache__, which git ignores)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup test test-unit drill gate up load lint format bench clean images docker-ready

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## create .venv and install what is missing (Debian packages too: as root, or with sudo -n)
	@scripts/setup.sh

# the suite runs TEST_WORKERS modules at once (tests/suite_schedule.py: a module is a unit,
# the ones sharing the docker engine or network namespaces run one after another);
# the scenarios drill in parallel, a stack per worker (as `runbook-checks drill` does)
TEST_WORKERS ?= 3
WORKERS ?= 4
test: setup ## run the whole test suite (TEST_WORKERS modules at once; then the scenarios, WORKERS at once)
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(PY) -m pytest scenarios -n $(WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-unit: setup ## fast unit tests only (no servers)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

drill: setup docker-ready ## run every runbook scenario (BACKEND=local|docker) and report
	$(RC) drill --runbook $(RUNBOOK) --backend $(BACKEND)

gate: setup ## static + live checks of the runbook (what CI runs on runbook changes)
	$(RC) gate $(RUNBOOK)

up: setup docker-ready ## start the stack and print its URLs; Ctrl-C stops it
	$(RC) up --backend $(BACKEND)

images: setup ## the docker backend's images, built without any registry (debootstrap; cached)
	@scripts/images.sh

# with BACKEND=docker: the project's engine running and the images built (cached)
docker-ready:
	@if [ "$(BACKEND)" = docker ]; then scripts/images.sh; fi

# `make load`: the post-mortem's traffic increase (+25/+50/+100% users) on the embedded
# stack, bounded: SHAPE=baseline|step|spike|soak USERS=... DURATION=... LOAD_ARGS=...
SHAPE    ?= step
USERS    ?= 20
DURATION ?= 120
LOAD_ARGS ?=
load: setup ## load test (locust) with the runbook's thresholds and the DB pool's headroom
	$(RC) load --shape $(SHAPE) --users $(USERS) --duration $(DURATION) $(LOAD_ARGS)

lint: setup ## ruff lint + format check, mypy strict (and the benchmarks), the layers (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks
	$(VENV)/bin/lint-imports

format: setup ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## print benchmark figures (start, reset, proxy, twin, gate, drill)
	$(PY) benchmarks/run_all.py

clean: ## remove the venv and leftovers of interrupted drills
	-$(RC) cleanup 2>/dev/null
	rm -rf $(VENV) .mypy_cache .ruff_cache .import_linter_cache
