# configpipe — the two commands a newcomer needs are `make demo` and `make test`.
# Every target installs what it needs first (venv, pinned pip packages, the pinned CDK CLI).

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# jsii's end-of-life banner is silenced per Node major version (a comma list), not by a flag
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(shell node -p "process.versions.node.split('.')[0]" 2>/dev/null)

.PHONY: setup demo demo-stress up test test-long test-all test-stress test-unit test-e2e lint synth bench fuzz schemas clean

$(STAMP): requirements.txt layers/openfeature/requirements.txt requirements-dev.txt pyproject.toml package.json package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

## demo: the whole pipeline on this machine (moto server on 127.0.0.1), scripted scenario
demo: setup
	$(PY) scripts/demo.py

## demo-stress: `make demo` while stress-ng loads both cores: a busy machine slows the demo, never fails it
demo-stress: setup
	@command -v stress-ng >/dev/null || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y stress-ng; }
	@set -e; \
	stress-ng --cpu 2 --timeout 0 --quiet & stress=$$!; \
	trap 'kill $$stress 2>/dev/null; wait $$stress 2>/dev/null || true' EXIT; \
	echo "== demo-stress: make demo under stress-ng --cpu 2"; \
	start=$$(date +%s); \
	$(PY) scripts/demo.py; \
	echo "== demo-stress: the demo passed in $$(( $$(date +%s) - start ))s under stress-ng --cpu 2"

## up: keep the local pipeline running for any client (AWS CLI, boto3, configpipe CLI)
up: setup
	$(PY) -m configpipe_tools.local up

## test: lint, type-check and the test suite (unit, integration, infrastructure, e2e) but the
## long scenarios and soak runs (marker `long`: make test-long), on PYTEST_WORKERS processes
## (pytest-xdist; a file's tests stay on one worker; every worker has its own moto and, while it
## runs the e2e files, which tests/conftest.py hands out first as the longest, its own local
## pipeline; --no-loadscope-reorder keeps that order instead of xdist's most-tests-first)
PYTEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: setup lint
	$(PYTEST) -m "not long"

## test-long: the long scenarios and soak runs make test leaves out (the whole demo, every docs
## example, fuzzing, contention); CI runs it after make test
test-long: setup
	$(PYTEST) -m long

## test-all: both, as CI runs them
test-all: test test-long

## test-stress: make test's suite three times in a row while stress-ng loads every core (fails if
## any run fails); STRESS_SELECT="" stresses the long runs too
STRESS_RUNS ?= 3
STRESS_SELECT ?= not long
test-stress: setup lint
	@command -v stress-ng >/dev/null || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y stress-ng; }
	@set -e; \
	stress-ng --cpu 4 --timeout 0 --quiet & stress=$$!; \
	trap 'kill $$stress 2>/dev/null; wait $$stress 2>/dev/null || true' EXIT; \
	for run in $$(seq $(STRESS_RUNS)); do \
	  echo "== test-stress: run $$run of $(STRESS_RUNS) under stress-ng --cpu 4"; \
	  start=$$(date +%s); \
	  $(PYTEST) -q -m "$(STRESS_SELECT)"; \
	  echo "== test-stress: run $$run passed in $$(( $$(date +%s) - start ))s"; \
	done

test-unit: setup
	$(VENV)/bin/pytest tests/unit tests/integration

test-e2e: setup
	$(VENV)/bin/pytest tests/e2e

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

## synth: synthesise the CloudFormation template with the pinned CDK CLI (hermetic: no AWS calls)
synth: setup
	npx cdk synth --quiet
	@echo "Template: cdk.out/ConfigPipe.template.json"

bench: setup
	$(PY) scripts/bench_client.py
	$(PY) scripts/bench_write_path.py
	$(PY) scripts/bench_fanout.py
	$(PY) scripts/bench_cold_start.py
	$(PY) scripts/bench_memory.py
	$(PY) scripts/bench_e2e.py
	$(PY) scripts/bench_cost.py
	$(PY) scripts/rollout_stats.py
	$(PY) scripts/bench_readme.py

## fuzz: every function's entry point with 10,000 hostile and valid events each, on moto
## (docs/operations.md); not part of `make test`. FUZZ_ARGS="--events 500 --seed 3" to change it.
fuzz: setup
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

## schemas: regenerate docs/contracts/*.schema.json from the contract models (a test fails on drift)
schemas: setup
	$(PY) -m configpipe_tools.contract_schemas

clean:
	rm -rf cdk.out .local .pytest_cache .mypy_cache .ruff_cache
