"""Live data: ingest of the simulator's landing files into the lake's live tables."""

from assets.live.ingest import ingest_landing, live_ingest
from assets.live.sensors import landing_sensor

LIVE_ASSETS = [live_ingest]
LIVE_JOBS = [ingest_landing]
LIVE_SENSORS = [landing_sensor]
