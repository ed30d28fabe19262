"""The RUL model as an MLflow pyfunc, so the registry serves one artifact to every consumer:
`rul predict`, the scoring assets, the promotion check and `mlflow models serve`.

MLflow's schema enforcement takes pandas with timezone-naive datetimes, while the project works
in Polars with UTC timestamps; the conversions live here and nowhere else. Numeric features are
sent as floats, so a feature that happens to be null at serving time does not break the
signature that an all-integer training column would otherwise have inferred.

The pickled model refers to this package's classes (`RulPyfunc`, `RulModel`, the fitted laws)
by module, so the `models` and `simulator` packages are logged with it (`code_paths`): a
process that has neither installed, in any working directory, loads it from the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow.pyfunc
import pandas as pd
import polars as pl

if TYPE_CHECKING:
    from models.rul_model import RulModel

QUANTILES = ["rul_p10_days", "rul_p50_days", "rul_p90_days"]
DRIVERS = ["driver_1", "driver_2", "driver_3"]
KEYS = ["battery_id", "ts"]
CONTEXT = ["site_id"]


def code_paths() -> list[str]:
    """The packages the pickled model imports, to log beside it (`mlflow.pyfunc.log_model`'s
    `code_paths`; MLflow puts them on `sys.path` when it loads the model)."""
    import simulator

    return [str(Path(__file__).resolve().parent), str(Path(simulator.__file__).resolve().parent)]


def input_columns(model: RulModel, frame: pl.DataFrame) -> list[str]:
    """What the model reads from a snapshot frame: the keys, the site (it picks the conformal
    offsets), its categorical columns and its features (those it derives itself, such as
    `float_current_norm`, are not inputs)."""
    wanted = dict.fromkeys([*KEYS, *CONTEXT, *model.categorical, *model.features])
    return [c for c in wanted if c in frame.columns]


def score(model: RulModel, frame: pl.DataFrame) -> pl.DataFrame:
    """P10/P50/P90 RUL and the top three drivers, one row per input row, in input order."""
    quantiles = model.predict(frame).select(QUANTILES)
    drivers = model.drivers(frame, k=len(DRIVERS)).select(DRIVERS)
    return pl.concat([quantiles, drivers], how="horizontal")


def to_model_input(model: RulModel, frame: pl.DataFrame) -> pd.DataFrame:
    """The pyfunc's input: pandas, numeric features as float64, `ts` as naive UTC."""
    categorical = {*model.categorical, *CONTEXT, "battery_id"}
    columns = [
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None) if c == "ts"
        else pl.col(c).cast(pl.String) if c in categorical
        else pl.col(c).cast(pl.Float64)
        for c in input_columns(model, frame)
    ]
    return frame.select(columns).to_pandas()


def from_model_input(model_input: pd.DataFrame) -> pl.DataFrame:
    """Back to the Polars frame the model was trained on (`ts` in UTC again)."""
    frame = pl.from_pandas(model_input)
    if "ts" in frame.columns and frame.schema["ts"] == pl.Datetime:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    return frame


class RulPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps a trained `RulModel`; pickled with the run by `registry.log_training`."""

    def __init__(self, model: RulModel) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return score(self.model, from_model_input(model_input)).to_pandas()


@dataclass
class LoadedModel:
    """A registered version, ready to score Polars frames (what `rul predict` calls)."""

    model: RulModel
    name: str
    version: int
    run_id: str

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        return score(self.model, frame)
