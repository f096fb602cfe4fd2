from __future__ import annotations

from pathlib import Path

import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, StrategyContext
from optprompt.study import StudyRunner


class _Rewriter(BaseStrategy):
    """Asks the study's generator for a new instruction each trial."""

    name = "rewriter_test"
    seen: list[str] = []

    def propose(self, trial):  # type: ignore[no-untyped-def]
        gen = self.context.generator()
        text = gen.generate(
            [f"Rewrite: {self.context.baseline.instruction}"], max_new_tokens=5, temperature=0.7, seed=trial.number
        )[0]
        _Rewriter.seen.append(text)
        return PromptCandidate(
            instruction=f"{self.context.baseline.instruction} {text}".strip(),
            template=self.context.baseline.template,
            verbalizer=self.context.baseline.verbalizer,
        )


class _Plugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_Rewriter)


def test_strategy_generates_with_the_task_model(study_dict: dict, tiny_model) -> None:
    _Rewriter.seen.clear()
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_Plugin()]))
    spec = spec_from_dict({**study_dict, "strategy": {"name": "rewriter_test", "trials": 3}})
    StudyRunner(spec, plugins=plugins, model=tiny_model, progress=False).run().to_dict()
    assert len(_Rewriter.seen) >= 2
    # seeded sampling: the same seed gives the same rewrite
    again = StudyRunner(
        spec_from_dict(
            {
                **study_dict,
                "output": str(Path(study_dict["output"]) / "b"),
                "strategy": {"name": "rewriter_test", "trials": 3},
            }
        ),
        plugins=plugins,
        model=tiny_model,
        progress=False,
    )
    first = list(_Rewriter.seen)
    _Rewriter.seen.clear()
    again.run()
    assert _Rewriter.seen == first


def test_generator_outside_a_study_is_a_clear_error() -> None:
    from optprompt.tasks import Task

    ctx = StrategyContext(
        task=Task("t", "classification", [], [], []),
        seed=0,
        baseline=PromptCandidate(instruction="x", template="{input}"),
    )
    with pytest.raises(ConfigError, match="needs a model to generate"):
        ctx.generator()
