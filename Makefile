# Two entry points for a fresh clone:
#   make run   set up, then build results/BENCHMARKS.md (the default benchmark, trained here)
#   make test  set up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# dstack's server has its own pinned dependencies: it lives in a venv of its own for the tests.
DSTACK_VENV ?= .venv-dstack

.PHONY: setup run test lint dstack-venv

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/snakemake

run: setup
	$(BIN)/snakemake --cores all results/BENCHMARKS.md

$(DSTACK_VENV)/bin/dstack:
	$(PYTHON) -m venv $(DSTACK_VENV)
	$(DSTACK_VENV)/bin/pip install --quiet "dstack[server]==0.22.5"

dstack-venv: $(DSTACK_VENV)/bin/dstack

test: setup dstack-venv
	SLM_BENCH_DSTACK_VENV=$(abspath $(DSTACK_VENV)) $(BIN)/pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint
