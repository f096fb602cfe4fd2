"""The ``prompt_adapter`` kind: an adapter trained under a discrete prompt, in whole studies
on the tiny model (trained with the prompt's text, exported as one card + adapter, reloaded
exactly) and as candidates (provenance, round trip, clear errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

import optprompt
from optprompt.adapters import MANIFEST_FILE, SoftCandidate
from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.config.spec import SelectionSpec
from optprompt.errors import ConfigError
from optprompt.kinds import EXPORT_FILE, candidate_kinds, export_kind
from optprompt.kinds.prompt_adapter import PromptAdapterCandidate
from optprompt.plugins import load_plugins
from optprompt.prompts import PromptCandidate
from optprompt.study import StudyRunner
from optprompt.trials import keys as attrs

LORA = {"methods": ["lora"], "epochs": [1, 1], "lora_r": [4], "batch_size": 8}
PROMPT = {
    "instruction": "Is the review positive or negative?",
    "template": "Review: {input}\nVerdict:",
    "demo_ids": ["train-1", "train-2"],
    "verbalizer": {"positive": "good", "negative": "bad"},
}


def _splits(tmp_path: Path) -> dict[str, str]:
    """Given splits whose ids say where they are (``train-3``, ``dev-0``...)."""
    out = {}
    for split, n, seed in (("train", 24, 0), ("dev", 12, 1), ("test", 12, 2)):
        raw = write_sentiment_jsonl(tmp_path / f"raw-{split}.jsonl", n=n, seed=seed)
        rows = [json.loads(line) for line in raw.read_text().splitlines()]
        for i, r in enumerate(rows):
            r["id"] = f"{split}-{i}"
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out[split] = str(path)
    return out


def _spec(tmp_path: Path, tiny_model_dir: Path, name: str = "pa", **strategy):  # type: ignore[no-untyped-def]
    raw = soft_study_dict(tmp_path / "unused.jsonl", tiny_model_dir, tmp_path / name, **strategy)
    raw["task"]["data"] = _splits(tmp_path)
    raw["selection"] = SelectionSpec(holdout=0).model_dump()  # the best on dev wins: its export is checked
    return spec_from_dict(raw)


def test_candidate_round_trip_provenance_and_hash() -> None:
    prompt = PromptCandidate(
        instruction="Say it.", template="Q: {input}\nA:", verbalizer=(("a", "yes"), ("b", "no")), calibration="mean"
    )
    cand = PromptAdapterCandidate.under(prompt, "lora", {"lr": 1e-3, "epochs": 1, "lora_r": 4}, trial=3, dev=0.5)
    assert cand.parent_map == {"hash": prompt.hash, "trial": 3, "dev": 0.5}
    assert cand.calibration == "none"  # trained around the prompt's text; its calibration is not kept
    data = cand.to_dict()
    assert data["kind"] == "prompt_adapter" and data["parent"]["hash"] == prompt.hash
    back = candidate_kinds(load_plugins()).from_dict(json.loads(json.dumps(data)))
    assert isinstance(back, PromptAdapterCandidate) and back == cand and back.hash == cand.hash
    # The same text and adapter as a plain trained adapter is another candidate.
    plain = SoftCandidate.create(prompt, "lora", {"lr": 1e-3, "epochs": 1, "lora_r": 4})
    assert plain.hash != cand.hash
    assert candidate_kinds(load_plugins()).summary(data) == "lora, r 4, lr 0.001, 1 epochs, under trial 3's prompt"
    with pytest.raises(ConfigError, match="parent needs a 'hash'"):
        PromptAdapterCandidate(instruction="x", template="{input}", method="lora", params=(("lora_r", 4),))


def test_study_trains_under_a_written_prompt_and_exports_one_card_and_adapter(
    tmp_path, tiny_model_dir, tiny_model, capsys
) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(tmp_path, tiny_model_dir, trials=3, template=PROMPT, **LORA)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    best = result["best"]
    assert best["candidate"]["kind"] == "prompt_adapter", "the trained candidate should beat the untrained baseline"
    cand = PromptAdapterCandidate.from_dict(best["candidate"])
    assert (cand.instruction, cand.template, cand.demo_ids) == (
        PROMPT["instruction"],
        PROMPT["template"],
        ("train-1", "train-2"),
    )
    assert cand.verbalizer_map == PROMPT["verbalizer"] and cand.parent_map["source"] == "study file"
    # Trained without its own demonstrations (they are in every prompt it sees).
    manifest = json.loads((Path(spec.output) / best["artifact"] / MANIFEST_FILE).read_text())
    assert manifest["training"]["train_examples"] == 22
    assert manifest["card"]["instruction"] == PROMPT["instruction"]
    assert len(manifest["card"]["demos"]) == 2

    out = tmp_path / "export"
    assert cli_main(["export", spec.output, "--to", str(out)]) == 0
    assert json.loads((out / EXPORT_FILE).read_text())["kind"] == "prompt_adapter"
    assert export_kind(out) == "prompt_adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", MANIFEST_FILE, "prompt_card.json"} <= {
        f.name for f in out.iterdir()
    }
    assert cli_main(["show", spec.output]) == 0
    assert "trained under" in capsys.readouterr().out
    from optprompt.report import write_report

    page = write_report(spec.output).read_text()
    assert "prompt + adapter: " in page and "Learning curves" in page

    # One call loads card + adapter back; predictions are the study's, on dev and test.
    with optprompt.load(out, tiny_model) as predictor:
        assert isinstance(predictor.candidate, PromptAdapterCandidate)
        assert "Review: " in predictor.prompt("some text") and "Verdict:" in predictor.prompt("some text")
        for split in ("dev", "test"):
            examples = getattr(runner.task, split)
            preds = predictor.predict([e.input for e in examples])
            accuracy = sum(p == e.target for p, e in zip(preds, examples)) / len(examples)
            assert accuracy == best[split]["value"]
        reloaded = predictor.loglikelihoods([e.input for e in runner.task.test])
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    by_id = {e.id: i for i, e in enumerate(runner.task.test)}
    for p in (p for p in logged if p["role"] == "best"):
        # The card lists answers in the written verbalizer's order, the study in the task's label order.
        assert sorted(reloaded[by_id[p["id"]]]) == pytest.approx(sorted(p["logliks"]), abs=1e-5)


def test_template_from_a_finished_study_names_its_winner(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    discrete_raw = soft_study_dict(tmp_path / "unused.jsonl", tiny_model_dir, tmp_path / "discrete")
    discrete_raw["task"]["data"] = _splits(tmp_path)
    discrete_raw["name"] = "discrete"
    discrete_raw["strategy"] = {"name": "template_search", "trials": 4, "max_demos": 1}
    found = StudyRunner(spec_from_dict(discrete_raw), model=tiny_model, progress=False).run().to_dict()
    spec = _spec(tmp_path, tiny_model_dir, trials=2, template=str(tmp_path / "discrete"), **LORA)
    StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    import optuna

    trials = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials
    trained = trials[1].user_attrs[attrs.CANDIDATE]
    assert trained["kind"] == "prompt_adapter"
    assert trained["parent"] == {"hash": found["best"]["hash"], "study": "discrete"}
    for key in ("instruction", "template", "demo_ids", "verbalizer"):
        assert trained[key] == found["best"]["candidate"][key]


def test_use_template_proposes_prompt_adapters_naming_the_prompt(soft_runner) -> None:  # type: ignore[no-untyped-def]
    import optuna

    strategy = soft_runner.strategy
    study = optuna.create_study()
    assert isinstance(strategy.propose(study.ask()), SoftCandidate)  # the baseline: plain trained adapters
    winner = PromptCandidate(
        instruction="Decide.", template="T: {input}\nA:", verbalizer=(("positive", "yes"), ("negative", "no")),
        calibration="content_free",
    )  # fmt: skip
    strategy.use_template(winner, trial=7, dev=0.75)
    cand = strategy.propose(study.ask())
    assert isinstance(cand, PromptAdapterCandidate)
    assert cand.parent_map == {"hash": winner.hash, "trial": 7, "dev": 0.75}
    assert (cand.instruction, cand.template, cand.calibration) == ("Decide.", "T: {input}\nA:", "none")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"instructions": "x"}, "strategy.template: unknown keys \\['instructions'\\]"),
        ({"template": "no placeholder"}, "strategy.template: not a valid prompt"),
        ({"demo_ids": ["nope"]}, "demonstration 'nope', which is not in this task's data"),
        ({"demo_ids": ["test-0"]}, "demonstration 'test-0', which is not a train example here"),
    ],
)
def test_a_bad_written_prompt_is_a_clear_error(tmp_path, tiny_model_dir, tiny_model, template, message) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(tmp_path, tiny_model_dir, trials=2, template=template, **LORA)
    with pytest.raises(ConfigError, match=message):
        StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
