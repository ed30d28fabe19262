"""The fleet-health report's three charts (RUL P50 distribution, end-of-life forecast per month,
room temperatures), drawn with matplotlib to PNG bytes. Kept apart from `reporting.pdf` so the
document assembly there only places images. matplotlib is imported inside the functions (the
dashboards import the report module on start-up), and through `Figure`, not pyplot: no GUI
backend, safe in any worker."""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import polars as pl

WIDTH_IN = 174 / 25.4  # the report's A4 text width, 174 mm
DPI = 170
BAR = "#4C78A8"
HORIZONS = ((90, "#C0392B"), (180, "#E67E22"), (365, "#7F8C8D"))  # alert and budget horizons


class Chart(NamedTuple):
    png: bytes
    aspect: float  # height / width, to place the image at the text width


def rul_histogram(p50: pl.Series) -> Chart:
    import numpy as np

    fig, ax = _figure(2.2)
    values = p50.to_numpy()
    step = 90 * max(1, int(np.ceil(values.max() / (90 * 30))))  # 90-day bins, at most ~30
    ax.hist(values, bins=np.arange(0, values.max() + step, step), color=BAR, edgecolor="white")
    for days, colour in HORIZONS:
        ax.axvline(days, color=colour, linestyle="--", linewidth=1, label=f"{days} days")
    ax.set(xlabel="RUL P50 (days)", ylabel="batteries",
           title=f"RUL P50 of {len(values):,} batteries with a usable forecast")
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def forecast_chart(forecast: pl.DataFrame) -> Chart:
    fig, ax = _figure(2.3)
    months = [f"{m:%b %Y}" for m in forecast["month"]]
    exp, low, high = (forecast[c].to_numpy() for c in ("expected", "low", "high"))
    ax.bar(months, exp, color=BAR, label="expected (by P50)")
    ax.errorbar(months, exp, yerr=[exp - low, high - exp], fmt="none", ecolor="black",
                capsize=3, linewidth=1, label="low to high")
    ax.set(ylabel="blocks", title="End-of-life forecast, next 12 months")
    ax.set_ylim(bottom=0, top=max(1, int(high.max())) * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7.5)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def temperature_chart(env: pl.DataFrame) -> Chart:
    import matplotlib.dates as mdates

    fig, ax = _figure(2.3)
    for (site,), part in env.partition_by("site_id", as_dict=True, maintain_order=True).items():
        ax.plot(part["ts"].to_list(), part["room_temp_c"].to_numpy(), linewidth=1.3,
                marker="o", markersize=2, label=site)
    ax.axhline(25, color="grey", linestyle=":", linewidth=1)
    ax.set(ylabel="room temperature (°C)", title="Daily mean room temperature by site")
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)


def _figure(height_in: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    return fig, fig.add_subplot()


def _png(fig: Any) -> Chart:
    w_in, h_in = fig.get_size_inches()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return Chart(buf.getvalue(), h_in / w_in)
