"""CSV and Excel downloads of a table view. Exports keep UTC (the storage time), with every
time column named `..._utc` so a spreadsheet user cannot mistake it for local time; the
pages themselves show Asia/Bangkok."""

from __future__ import annotations

import io
from collections.abc import Callable

import panel as pn
import polars as pl

from core import users


def utc_labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """Time columns as naive UTC (Excel has no time zones) named `<col>_utc`; HTML helper
    columns (links, badges) are left out."""
    out = frame.select([c for c in frame.columns if not c.startswith("_")])
    return out.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None).alias(f"{c}_utc")
        for c, t in out.schema.items() if isinstance(t, pl.Datetime) and t.time_zone
    ).drop([c for c, t in out.schema.items() if isinstance(t, pl.Datetime) and t.time_zone])


def csv_bytes(frame: pl.DataFrame) -> io.BytesIO:
    return io.BytesIO(utc_labelled(frame).write_csv().encode("utf-8"))


def excel_bytes(frame: pl.DataFrame, sheet: str) -> io.BytesIO:
    buffer = io.BytesIO()
    utc_labelled(frame).to_pandas().to_excel(buffer, sheet_name=sheet[:31], index=False,
                                            engine="openpyxl")
    buffer.seek(0)
    return buffer


def download_buttons(session, name: str, frame: Callable[[], pl.DataFrame]) -> pn.Row:
    """CSV and Excel buttons exporting what `frame()` returns at click time (the view as
    filtered on the page)."""
    if not session.can(users.EXPORT):
        return pn.Row()
    csv = pn.widgets.FileDownload(callback=lambda: csv_bytes(frame()), filename=f"{name}.csv",
                                  label="CSV", button_type="light", width=90,
                                  css_classes=[f"export-{name}-csv"])
    xlsx = pn.widgets.FileDownload(callback=lambda: excel_bytes(frame(), name),
                                   filename=f"{name}.xlsx", label="Excel", button_type="light",
                                   width=90, css_classes=[f"export-{name}-xlsx"])
    return pn.Row(csv, xlsx, align="end")
