"""`rul soak`, short and accelerated: simulator (killed with SIGKILL halfway and restarted),
ingest, alerts and hourly scoring together lose, duplicate and lock nothing."""

from __future__ import annotations

import json

import pytest
from champion import shared_champion

from pipelines.cli import main


@pytest.mark.slow
def test_short_soak_loses_and_duplicates_nothing(tmp_path_factory, monkeypatch, capsys):
    champion = shared_champion(tmp_path_factory)
    for key, value in champion.env.items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    code = main(["soak", "--minutes", "0.75", "--tick", "0.5s", "--speed", "240", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["simulator_kills"] == 1
    assert report["readings_written"] > 0
    assert report["readings_in_warehouse"] == report["readings_written"]
    assert (report["lost"], report["duplicates"], report["gaps_over_one_tick"],
            report["lock_errors"]) == (0, 0, 0, 0)
    assert report["failed_runs"] == []
    assert report["warehouse_reads"] > 10  # a dashboard-like reader ran the whole time
    assert report["runs"]["ingest_landing"] >= 5
    assert report["runs"].get("rul_scoring", 0) >= 1  # at least one simulated hour scored
