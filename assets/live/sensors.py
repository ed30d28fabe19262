"""`landing_sensor`: polls the landing area and launches `ingest_landing` for new files.

Landing names are unique and sortable, so the cursor is the newest name requested per
table: a file is requested once, in the run whose key is derived from its file list (Dagster
also skips a run key it has seen, should a cursor ever be lost). A file that comes back after
it was ingested (a simulator restart re-lands its last batch) is not requested again; the
next ingest run retires it as a duplicate. If a run fails, its files stay in the landing
area: launch `ingest_landing` with no files to ingest every pending one.
"""


import hashlib
import json
from pathlib import Path

import dagster as dg

from assets.live.ingest import OP_NAME, ingest_landing
from assets.resources.storage import LakeStorage

POLL_S = 15
MAX_FILES_PER_RUN = 90  # ~30 rotations of three tables: a backlog is caught up in a few runs


def run_key(keys: list[str]) -> str:
    """The same files give the same key, whatever order they were listed in."""
    return "landing-" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]


def new_requests(data_dir: Path, cursor: str | None,
                 max_files: int = MAX_FILES_PER_RUN) -> tuple[list[dg.RunRequest], str]:
    """Run requests for the pending files newer than the cursor, and the advanced cursor."""
    from core.ingest import pending_files

    last: dict[str, str] = json.loads(cursor) if cursor else {}
    new = [f for f in pending_files(data_dir) if f.name > last.get(f.table, "")]
    requests = []
    for i in range(0, len(new), max_files):
        chunk = new[i:i + max_files]
        keys = [f.key for f in chunk]
        requests.append(dg.RunRequest(
            run_key=run_key(keys),
            run_config={"ops": {OP_NAME: {"config": {"files": keys}}}},
            tags={"landing/files": str(len(keys)), "landing/first": chunk[0].name,
                  "landing/last": chunk[-1].name},
        ))
    for f in new:
        last[f.table] = max(last.get(f.table, ""), f.name)
    return requests, json.dumps(last, sort_keys=True)


@dg.sensor(
    job=ingest_landing,
    minimum_interval_seconds=POLL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every ~15 s: request an ingest_landing run for landing files not seen yet.",
)
def landing_sensor(context: dg.SensorEvaluationContext, storage: LakeStorage):
    requests, cursor = new_requests(Path(storage.base_dir), context.cursor)
    if not requests:
        return dg.SkipReason("no new landing files")
    return dg.SensorResult(run_requests=requests, cursor=cursor)
