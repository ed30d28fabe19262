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

# The MLflow store the pipeline used (from core.settings, so RUL_* variables apply here too)
MLFLOW_PORT ?= 5000
MLFLOW_STORE = $(RUN) python -c "from core.settings import Settings; \
	s = Settings.from_env(); print(s.data_dir, s.mlflow_uri, s.mlflow_artifacts or '')"

# MLflow UI in the background, in its own process group so that all of it stops when
# `dagster dev` exits (its GenAI job runner is not needed here and is switched off);
# the Dagster UI in the foreground.
demo: setup
	$(RUN) rul pipeline || echo "rul pipeline reported failures (above); starting the UIs anyway"
	@read -r data uri artifacts <<< "$$($(MLFLOW_STORE))"; mkdir -p "$$data/mlflow"; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid $(RUN) mlflow ui --backend-store-uri "$$uri" \
		$${artifacts:+--default-artifact-root "$$artifacts"} --host 127.0.0.1 \
		--port $(MLFLOW_PORT) > "$$data/mlflow/ui.log" 2>&1 & ui=$$!; \
	trap 'kill -- -$$ui 2>/dev/null' EXIT; \
	echo "MLflow UI:  http://127.0.0.1:$(MLFLOW_PORT)  (runs, metrics, plots, model registry; log $$data/mlflow/ui.log)"; \
	echo "Dagster UI: http://127.0.0.1:3000"; \
	$(RUN) dagster dev --host 127.0.0.1 --port 3000

bench: setup
	$(RUN) python benchmarks/bench_generate.py

clean:
	rm -rf data/lake data/warehouse.duckdb data/dagster data/mlflow data/tmp
