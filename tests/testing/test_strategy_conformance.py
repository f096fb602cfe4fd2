"""optprompt.testing's conformance suite on the built-in strategies.

Each built-in strategy gets the same ``StrategyConformanceTests`` subclass a plugin author
writes. A built-in that is not registered yet (no ``optprompt`` entry point) is skipped
with a reason.
"""

from __future__ import annotations

import pytest

from optprompt.plugins import load_plugins
from optprompt.testing import StrategyConformanceTests


def _skip_unless_registered(name: str) -> None:
    known = load_plugins().strategies
    if name not in known:
        pytest.skip(
            f"strategy {name!r} is not registered (no `optprompt` entry point names it; known: "
            f"{', '.join(known.names())}): add it to pyproject.toml's [project.entry-points.optprompt]"
        )


class TestTemplateSearch(StrategyConformanceTests):
    strategy_name = "template_search"
    strategy_options = {"trials": 6, "max_demos": 2, "demo_pool": 4}


class TestTemplateSearchKnn(StrategyConformanceTests):
    """Demonstrations fixed or retrieved per input (kNN)."""

    strategy_name = "template_search"
    strategy_options = {"trials": 6, "max_demos": 2, "demo_pool": 4, "demos": ["fixed", "knn"], "knn": {"pool": 8}}


@pytest.mark.filterwarnings("ignore:strategy 'evolution' is experimental")
class TestEvolution(StrategyConformanceTests):
    strategy_name = "evolution"
    strategy_options = {"population": 3, "generations": 2, "max_new_tokens": 12}

    @classmethod
    def setup_class(cls) -> None:
        _skip_unless_registered(cls.strategy_name)
        super().setup_class()


class TestSoftPrompt(StrategyConformanceTests):
    strategy_name = "soft_prompt"
    strategy_options = {"trials": 4, "methods": ["prompt_tuning", "lora"], "epochs": [1, 1], "virtual_tokens": [4]}


def test_evolution_case_options_fit_its_config() -> None:
    """The evolution case's options are valid even while the case itself is skipped."""
    evolution = pytest.importorskip("optprompt_plugins.evolution")
    config = evolution.EvolutionConfig.model_validate(dict(TestEvolution.strategy_options))
    assert config.population == 3


@pytest.mark.filterwarnings("ignore:strategy '(evolution|auto)' is experimental")
class TestAuto(StrategyConformanceTests):
    strategy_name = "auto"
    strategy_options = {
        "trials": 6,
        "template_search": {"max_demos": 1, "demo_pool": 4},
        "evolution": {"population": 3, "generations": 1, "operators": "edit"},
        "soft_prompt": {"methods": ["lora"], "epochs": [1, 1], "lora_r": [4]},
    }
