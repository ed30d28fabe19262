# The README's two commands: `make demo` runs the platform, `make test` passes the tests.
# Both set everything up on a machine that has only Python 3.11, make and git.
SHELL := /bin/bash
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen
export DAGSTER_HOME := $(CURDIR)
export GX_ANALYTICS_ENABLED := false

.PHONY: setup test pipeline demo soak bench lint clean

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

# The whole platform: builds the history and the model when they are missing (a second run
# reuses them), then the MLflow UI, the live simulator and `dagster dev` (webserver + daemon, so
# schedules and sensors run); prints every URL; Ctrl-C stops all of it (`rul demo`).
demo: setup
	$(RUN) rul demo

# The documented one-hour soak (README "Live operations"); `make test` runs a short one.
soak: setup
	$(RUN) rul soak --minutes 60

bench: setup
	$(RUN) python benchmarks/bench_generate.py

clean:
	rm -rf data/lake data/warehouse.duckdb data/dagster data/mlflow data/tmp data/landing \
		data/live data/alerts data/reports data/soak data/logs  # keeps data/auth (the users)
