"""The analyst notebooks run top to bottom, for real, against a small fleet and a champion
trained and registered here; they find both through the RUL_* environment variables, as
`notebooks/README.md` promises. They are committed without outputs."""

from __future__ import annotations

import time

import nbformat
import pytest
from champion import Champion, build_champion
from nbclient import NotebookClient

from core.settings import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
BUDGET_S = 120  # per notebook on a small fleet (notebooks/README.md)


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return build_champion(tmp_path_factory.mktemp("notebooks"))


def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_fleet_and_climate.ipynb",
                                           "02_model_report.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells and all(not c.outputs and c.execution_count is None for c in cells)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_small_fleet(path, champion, tmp_path, monkeypatch):
    for key, value in champion.env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits the environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=BUDGET_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})

    began = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    seconds = time.perf_counter() - began

    assert seconds < BUDGET_S
    images = sum("image/png" in out.get("data", {}) for cell in notebook.cells
                 for out in cell.get("outputs", []))
    assert images >= 2, "the notebook's figures did not render"
