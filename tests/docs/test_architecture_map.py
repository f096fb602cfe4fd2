"""docs/architecture.md maps the code: every module of ``optprompt/study/`` (its subpackages
included) and every package of ``optprompt/`` and ``plugins/``. Adding one without a line
in the map fails here, naming what is missing."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _packages(top: Path) -> list[str]:
    return sorted(
        str(p.parent.relative_to(ROOT)) + "/"
        for p in top.rglob("__init__.py")
        # a folder with a dash is a distribution of its own (the example plugin), not a package
        if "__pycache__" not in p.parts and p.parent != top and "-" not in str(p.parent.relative_to(top))
    )


def test_every_study_module_is_in_the_map() -> None:
    study = ROOT / "optprompt" / "study"
    modules = sorted(str(p.relative_to(study)) for p in study.rglob("*.py") if p.name != "__init__.py")
    missing = [m for m in modules if f"`{m}`" not in DOC]
    assert not missing, f"docs/architecture.md does not map these modules of optprompt/study/: {missing}"


def test_every_package_is_in_the_map() -> None:
    packages = _packages(ROOT / "optprompt") + _packages(ROOT / "plugins")
    missing = [p for p in packages if p not in DOC]
    assert not missing, f"docs/architecture.md has no line for these packages: {missing}"


def test_the_map_names_no_module_that_is_gone() -> None:
    study = ROOT / "optprompt" / "study"
    import re

    table = DOC[DOC.index("The jobs inside `optprompt/study/`") :]
    table = table[: table.index("\n\n", table.index("| module |"))]
    named = re.findall(r"^\| `([\w/]+\.py)` \|", table, flags=re.M)
    gone = [m for m in named if not (study / m).is_file()]
    assert named and not gone, f"docs/architecture.md maps modules that do not exist: {gone}"
