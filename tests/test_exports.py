"""CSV and Excel exports read back as a spreadsheet would: user text that starts like a formula
(`=`, `+`, `-`, `@`, tab, carriage return) arrives as text with a leading single quote, in
both formats, while numbers (negative ones too), times and harmless text are unchanged."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import polars as pl
import pytest

from dashboards.exports import csv_bytes, excel_bytes

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def _frame(notes: list[str]) -> pl.DataFrame:
    return pl.DataFrame({
        "note": notes,
        "by": pl.Series(["eng"] * len(notes), dtype=pl.Categorical),
        "delta_days": [-12.5] * len(notes),
        "count": [-3] * len(notes),
        "opened_at": [dt.datetime(2025, 1, 1, tzinfo=dt.UTC)] * len(notes),
        "_link": ['<a href="/x">=1+1</a>'] * len(notes)})


def _sheet(frame: pl.DataFrame):
    return openpyxl.load_workbook(io.BytesIO(excel_bytes(frame, "alerts").read())).active


@pytest.mark.parametrize("note", FORMULAS)
def test_excel_keeps_a_formula_looking_note_as_text(note):
    sheet = _sheet(_frame([note]))
    assert [c.value for c in sheet[1]] == ["note", "by", "delta_days", "count", "opened_at_utc"]
    cell = sheet["A2"]
    assert cell.data_type != "f"
    assert cell.data_type == "s"
    assert cell.value == "'" + note.replace("\r", "\n")  # XML reads a stored CR back as LF


@pytest.mark.parametrize("note", FORMULAS)
def test_csv_keeps_a_formula_looking_note_as_text(note):
    csv = pl.read_csv(csv_bytes(_frame([note])))
    assert csv["note"][0] == "'" + note


def test_numbers_times_and_plain_text_are_left_alone():
    frame = _frame(["isolating the string", "", "a = b", "-"]).with_columns(
        by=pl.Series(["=cmd|' /C calc'!A0", "eng", "+x", "eng"], dtype=pl.Categorical))
    csv = pl.read_csv(csv_bytes(frame))
    assert csv["note"].to_list() == ["isolating the string", "", "a = b", "'-"]
    assert csv["by"].to_list() == ["'=cmd|' /C calc'!A0", "eng", "'+x", "eng"]
    assert csv["delta_days"].to_list() == [-12.5] * 4 and csv["count"].to_list() == [-3] * 4
    sheet = _sheet(frame)
    assert [sheet.cell(r, 3).value for r in range(2, 6)] == [-12.5] * 4
    assert all(sheet.cell(r, 3).data_type == "n" and sheet.cell(r, 4).data_type == "n"
               for r in range(2, 6))
    assert sheet["E2"].value == dt.datetime(2025, 1, 1)
    assert sheet["B2"].value == "'=cmd|' /C calc'!A0" and sheet["B2"].data_type == "s"
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


def test_a_control_character_neither_breaks_excel_nor_uncovers_a_formula():
    sheet = _sheet(_frame(["\x07=1+1", "bell\x07 ok"]))
    assert sheet["A2"].value == "'=1+1" and sheet["A2"].data_type == "s"
    assert sheet["A3"].value == "bell ok"
