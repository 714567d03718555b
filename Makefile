# flamekit: two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INV := $(BIN)/inv

.PHONY: setup bootstrap demo test test-deps test-unit bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed  ## virtualenv with the pinned requirements

bootstrap: setup  ## Docker engine, compose plugin, base images, async-profiler
	$(INV) engine
	@# the profiler download (Maven Central) runs while debootstrap builds the base images;
	@# asprof is then checked in a container of the runtime image, which exists only after both
	$(INV) download-profiler --no-check > .download-profiler.log 2>&1 & dl=$$!; \
	  trap 'kill $$dl 2>/dev/null; rm -f .download-profiler.log' INT TERM; \
	  $(INV) base-images; rc=$$?; \
	  if ! wait $$dl; then cat .download-profiler.log; rc=1; fi; \
	  rm -f .download-profiler.log; [ $$rc = 0 ] || exit $$rc
	$(INV) download-profiler

demo: bootstrap  ## the main job on the demo stack: ends with the report's path
	$(INV) profile-all

test-deps: setup  ## Chromium for the browser tests (installed as root on Debian)
	$(BIN)/python -m flamekit.setup.browser

test: bootstrap test-deps  ## unit and integration tests (integration needs the engine)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup  ## fast tests, no Docker
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: bootstrap  ## full benchmarks: writes docs/perf/benchmarks.md (about 45 minutes)
	$(BIN)/python bench/run_all.py

bench-quick: bootstrap  ## the benchmarks' quick mode, as CI runs it
	$(BIN)/python bench/run_all.py --quick --out bench/out/benchmarks-quick.md

clean:
	-$(INV) down
	rm -rf docker/profiling/output docs/perf/runs
