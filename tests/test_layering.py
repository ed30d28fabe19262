"""Dependencies run one way: entry points (`pipelines`, `dashboards`) import the libraries,
never the reverse; `simulator` imports nothing of ours; `core` no Dagster asset code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"simulator", "models", "core", "alerting", "reporting", "assets", "pipelines",
        "dashboards"}
ALLOWED = {
    "simulator": set(),
    "models": {"simulator"},
    "core": {"simulator", "models"},
    "alerting": {"simulator", "core"},
    "reporting": {"simulator", "models", "core", "alerting"},
    "assets": {"simulator", "models", "core", "alerting", "reporting"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_library_imports_run_one_way(package):
    bad = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - ALLOWED[package] - {package})
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in bad.items() if v}
