# The README's two commands: `make demo` runs the platform, `make test` passes the tests.
# Both set everything up on a machine that has only Python 3.11, make and git.
SHELL := /bin/bash
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
export DAGSTER_HOME := $(CURDIR)
export GX_ANALYTICS_ENABLED := false

.PHONY: setup test pipeline demo bench lint clean

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

test: setup
	$(RUN) pytest

lint: setup
	$(RUN) ruff check .

pipeline: setup
	$(RUN) rul pipeline

demo: setup
	$(RUN) rul pipeline || echo "rul pipeline reported failures (above); starting the UI anyway"
	$(RUN) dagster dev --host 127.0.0.1 --port 3000

bench: setup
	$(RUN) python benchmarks/bench_generate.py

clean:
	rm -rf data/lake data/warehouse.duckdb data/dagster data/tmp
