"""Multiple choice whose examples all offer the same options is searched as classification
(``task.options_as_labels``, on by default); options that differ per example keep the
multiple-choice form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.config.spec import TaskSpec
from optprompt.study import StudyRunner
from optprompt.tasks import build_task

OPTIONS = ["great", "awful", "so-so"]


def _mc(path: Path, n: int = 36, *, vary: bool = False, shuffle: bool = True) -> Path:
    rows = []
    for i in range(n):
        opts = list(OPTIONS)
        if shuffle and i % 4 == 3:
            opts = opts[i % 3 :] + opts[: i % 3]  # the same set, in another order
        if vary and i == 5:
            opts = ["great", "awful", "meh"]
        answer = OPTIONS[i % 3] if not (vary and i == 5) else "meh"
        rows.append({"id": f"q{i}", "q": f"review number {i} was {answer}", "options": opts, "answer": answer})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spec(path: Path, **kw) -> TaskSpec:
    return TaskSpec(data=str(path), type="multiple_choice", input="q", label="answer", options="options", id="id", **kw)


def test_shared_options_become_labels(tmp_path: Path, plugins) -> None:
    task = build_task(_spec(_mc(tmp_path / "mc.jsonl")), plugins=plugins)
    assert task.type == "classification" and task.given_type == "multiple_choice"
    assert task.labels == ("great", "awful", "so-so")  # the order most examples list them in
    assert task.verbalizer == {o: o for o in OPTIONS}
    for ex in task.train + task.dev + task.test:
        assert ex.options == task.labels  # listed in one order, as an exported card lists them
        assert task.labels[ex.target_index] == ex.target and ex.target in ex.input
    summary = task.summary()
    assert summary["type"] == "classification" and summary["given_type"] == "multiple_choice"


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (lambda p: _mc(p, vary=True), {}),  # one example offers other options
        (lambda p: _mc(p), {"options_as_labels": False}),  # turned off
    ],
)
def test_other_multiple_choice_keeps_its_form(tmp_path: Path, plugins, make, options) -> None:
    task = build_task(_spec(make(tmp_path / "mc.jsonl"), **options), plugins=plugins)
    assert task.type == "multiple_choice" and task.labels == () and task.given_type == ""
    assert "given_type" not in task.summary()


def test_numeric_options_keep_the_multiple_choice_form(tmp_path: Path, plugins) -> None:
    rows = [{"q": f"{i} + 1 = ?", "options": ["1", "2", "3"], "answer": str(1 + i % 3)} for i in range(30)]
    f = tmp_path / "n.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = build_task(
        TaskSpec(data=str(f), type="multiple_choice", input="q", label="answer", options="options"), plugins=plugins
    )
    assert task.type == "multiple_choice"


def test_study_searches_the_classification_form_and_its_card_predicts_without_options(
    tmp_path, tiny_model_dir, tiny_model, study_dict
) -> None:  # type: ignore[no-untyped-def]
    data = _mc(tmp_path / "mc.jsonl", n=45)
    raw = {
        **study_dict,
        "task": {
            "data": str(data),
            "type": "multiple_choice",
            "input": "q",
            "label": "answer",
            "options": "options",
            "id": "id",
            "template": "Review: {input}\nOptions:\n{options}\nAnswer:",
        },
        "strategy": {"name": "template_search", "trials": 6, "max_demos": 1, "demo_pool": 4},
        "selection": {"holdout": 0},
    }
    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    result = runner.run().to_dict()
    assert result["task"]["type"] == "classification" and result["task"]["given_type"] == "multiple_choice"
    # The template searched lists the options; a classification search tries answer words.
    templates = set(runner.strategy.templates)
    assert "Question: {input}\nOptions:\n{options}\nAnswer:" in templates and "Input: {input}\nAnswer:" in templates
    # The baseline's card (its template lists the options) predicts from texts alone, as the study scored it.
    from optprompt.kinds.prompt import CardPredictor, card_from_result

    card = card_from_result(result, result["baseline"])
    predictor = CardPredictor(card, tiny_model)
    assert "- great\n- awful\n- so-so" in predictor.prompt("review number 1 was awful")
    examples = runner.task.test
    preds = predictor.predict([e.input for e in examples])  # no options needed: they are the labels
    assert sum(p == e.target for p, e in zip(preds, examples)) / len(examples) == result["baseline"]["test"]["value"]
    # So does the exported winner, whatever form won.
    out = tmp_path / "winner"
    assert cli_main(["export", raw["output"], "--to", str(out)]) == 0
    winner = optprompt.load(out, tiny_model)
    preds = winner.predict([e.input for e in examples])
    assert sum(p == e.target for p, e in zip(preds, examples)) / len(examples) == result["best"]["test"]["value"]
