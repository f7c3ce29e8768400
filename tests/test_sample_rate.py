"""The models' sample rate is named once, in the leaf module :mod:`vgim.frames`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vgim
import vgim.frames
import vgim.model.geometry

SRC = Path(vgim.__file__).parent


def test_the_literal_sample_rate_appears_only_in_frames() -> None:
    # comments and docstrings count too: prose says "16 kHz", code says SAMPLE_RATE
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    offenders = [str(p.relative_to(SRC)) for p in files if p.name != "frames.py" and "16000" in p.read_text()]
    assert offenders == []
    assert "SAMPLE_RATE = 16000" in (SRC / "frames.py").read_text()


def test_frames_is_a_leaf_and_geometry_re_exports_the_rate() -> None:
    tree = ast.parse((SRC / "frames.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__", "numpy"}, imported  # no vgim module: no cycle
    assert vgim.frames.SAMPLE_RATE == 16_000
    assert vgim.model.geometry.SAMPLE_RATE is vgim.frames.SAMPLE_RATE
