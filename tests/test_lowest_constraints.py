"""tools/lowest_constraints.py: the lower bounds `make test-oldest` installs."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / "tools" / "lowest_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_every_dependency_has_a_lower_bound_that_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = _tool().lower_bounds(reqs)
    assert len(pins) == len(reqs)
    assert "transformers==5.6" in pins and "peft==0.18" in pins
    assert all("==" in p and "<" not in p for p in pins)


def test_upper_bounds_are_dropped_and_skips_honoured() -> None:
    pins = _tool().lower_bounds(
        ["transformers>=5.0,<5.40", "torch>=2.5", "gguf[extra] >= 0.10 ; python_version>'3'"], skip={"torch"}
    )
    assert pins == ["transformers==5.0", "gguf==0.10"]


def test_a_requirement_without_a_floor_is_named() -> None:
    with pytest.raises(ValueError, match="'rich' has no single '>=' lower bound"):
        _tool().lower_bounds(["rich"])
