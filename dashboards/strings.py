"""The strings of a site drawn block by block: each block's float voltage against its string's
median, coloured by the block's status, one small chart per string. A weak or shorted block
drops below its neighbours; an imbalanced string spreads wide. Drawn once with Bokeh; each new
reading only replaces the numbers of the charts' data sources, so a page with nine strings
costs next to nothing per tick."""

from __future__ import annotations

import panel as pn
import polars as pl
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, HoverTool, Range1d
from bokeh.plotting import figure

COLOURS = {"healthy": "#2b6cb0", "warning": "#b86e00", "critical": "#c62828", "unknown": "#8a96a3"}
COLUMNS = 3
LIMIT_MV = 600  # the axis spans +-0.6 V: a dead cell (-2.1 V) is clipped at the bottom edge


def string_data(status: pl.DataFrame) -> dict[str, dict[str, list]]:
    """Per string: positions, voltages, deviation from the string median (mV), colours."""
    frame = status.filter(pl.col("voltage_v").is_not_null()).select(
        "string_id", "battery_id", pl.col("position").cast(pl.Int64),
        pl.col("voltage_v").cast(pl.Float64), "status",
    ).with_columns(
        deviation_mv=(pl.col("voltage_v") - pl.col("voltage_v").median().over("string_id")) * 1000,
        colour=pl.col("status").replace_strict(COLOURS, default=COLOURS["unknown"]),
    ).sort("string_id", "position")
    return {key[0]: {c: part[c].to_list() for c in ("position", "battery_id", "voltage_v",
                                                    "deviation_mv", "status", "colour")}
            for key, part in frame.group_by("string_id", maintain_order=True)}


class StringsView:
    """One chart per string; `update` swaps the numbers in place."""

    def __init__(self, status: pl.DataFrame) -> None:
        data = string_data(status)
        self.sources = {s: ColumnDataSource(d) for s, d in data.items()}
        y_range = Range1d(-LIMIT_MV, LIMIT_MV)
        figures = []
        for string_id, source in self.sources.items():
            fig = figure(height=180, sizing_mode="stretch_width", title=string_id,
                         y_range=y_range, toolbar_location=None, tools="")
            fig.vbar(x="position", top="deviation_mv", width=0.8, color="colour", source=source)
            fig.add_tools(HoverTool(tooltips=[("block", "@battery_id"), ("voltage", "@voltage_v{0.000} V"),
                                              ("vs median", "@deviation_mv{+0} mV"),
                                              ("status", "@status")]))
            fig.yaxis.axis_label = "mV vs median"
            fig.xaxis.axis_label = "block position"
            figures.append(fig)
        self.pane = (pn.pane.Bokeh(gridplot(figures, ncols=COLUMNS, sizing_mode="stretch_width"),
                                   sizing_mode="stretch_width") if figures else
                     pn.pane.HTML('<p class="empty">No block voltages yet.</p>'))

    def update(self, status: pl.DataFrame) -> None:
        for string_id, values in string_data(status).items():
            if string_id in self.sources:
                self.sources[string_id].data = values
