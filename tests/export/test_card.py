from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.export import export_card, load_card
from optprompt.prompts import PromptCandidate, PromptRenderer
from optprompt.study import run_study
from optprompt.tasks import Example


def test_exported_card_reproduces_the_scored_prompt(study_dict: dict, tiny_model, tmp_path: Path) -> None:
    spec = spec_from_dict({**study_dict, "strategy": {**study_dict["strategy"], "trials": 8}})
    result = run_study(spec, model=tiny_model, progress=False).to_dict()
    path = export_card(spec.output, tmp_path / "card")
    assert path.name == "prompt_card.json"
    card = load_card(tmp_path / "card")
    assert card.scores["test"]["value"] == result["best"]["test"]["value"]
    assert card.baseline_scores["dev"]["value"] == result["baseline"]["dev"]["value"]
    assert card.model["fingerprint"] == tiny_model.fingerprint
    assert card.seed == 0 and card.study == "tiny-study"
    assert (tmp_path / "card" / "prompt.txt").read_text() == result["best"]["prompt"] + "\n"

    # The card formats a new input exactly as optprompt rendered it when scoring.
    from optprompt.plugins import load_plugins
    from optprompt.tasks import build_task

    task = build_task(spec.task, plugins=load_plugins(), seed=spec.seed, name=spec.name)
    cand = PromptCandidate.from_dict(result["best"]["candidate"])
    renderer = PromptRenderer(task, tiny_model.chat_formatter())
    new = Example("new", "the staff was lovely", task.labels[0], 0)
    req = renderer.request(cand, new)
    assert card.render(new.input, tokenizer=tiny_model.tokenizer) == req.prefix + req.suffix
    assert card.format(new.input) == renderer.user_text(cand, new, new.input)


def test_card_parse_and_predict() -> None:
    from optprompt.export import PromptCard

    card = PromptCard(
        instruction="Say good or bad.",
        template="Input: {input}\nAnswer:",
        demos=[],
        verbalizer={"neg": "bad", "pos": "good"},
        task_type="classification",
        calibration={"method": "mean", "offsets": [-2.0, -0.1]},
    )
    assert card.parse(" Good.\nmore") == "pos"
    assert card.parse("bad") == "neg"
    assert card.parse("no idea") is None
    # raw scores prefer pos; the offsets (pos is favoured a priori) flip it
    assert card.predict_from_logliks({"neg": -1.5, "pos": -1.2}) == "neg"
    with pytest.raises(OptpromptError, match="chat template"):
        PromptCard(**{**card.__dict__, "chat": True}).render("x")


def test_load_card_errors(tmp_path: Path) -> None:
    with pytest.raises(OptpromptError, match="prompt card not found"):
        load_card(tmp_path)
    (tmp_path / "prompt_card.json").write_text(json.dumps({"format": 1, "instruction": "x", "bogus": 1}))
    with pytest.raises(OptpromptError, match="unknown prompt card key.*bogus"):
        load_card(tmp_path)


def test_export_of_unfinished_study(tmp_path: Path) -> None:
    with pytest.raises(OptpromptError, match=r"result.json.*not found|not found.*result.json"):
        export_card(tmp_path, tmp_path / "card")
