# Entry points for a fresh clone:
#   make run          set up, then build results/BENCHMARKS.md (the default benchmark, trained here)
#   make test         set up, then run the test suite (the slow tests included)
#   make lint         ruff, ruff format, snakefmt, mypy and snakemake --lint, all as checks
#   make constraints  rewrite constraints.txt from .venv after a dependency change
# Every venv is installed with pip's -c and the pinned versions of its constraints file, so a
# benchmark environment can be recreated; PIP_ARGS adds options (e.g. a CPU-only torch index).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP_ARGS ?=
# dstack's server has its own pinned dependencies: it lives in a venv of its own for the tests.
DSTACK_VENV ?= .venv-dstack

.PHONY: setup run test lint constraints dstack-venv slm-lab-venv

# Setup says what it is doing: one line per step; pip's own output goes to a log, whose last
# lines are shown if a step fails.
SETUP_LOG ?= $(VENV)-setup.log
# The project with its test and Slurm extras; a variable, since a comma would split $(call ...)'s
# arguments.
EDITABLE := .[test,slurm]
define setup_step
	@echo "setup: $(1)"
	@$(2) >> $(SETUP_LOG) 2>&1 || { echo "setup: failed: $(1); last lines of $(SETUP_LOG):"; \
		tail -n 20 $(SETUP_LOG); exit 1; }
endef

$(BIN)/snakemake: pyproject.toml setup.py constraints.txt
	@: > $(SETUP_LOG)
	$(call setup_step,1/3 creating $(VENV) with $(PYTHON) (log: $(SETUP_LOG)),$(PYTHON) -m venv $(VENV))
	$(call setup_step,2/3 upgrading pip,$(BIN)/pip install --upgrade pip)
	$(call setup_step,3/3 installing slm-bench with its pinned dependencies (torch included: a few minutes),$(BIN)/pip install $(PIP_ARGS) -c constraints.txt -e '$(EDITABLE)')
	@touch $@
	@echo "setup: done: $(VENV) ready"

setup: $(BIN)/snakemake

run: setup
	$(BIN)/snakemake --cores all results/BENCHMARKS.md

$(DSTACK_VENV)/bin/dstack: constraints-dstack.txt
	$(PYTHON) -m venv $(DSTACK_VENV)
	$(DSTACK_VENV)/bin/pip install --quiet -c constraints-dstack.txt "dstack[server]==0.22.5"
	touch $@

dstack-venv: $(DSTACK_VENV)/bin/dstack

# The real SLM-Lab (not on PyPI) for the tests that run it, in a venv of its own (its
# huggingface-hub 0.34 conflicts with ours). It is installed editable from a git-ignored copy
# of its source, as `uv sync` installs it in its checkout, and writes its data/ there. It
# declares Python >= 3.12 but runs unchanged on 3.11; the pins are its uv.lock's versions of
# what a CPU train run on classic control imports (torcharc must be pinned: 1.x breaks pydash).
SLM_LAB_SRC    ?= ../shared/slm-lab
SLM_LAB_VENV   ?= .venv-slm-lab
SLM_LAB_COPY   ?= .slm-lab-src
SLM_LAB_PYTHON ?= python3.11
SLM_LAB_PINS   := torch==2.13.0 colorlover==0.3.0 huggingface-hub==0.34.4 kaleido==0.2.0 \
	loguru==0.7.3 pandas==2.2.3 pillow==11.1.0 plotly==6.0.1 pydash==8.0.5 pyyaml==6.0.2 \
	regex==2024.11.6 typer==0.16.1 ujson==5.10.0 "gymnasium[classic-control]==1.2.0" \
	torcharc==2.1.2 pydantic==2.12.5 psutil==7.0.0 numpy==2.0.2 tensorboard==2.19.0 \
	gputil==1.4.0 "ray[tune]==2.44.0" optuna==4.5.0 opencv-python==4.11.0.86

$(SLM_LAB_VENV)/bin/slm-lab:
	rm -rf $(SLM_LAB_COPY) $(SLM_LAB_VENV)
	mkdir -p $(SLM_LAB_COPY) && cp -R $(SLM_LAB_SRC)/. $(SLM_LAB_COPY)/ && chmod -R u+w $(SLM_LAB_COPY)
	$(SLM_LAB_PYTHON) -m venv $(SLM_LAB_VENV)
	$(SLM_LAB_VENV)/bin/pip install --quiet --ignore-requires-python $(SLM_LAB_PINS)
	$(SLM_LAB_VENV)/bin/pip install --quiet --no-deps --ignore-requires-python -e $(SLM_LAB_COPY)
	touch $@

slm-lab-venv:
	@if [ -d "$(SLM_LAB_SRC)/slm_lab" ]; then $(MAKE) --no-print-directory $(SLM_LAB_VENV)/bin/slm-lab; \
	else echo "slm-lab-venv: no SLM-Lab source at $(SLM_LAB_SRC): skipped (its tests will skip)"; fi

# The suite runs on pytest-xdist workers, twice as many as CPUs: most tests spend their time
# waiting on subprocesses and servers (Snakemake builds, Slurm's polling, dstack), so two per CPU
# keep the CPUs busy. --dist loadgroup keeps each xdist_group on one worker (the Slurm cluster's
# tests; tests sharing a built results tree or a server: tests/conftest.py). TEST_WORKERS=0 runs
# the suite in this process, one test after another; PYTEST_ARGS adds options.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
PYTEST_ARGS ?=
test: setup dstack-venv slm-lab-venv
	SLM_BENCH_DSTACK_VENV=$(abspath $(DSTACK_VENV)) $(BIN)/pytest -n $(TEST_WORKERS) \
		--dist loadgroup $(PYTEST_ARGS)

# snakemake --lint asks every rule for a conda env or container. slm-bench's rules run its own
# package, in the environment it is installed in (make setup, pip install .), so that one lint
# is allowed; any other lint, or a failure with no lint listed, fails.
CONDA_LINT := Specify a conda environment or container for each rule

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/mypy
	@out=$$($(BIN)/snakemake --lint --workflow-profile none --profile none 2>&1) && exit 0; \
	lints=$$(printf '%s\n' "$$out" | grep -E '^ +\* '); \
	if [ -n "$$lints" ] && ! printf '%s\n' "$$lints" | grep -vq '$(CONDA_LINT)'; then \
		echo "snakemake --lint: clean but for '$(CONDA_LINT)'"; \
	else printf '%s\n' "$$out"; exit 1; fi

# Rewrite constraints.txt from .venv (the project itself, pip and torch's build label such as
# +cpu left out). After editing pyproject.toml's dependencies: `$(BIN)/pip install -U -e
# '.[test,slurm]'` (without -c), then `make constraints`; .venv then counts as set up.
constraints:
	test -x $(BIN)/pip || { echo "make constraints: no $(VENV): run make setup first"; exit 1; }
	{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --all --exclude-editable \
		| grep -Ev '^(slm-bench|pip)==' | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(BIN)/snakemake
