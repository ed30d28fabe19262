"""The nine sites on a plain outline of Thailand shipped with the project
(`static/thailand.json`): no tiles, nothing fetched, so it works on a data-centre network.
A site's dot is coloured by its worst battery status and sized by its battery count."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import holoviews as hv
import panel as pn
import polars as pl

OUTLINE = Path(__file__).parent / "static" / "thailand.json"
COLOURS = {"critical": "#c62828", "warning": "#b86e00", "healthy": "#1f8f55"}


@cache
def _geometry() -> dict:
    return json.loads(OUTLINE.read_text(encoding="utf-8"))


def site_map(sites: pl.DataFrame) -> pn.viewable.Viewable:
    geometry = _geometry()
    located = [s for s in sites.iter_rows(named=True) if s["site_id"] in geometry["sites"]]
    shapes = [hv.Path([geometry["outline"], *geometry["islands"]]).opts(color="#7a8796",
                                                                          line_width=1.2)]
    if located:
        rows = []
        for s in located:
            lon, lat = geometry["sites"][s["site_id"]]
            worst = ("critical" if (s.get("critical") or 0) else
                     "warning" if (s.get("warning") or 0) else "healthy")
            rows.append({"lon": lon, "lat": lat, "site": s["site_id"], "name": s["name"],
                         "batteries": s.get("batteries") or 0, "open_alerts": s["live_alerts"],
                         "room_c": round(s["room_temp_c"], 1) if s.get("room_temp_c") else None,
                         "status": worst, "colour": COLOURS[worst]})
        points = hv.Points(pl.DataFrame(rows).to_pandas(), ["lon", "lat"],
                           ["site", "name", "batteries", "open_alerts", "room_c", "status",
                            "colour"])
        shapes.append(points.opts(color="colour", size=14, line_color="white",
                                  tools=["hover"], marker="circle"))
        labels = hv.Labels(pl.DataFrame(rows).to_pandas(), ["lon", "lat"], "site")
        shapes.append(labels.opts(text_font_size="8pt", xoffset=0.25, text_align="left"))
    overlay = hv.Overlay(shapes).opts(
        width=300, height=520, xaxis=None, yaxis=None, show_grid=False, toolbar=None,
        data_aspect=1, title="Sites (simplified outline)", xlim=(97.0, 106.0), ylim=(5.4, 20.8))
    return pn.pane.HoloViews(overlay, width=320, height=540)
