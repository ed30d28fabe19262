"""Materialization metadata shared by the data assets: what the UI shows for each table."""

from __future__ import annotations

import dagster as dg
import polars as pl

from core.lake import Written


def markdown_table(df: pl.DataFrame) -> str:
    """A small Markdown table (the UI renders it); floats rounded so rows stay readable."""
    cells = df.with_columns(pl.selectors.float().round(3)).cast(pl.String).fill_null("")
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.width]
    lines += ["| " + " | ".join(row) + " |" for row in cells.iter_rows()]
    return "\n".join(lines)


def table_metadata(written: Written) -> dict[str, dg.MetadataValue]:
    columns = [dg.TableColumn(name, str(dtype)) for name, dtype in written.head.schema.items()]
    return {
        "dagster/row_count": dg.MetadataValue.int(written.rows),
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
        "path": dg.MetadataValue.path(str(written.path)),
        "preview": dg.MetadataValue.md(markdown_table(written.head)),
    }
