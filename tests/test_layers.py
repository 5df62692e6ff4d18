"""Imports point down only (design.md): a module importing a package above it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = {
    "tools": {"agents", "graphs", "simulations", "clinicflow"},
    "agents": {"tools", "graphs", "simulations", "clinicflow"},
    "graphs": {"simulations", "clinicflow"},
    "simulations": {"clinicflow"},
    "clinicflow": set(),
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_packages(path) & FORBIDDEN[package]) for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
