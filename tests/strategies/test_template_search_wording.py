"""Prompts a person would ship: one casing convention across the answer words, and no
instruction asking for one word when the answers are phrases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.config import spec_from_dict
from optprompt.prompts import CASINGS, apply_casing, claims_one_word, extend_instruction, fits_answers
from optprompt.study import StudyRunner
from optprompt.trials import records


def test_wording_rules() -> None:
    assert claims_one_word("Read the input and answer with one word: {labels}.")
    assert claims_one_word("Reply with a single word.") and not claims_one_word("Answer with one of: {labels}.")
    assert fits_answers("Answer with one word.", ["yes", "no"])
    assert not fits_answers("Answer with one word.", ["add to playlist", "get weather"])
    assert [apply_casing("add to playlist", c) for c in CASINGS] == [
        "add to playlist",
        "Add to playlist",
        "add to playlist",
    ]
    assert apply_casing("Get Weather", "lower") == "get weather"
    with pytest.raises(ValueError, match="casing 'shout'"):
        apply_casing("x", "shout")


def test_an_instruction_variant_never_says_twice_what_the_baseline_says() -> None:
    base = "Which intent is this request? Answer with one of: {labels}."
    assert extend_instruction(base, "{base} Answer with one of: {labels}.") is None  # the same sentence
    assert extend_instruction(base, "{base} Use only these labels: {labels}.") is None  # a second label list
    assert extend_instruction(base, "{base} Reply with the answer only.") == f"{base} Reply with the answer only."
    assert extend_instruction("Classify the review.", "{base} Answer with one of: {labels}.") == (
        "Classify the review. Answer with one of: {labels}."
    )
    assert extend_instruction(base, "Classify the text: {labels}.") == "Classify the text: {labels}."  # no {base}


def test_template_search_keeps_one_casing_and_instructions_that_fit(tmp_path: Path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    labels = ["add to playlist", "get weather", "Book restaurant"]
    rows = [{"id": str(i), "text": f"request number {i}", "label": labels[i % 3]} for i in range(48)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = spec_from_dict(
        {
            "name": "wording",
            "model": str(tiny_model_dir),
            "output": str(tmp_path / "out"),
            "task": {"data": str(data), "input": "text", "label": "label", "id": "id"},
            "strategy": {"name": "template_search", "trials": 10, "max_demos": 1, "demo_pool": 4},
            "selection": {"holdout": 0},
            "scoring": {"device": "cpu"},
        }
    )
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    # The default instruction lists the labels: no variant lists them a second time.
    assert all(i.count("{labels}") <= 1 for i in runner.setup().strategy.instructions)
    runner.run()
    proposed = [r.candidate for r in records_of(spec.output) if r.candidate and not r.is_baseline]
    assert len(proposed) >= 5
    for cand in proposed:
        pairs = [tuple(p) for p in cand["verbalizer"]]
        assert sorted(lbl for lbl, _ in pairs) == sorted(labels)
        casings = {c for c in CASINGS if all(apply_casing(lbl, c) == w for lbl, w in pairs)}
        assert casings, f"answer words {pairs} do not share one casing"
        assert not claims_one_word(cand["instruction"]), cand["instruction"]


def records_of(output: str):  # type: ignore[no-untyped-def]
    import optuna

    study = optuna.load_study(study_name="wording", storage=f"sqlite:///{Path(output) / 'study.db'}")
    return records(study)
