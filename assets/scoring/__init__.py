"""Scoring assets: the fleet's RUL at every simulated hour, from the daily store and the
MLflow champion, and the sensors that request those runs (wired in pipelines.definitions)."""

from assets.scoring.predictions import RUL_PREDICTIONS, rul_predictions, score_hours_job
from assets.scoring.sensors import champion_sensor, sim_hour_sensor

SCORING_ASSETS = [rul_predictions]
SCORING_JOBS = [score_hours_job]
SCORING_SENSORS = [sim_hour_sensor, champion_sensor]
SCORING_SCHEDULES: list = []  # runs follow the simulated clock, not the wall clock

__all__ = ["RUL_PREDICTIONS", "SCORING_ASSETS", "SCORING_JOBS", "SCORING_SCHEDULES",
           "SCORING_SENSORS"]
