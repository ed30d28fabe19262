"""The registered model loads and predicts in a fresh process that cannot import this
repository: the code it pickles references (`models`, `simulator`) is logged with it
(`models.pyfunc.code_paths`). The project is installed editable, so the child process first
takes the repository off `sys.path` and checks that `models` is no longer importable."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from champion import Champion, shared_champion

from models.features import snapshot_features
from models.pyfunc import to_model_input
from models.registry import CHAMPION_URI, load_model

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import importlib.util, json, sys
from pathlib import Path
repo, uri, example = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != repo]
assert importlib.util.find_spec("models") is None, "models still importable"
import mlflow
import pandas as pd
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
model = mlflow.pyfunc.load_model("models:/battery-rul@champion")
out = model.predict(pd.read_parquet(example))
import models
print(json.dumps({"models": models.__file__, "columns": list(out.columns),
                  "p50": out["rul_p50_days"].tolist()}))
"""


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return shared_champion(tmp_path_factory)


def test_champion_loads_outside_the_repository(champion, tmp_path):
    model = load_model(CHAMPION_URI, tracking_uri=champion.tracking_uri)
    lake = champion.lake
    features = snapshot_features(
        pl.scan_parquet(lake / "telemetry" / "*.parquet"),
        pl.read_parquet(lake / "batteries" / "*.parquet"),
        pl.read_parquet(lake / "maintenance_events" / "*.parquet"),
        as_of=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    ).filter(pl.col("sufficient_history")).head(6)
    assert features.height == 6
    example = tmp_path / "example.parquet"
    to_model_input(model.model, features).to_parquet(example)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUL_DATA_DIR")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(REPO), champion.tracking_uri,
                           str(example)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    loaded_from = Path(result["models"]).resolve()
    assert REPO not in loaded_from.parents  # the logged copy, not this checkout
    assert result["columns"][:3] == ["rul_p10_days", "rul_p50_days", "rul_p90_days"]
    assert result["p50"] == pytest.approx(model.predict(features)["rul_p50_days"].to_list(),
                                          rel=1e-9)
