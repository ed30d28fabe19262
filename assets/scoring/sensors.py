"""What starts scoring runs: the simulated clock passing an hour of live telemetry, and the
`champion` alias moving to another model version."""

import datetime as dt

import dagster as dg

from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from assets.scoring.partitions import SIM_HOURS, hour_key, hours_between, key_hour
from assets.scoring.predictions import RUL_PREDICTIONS, score_hours_job

MAX_HOURS_PER_TICK = 24  # a backlog (sensor started late) is caught up a day per tick


@dg.sensor(name="rul_scoring_sim_hours", job=score_hours_job, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING)  # live operations need no click
def sim_hour_sensor(context: dg.SensorEvaluationContext, storage: LakeStorage):
    """Adds a `sim_hours` key for each simulated hour the live telemetry has reached (a
    reading at or after the hour has been published) and requests its scoring run, one run
    key per hour. The cursor is the last hour added; the first tick starts at the first live
    hour."""
    from models.daily_store import first_live_ts, newest_live_ts

    newest = newest_live_ts(storage.lake_dir)
    if newest is None:
        return dg.SkipReason("no live telemetry under lake/telemetry_live yet")
    if context.cursor:
        start = key_hour(context.cursor) + dt.timedelta(hours=1)
    else:  # the first hour boundary at or after the first live reading
        first = first_live_ts(storage.lake_dir)
        start = first.replace(minute=0, second=0, microsecond=0)
        start += dt.timedelta(hours=0 if start == first else 1)
    keys = hours_between(start, newest)[:MAX_HOURS_PER_TICK] if start <= newest else []
    if not keys:
        return dg.SkipReason(f"live telemetry is at {newest:%Y-%m-%d %H:%M}; next hour "
                             f"{hour_key(start)} not reached")
    known = set(context.instance.get_dynamic_partitions(SIM_HOURS.name))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=k, run_key=f"sim-hour-{k}") for k in keys],
        dynamic_partitions_requests=[SIM_HOURS.build_add_request(
            [k for k in keys if k not in known])],
        cursor=keys[-1],
    )


@dg.sensor(name="rul_scoring_champion", job=score_hours_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING)
def champion_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowStore):
    """Re-scores the latest scored hour when the `champion` alias moves to another version,
    so what the dashboards show comes from the serving model. The cursor is the champion
    version last seen; the first tick only records it."""
    from models.registry import champion_version

    version = champion_version(tracking_uri=mlflow.tracking_uri)
    if version is None:
        return dg.SkipReason("no champion registered yet")
    if context.cursor == str(version):
        return dg.SkipReason(f"champion is still v{version}")
    if context.cursor is None:
        return dg.SensorResult(cursor=str(version),
                               skip_reason=f"recorded the serving champion v{version}")
    scored = context.instance.get_materialized_partitions(RUL_PREDICTIONS)
    if not scored:
        return dg.SensorResult(cursor=str(version), skip_reason=f"champion moved to "
                               f"v{version}; no hour scored yet")
    latest = max(scored, key=key_hour)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=latest, run_key=f"champion-v{version}-{latest}",
                                    tags={"rul/trigger": f"champion v{context.cursor} -> "
                                                         f"v{version}"})],
        cursor=str(version),
    )
