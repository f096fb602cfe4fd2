"""``optprompt new-plugin NAME``: a strategy plugin package that installs and passes the
conformance suite as it is written, to be changed from there."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from optprompt.errors import OptpromptError

__all__ = ["scaffold_plugin", "PLUGIN_FILES"]

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "An optprompt strategy plugin: {name}."
requires-python = ">=3.11"
dependencies = ["optprompt>={optprompt_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This makes it a plugin: optprompt loads the module named here and calls its @hookimpl
# functions. The key is the plugin's name in `optprompt plugins`.
[project.entry-points.optprompt]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_README = """\
# {dist}

An optprompt strategy plugin adding the strategy `{name}`.

    pip install -e .            # optprompt finds it through its entry point
    optprompt plugins {name}    # its options, defaults and descriptions
    pytest                      # optprompt's conformance suite on it

Use it in a study file:

```yaml
strategy:
  name: {name}
  trials: 20
```

Change `propose` in `{package}/strategy.py`; docs/writing-a-strategy-plugin.md in
optprompt's repository explains the contract and the conformance suite.
"""

_INIT = '''\
"""The optprompt plugin registering the strategy ``{name}``."""

from optprompt.plugins import hookimpl
from {package}.strategy import {cls}, {cls}Config

__all__ = ["{cls}", "{cls}Config"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register({cls})
'''

_STRATEGY = '''\
"""``{name}``: an instruction, a template and a few demonstrations, chosen by Optuna."""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, StrategyConfig, StrategyContext

if TYPE_CHECKING:
    import optuna

__all__ = ["{cls}", "{cls}Config"]


class {cls}Config(StrategyConfig):
    """Options of ``{name}`` (all optional; unknown keys are errors)."""

    instructions: list[str] = Field(
        default_factory=lambda: ["Answer with one of: {{labels}}.", "Read the text, then give its label."],
        description="Instructions tried besides the baseline's ({{labels}} becomes the answer words).",
    )
    templates: list[str] = Field(
        default_factory=lambda: ["Text: {{input}}\\nAnswer:"],
        description="Input templates tried besides the baseline's; each holds {{input}} once.",
    )
    max_demos: int = Field(2, ge=0, le=16, description="Most demonstrations (train examples) in one prompt.")

    @field_validator("templates")
    @classmethod
    def _one_input(cls, value: list[str]) -> list[str]:
        for t in value:
            if t.count("{{input}}") != 1:
                raise ValueError(f"template {{t!r}} must hold {{{{input}}}} exactly once")
        return value


class {cls}(BaseStrategy):
    """Searches an instruction, a template and a few demonstrations."""

    name = "{name}"
    config_class = {cls}Config
    config: {cls}Config

    def __init__(self, config: {cls}Config, context: StrategyContext) -> None:
        super().__init__(config, context)
        if context.task.generates:
            raise ConfigError("strategy '{name}' ranks answers; this task generates them")
        self.pool = [ex.id for ex in context.task.train]  # demonstrations come from train only

    def propose(self, trial: optuna.Trial) -> PromptCandidate:
        base = self.context.baseline
        instruction = trial.suggest_categorical("instruction", [base.instruction, *self.config.instructions])
        template = trial.suggest_categorical("template", [base.template, *self.config.templates])
        k = trial.suggest_int("demos", 0, min(self.config.max_demos, len(self.pool)))
        # Own randomness, seeded from the study's seed and a value Optuna drew: a resumed or
        # repeated run draws the same demonstrations.
        draw = trial.suggest_int("demo_draw", 0, 999)
        demo_ids = tuple(random.Random(f"{{self.context.seed}}-{{draw}}").sample(self.pool, k))
        if not instruction.strip() and not demo_ids:
            raise CandidateRejected("an empty instruction without demonstrations tells the model nothing")
        return dataclasses.replace(base, instruction=instruction, template=template, demo_ids=demo_ids)

    def summary(self, study: optuna.Study) -> dict[str, Any]:
        """What result.json shows under strategy_summary."""
        return {{"demonstration_pool": len(self.pool)}}
'''

_TEST = '''\
"""optprompt's conformance suite on ``{name}`` (install the package first: pip install -e .)."""

from optprompt.testing import StrategyConformanceTests


class Test{cls}(StrategyConformanceTests):
    strategy_name = "{name}"
    strategy_options = {{"trials": 5, "max_demos": 2}}
'''

#: Relative path -> template, in the order they are written.
PLUGIN_FILES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "{package}/__init__.py": _INIT,
    "{package}/strategy.py": _STRATEGY,
    "tests/test_conformance.py": _TEST,
}


def scaffold_plugin(name: str, directory: str | Path = ".") -> tuple[Path, list[str]]:
    """Write the package ``optprompt-<name>`` (strategy ``name``) under ``directory``.

    Returns the package directory and the files written (relative to it).

    Raises:
        OptpromptError: ``name`` is not a lower-case Python identifier, or the package
            directory exists already.
    """
    from optprompt._version import __version__

    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise OptpromptError(
            f"plugin name {name!r}: use a lower-case Python identifier (letters, digits, underscores), "
            "e.g. my_strategy; it becomes strategy.name in study files"
        )
    dist = "optprompt-" + name.replace("_", "-")
    package = "optprompt_" + name
    cls = "".join(part.capitalize() for part in name.split("_") if part)
    root = Path(directory) / dist
    if root.exists():
        raise OptpromptError(f"{root} exists already; choose another --dir or remove it")
    major_minor = ".".join(__version__.split(".")[:2])
    values = {"name": name, "dist": dist, "package": package, "cls": cls, "optprompt_version": major_minor}
    written = []
    for rel, template in PLUGIN_FILES.items():
        path = root / rel.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
        written.append(str(path.relative_to(root)))
    return root, written
