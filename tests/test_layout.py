"""The house rules of ``src/`` that the architecture doc promises: modules talk through public names, and
no file grows past 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "vgim"


def _files() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert files, f"no Python files under {SRC}"
    return files


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vgim"):
                found += [
                    f"{path.relative_to(SRC)}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []


def test_no_source_file_over_500_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in _files() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
