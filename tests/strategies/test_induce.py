"""Instructions induced from train demonstrations (APE-style) join template search's choices."""

from __future__ import annotations

import optuna
from optprompt_plugins.template_search.induce import induce_instructions, induction_prompt

from optprompt.config import spec_from_dict
from optprompt.study import StudyRunner
from optprompt.tasks.task import Example, Task


class _Generator:
    def __init__(self, outputs: list[str]) -> None:
        self.outputs = outputs
        self.prompts: list[str] = []

    def generate(self, prompts, **kwargs):  # type: ignore[no-untyped-def]
        self.prompts.extend(prompts)
        return self.outputs[: len(prompts)]


def _task() -> Task:
    train = [
        Example(id=f"t{i}", input=text, target=lbl, target_index=int(lbl == "positive"), row=str(i))
        for i, (text, lbl) in enumerate(
            [("the soup was cold and bland", "negative"), ("lovely staff and a great view", "positive")] * 4
        )
    ]
    return Task(
        name="t",
        type="classification",
        train=train,
        dev=train[:2],
        test=train[:2],
        labels=("negative", "positive"),
        verbalizer={"negative": "bad", "positive": "good"},
        instruction="Classify.",
        template="Input: {input}\nAnswer:",
        metric="accuracy",
    )


def test_induction_cleans_filters_and_dedupes() -> None:
    task = _task()
    gen = _Generator(
        [
            "Here is the instruction: Decide whether the review is happy or unhappy.",
            "",
            "Decide whether the review is happy or unhappy.",
            "Output: the soup was cold and bland",
        ]
    )
    induced = induce_instructions(
        task, gen, count=4, demos=3, seed=0, words={"negative": "bad", "positive": "good"}, known=["Classify."]
    )
    assert induced.instructions == ["Decide whether the review is happy or unhappy. Answer with one of: {labels}."]
    assert sum(induced.rejected.values()) == 3 and induced.rejected.get("unchanged") == 1
    assert len(gen.prompts) == 4
    # Each question shows train pairs with the answer words, seeded: the same every run.
    assert "Output: bad" in gen.prompts[0] or "Output: good" in gen.prompts[0]
    again = _Generator(gen.outputs)
    induce_instructions(task, again, count=4, demos=3, seed=0, words={"negative": "bad", "positive": "good"})
    assert again.prompts == gen.prompts


def test_induction_prompt_lists_the_pairs() -> None:
    text = induction_prompt([("a", "x"), ("b", "y")])
    assert "Input: a\nOutput: x\n\nInput: b\nOutput: y" in text and text.endswith("one sentence.")


def test_a_study_searches_over_induced_instructions(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    raw = {**study_dict, "strategy": {**study_dict["strategy"], "induce": 3, "trials": 4}}
    spec = spec_from_dict(raw)
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    induced = result["strategy_summary"]["induced"]
    assert len(induced["instructions"]) + sum(induced["rejected"].values()) == 3
    assert result["strategy"]["budget"]["rewriter_calls"] == 3
    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{spec.output}/study.db")
    searched = [t for t in study.trials if "instruction" in t.distributions]
    choices = searched[0].distributions["instruction"].choices
    assert all(i in choices for i in induced["instructions"])
