"""CSV and Excel downloads of a table view. Exports keep UTC (the storage time), with every
time column named `..._utc` so a spreadsheet user cannot mistake it for local time; the
pages themselves show Asia/Bangkok. Text typed by users (notes, names) reaches these files, so
every text cell is made inert for a spreadsheet first (`inert`)."""

from __future__ import annotations

import io
from collections.abc import Callable

import panel as pn
import polars as pl

from core import users

FORMULA_START = r"^[=+\-@\t\r]"  # what makes a spreadsheet evaluate a cell (OWASP)
EXCEL_ILLEGAL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"  # openpyxl's ILLEGAL_CHARACTERS_RE


def utc_labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """Time columns as naive UTC (Excel has no time zones) named `<col>_utc`; HTML helper
    columns (links, badges) are left out."""
    out = frame.select([c for c in frame.columns if not c.startswith("_")])
    return out.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None).alias(f"{c}_utc")
        for c, t in out.schema.items() if isinstance(t, pl.Datetime) and t.time_zone
    ).drop([c for c, t in out.schema.items() if isinstance(t, pl.Datetime) and t.time_zone])


def _text_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c, t in frame.schema.items()
            if t == pl.String or t == pl.Categorical or isinstance(t, pl.Enum)]


def inert(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell a spreadsheet would read as a formula (OWASP's CSV-injection list: a
    leading `=`, `+`, `-`, `@`, tab or carriage return) prefixed with a single quote, so a note
    such as `=HYPERLINK(...)` stays text in Excel, LibreOffice and any program importing the CSV.
    Only text columns change: numbers, negative ones included, stay numbers."""
    return frame.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(FORMULA_START))
        .then(pl.concat_str(pl.lit("'"), pl.col(c).cast(pl.String)))
        .otherwise(pl.col(c).cast(pl.String)).alias(c)
        for c in _text_columns(frame))


def csv_bytes(frame: pl.DataFrame) -> io.BytesIO:
    return io.BytesIO(inert(utc_labelled(frame)).write_csv().encode("utf-8"))


def excel_bytes(frame: pl.DataFrame, sheet: str) -> io.BytesIO:
    """The workbook; control characters XML cannot hold are dropped from text first (openpyxl
    refuses them, and one such note would break the export of the whole view), then the text
    is made inert (after, so that dropping them cannot uncover a leading `=`)."""
    frame = utc_labelled(frame)
    frame = inert(frame.with_columns(pl.col(c).cast(pl.String).str.replace_all(EXCEL_ILLEGAL, "")
                                     for c in _text_columns(frame)))
    buffer = io.BytesIO()
    frame.to_pandas().to_excel(buffer, sheet_name=sheet[:31], index=False, engine="openpyxl")
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
