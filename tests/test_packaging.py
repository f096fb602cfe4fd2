"""Every package directory must be listed in pyproject.toml, or installs would miss it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = set()
    for top, name in (("optprompt", "optprompt"), ("plugins", "optprompt_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            if "examples" in rel.parts:  # example plugins are separate distributions
                continue
            found.add(".".join((name, *rel.parts)))
    assert found == listed
