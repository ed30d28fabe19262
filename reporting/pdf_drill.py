"""The fleet-health report made during a drill: while any simulator scenario is active the
readings, alerts and forecasts are the drill's, so every page carries a SIMULATION band
naming the scenarios (as the dashboards' banner does, `dashboards.shell`), and the first
page says so in its facts."""

from __future__ import annotations

from typing import Any

DRILL = "#B86E00"  # the dashboards' amber (app.css --warn), the banner's colour
FONT = "Helvetica-Bold"
DRILL_NOTE = ". Readings, alerts and forecasts in this report are affected by the drill."


def simulation(scenarios: list[dict]) -> str:
    """"SIMULATION: <scenario> on <target>, ..." while any simulator scenario is active (the
    dashboards' banner, `dashboards.shell`), else "": a report made during a drill must not
    pass for the fleet's real state once it leaves the room. Plain text, not markup."""
    if not scenarios:
        return ""
    what = ", ".join(f"{s.get('name', '?')} on {s.get('target', '?')}" for s in scenarios)
    return f"SIMULATION: scenario active: {what}"


def drill_band(canvas: Any, text: str, page: tuple[float, float], mm: float) -> None:
    """The marker across the top of a page, in the top margin (drawn text: no markup is
    read), shortened with an ellipsis to the page's width."""
    width, height = page
    canvas.setFillColor(DRILL)
    canvas.rect(0, height - 10 * mm, width, 10 * mm, stroke=0, fill=1)
    canvas.setFillColor("white")
    canvas.setFont(FONT, 9)
    while len(text) > 1 and canvas.stringWidth(text, FONT, 9) > width - 36 * mm:
        text = text[:-2] + "…"
    canvas.drawString(18 * mm, height - 6.5 * mm, text)
