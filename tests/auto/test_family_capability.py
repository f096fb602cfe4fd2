"""``auto``'s families come from a capability, not from names: every registered strategy
that declares :class:`~optprompt.strategies.Family` is one, a third-party one included, and
its name is a key of ``auto``'s options."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
import pytest
from optprompt_plugins.auto import Auto
from optprompt_plugins.auto.config import families_of

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError
from optprompt.plugins import get_plugin_manager, hookimpl, load_plugins
from optprompt.strategies import BaseStrategy, Family
from optprompt.study import StudyRunner
from optprompt.trials import records

pytestmark = pytest.mark.filterwarnings("ignore:strategy '(evolution|auto)' is experimental")


class Suffixes(BaseStrategy):
    """A third-party strategy: the baseline instruction with one of three suffixes."""

    name = "suffixes"
    family = Family(cost=2)  # as dear as evolution: between template search and soft prompts, by name

    def propose(self, trial: Any) -> Any:
        suffix = trial.suggest_categorical("suffix", ["", " Answer briefly.", " Think of the tone."])
        base = self.context.baseline
        return dataclasses.replace(base, instruction=base.instruction + suffix)


class SuffixesPlugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(Suffixes)


@pytest.fixture
def with_suffixes():  # type: ignore[no-untyped-def]
    return load_plugins(get_plugin_manager(extra_plugins=[SuffixesPlugin()]))


def test_the_built_in_families_are_the_strategies_that_declare_the_capability(plugins) -> None:  # type: ignore[no-untyped-def]
    families = families_of([e.obj for e in plugins.strategies])
    assert list(families) == ["template_search", "evolution", "soft_prompt"]  # cheapest first
    config = Auto.config_class_for([e.obj for e in plugins.strategies])
    assert config.default_shares == {"template_search": 0.25, "evolution": 0.25, "soft_prompt": 0.5}
    assert {"template_search", "evolution", "soft_prompt"} <= set(config.model_fields)
    assert "auto" not in families and "auto" not in config.model_fields


def test_a_third_party_strategy_declaring_the_capability_joins_auto(with_suffixes, study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    families = families_of([e.obj for e in with_suffixes.strategies])
    assert list(families) == ["template_search", "evolution", "suffixes", "soft_prompt"]
    strategy = {"name": "auto", "trials": 6, "evolution": False, "soft_prompt": False, "suffixes": {}}
    strategy["template_search"] = {"max_demos": 1, "demo_pool": 4}
    spec = spec_from_dict({**study_dict, "strategy": strategy})
    runner = StudyRunner(spec, plugins=with_suffixes, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    assert list(runner.session.strategy.families) == ["template_search", "suffixes"]
    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
    seen = [t.family for t in records(study) if t.family]
    assert "suffixes" in seen and seen.index("template_search") < seen.index("suffixes")
    assert list(result["families"]) == ["template_search", "suffixes"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("sufixes", r"strategy\.sufixes: unknown key \(did you mean 'suffixes'\?\)"),
        ("template_serch", r"strategy\.template_serch: unknown key \(did you mean 'template_search'\?\)"),
    ],
)
def test_an_unknown_family_key_is_an_error_naming_it(with_suffixes, study_dict, tiny_model, key, message) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict({**study_dict, "strategy": {"name": "auto", "trials": 4, key: {}}})
    with pytest.raises(ConfigError, match=message):
        StudyRunner(spec, plugins=with_suffixes, model=tiny_model, progress=False).setup()


def test_a_family_that_is_not_registered_is_an_unknown_key(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict({**study_dict, "strategy": {"name": "auto", "trials": 4, "suffixes": {}}})
    with pytest.raises(ConfigError, match=r"strategy\.suffixes: unknown key"):
        StudyRunner(spec, model=tiny_model, progress=False).setup()
