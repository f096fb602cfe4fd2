"""``distill`` at the end of a study: the option, the ``distillation`` part of result.json
(tokens per prediction, test scores, paired test), its export and loading back, and a
study run again reading the recorded distillation back instead of training again."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

import optprompt
from optprompt.adapters import METHODS
from optprompt.config import DistillSpec, spec_from_dict
from optprompt.config.spec import DISTILL_METHODS
from optprompt.errors import ConfigError
from optprompt.kinds.ensemble import EnsembleCandidate, EnsembleKind
from optprompt.kinds.prompt import PromptKind
from optprompt.results import load_result
from optprompt.study.end.distillation import distillation_part
from optprompt.study.runner import StudyRunner


def _study(tmp_path: Path, model_dir: Path, **extra: Any) -> dict[str, Any]:
    data = write_sentiment_jsonl(tmp_path / "d.jsonl", n=48)
    raw = soft_study_dict(data, model_dir, tmp_path / "out")
    raw["strategy"] = {"name": "template_search", "trials": 4, "max_demos": 2, "demo_pool": 4}
    raw["selection"] = {"holdout": 0}
    return {**raw, **extra}


# --- the option ---------------------------------------------------------------------------


def test_distill_winner_takes_the_defaults_and_a_mapping_names_the_student(tmp_path: Path) -> None:
    raw = _study(tmp_path, tmp_path)
    assert spec_from_dict({**raw, "distill": "winner"}).distill == DistillSpec()
    assert spec_from_dict(raw).distill is None
    spec = spec_from_dict({**raw, "distill": {"into": "lora", "lora_r": 4, "epochs": 2}})
    assert spec.distill.student_params() == {"lr": 0.001, "epochs": 2, "batch_size": 8, "lora_r": 4}
    tuned = spec_from_dict({**raw, "distill": {"virtual_tokens": 8, "lr": 0.3}}).distill
    mixed = spec_from_dict({**raw, "distill": {"into": "lora", "gold": 0.5, "instruction": ""}}).distill
    assert mixed.student_params()["gold"] == 0.5 and mixed.instruction == ""
    assert tuned.student_params() == {"lr": 0.3, "epochs": 4, "batch_size": 8, "num_virtual_tokens": 8, "init": "text"}
    # The config layer cannot import the adapters: its list of methods is kept equal here.
    assert DISTILL_METHODS == METHODS
    assert tuple(DistillSpec.model_fields["into"].annotation.__args__) == METHODS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("everything", r"distill: 'everything' is not known; write `distill: winner`"),
        ({"into": "adapter"}, r"distill\.into.*'prompt_tuning', 'prefix_tuning', 'p_tuning' or 'lora'"),
        ({"intoo": "lora"}, r"distill\.intoo: unknown key \(did you mean .into."),
        ({"epochs": 0}, r"distill\.epochs.*greater than or equal to 1"),
        ({"gold": 1.5}, r"distill\.gold.*less than or equal to 1"),
    ],
)
def test_a_bad_distill_option_is_named(tmp_path: Path, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        spec_from_dict({**_study(tmp_path, tmp_path), "distill": value})


def test_unlabelled_inputs_are_for_a_teacher_or_a_distilled_winner(tmp_path: Path) -> None:
    raw = _study(tmp_path, tmp_path)
    raw["task"] = {**raw["task"], "unlabeled": "u.jsonl"}
    with pytest.raises(ConfigError, match="set teacher .* or distill"):
        spec_from_dict(raw)
    assert spec_from_dict({**raw, "distill": "winner"}).task.unlabeled == "u.jsonl"


# --- the end phase ------------------------------------------------------------------------


def _mean_input_tokens(ctx: Any) -> float:
    tok = ctx.model.tokenizer
    return sum(len(tok(ex.input, add_special_tokens=False).input_ids) for ex in ctx.task.test) / len(ctx.task.test)


def _mean_request_tokens(ctx: Any, *prompts: Any) -> float:
    """What the model reads per test prediction: each prompt's whole request (input included)."""
    tok = ctx.model.tokenizer
    total = 0
    for ex in ctx.task.test:
        for prompt in prompts:
            req = ctx.renderer.request(prompt, ex)
            total += len(tok(req.prefix + req.suffix, add_special_tokens=False).input_ids)
    return total / len(ctx.task.test)


def test_the_distilled_part_counts_tokens_per_prediction(soft_runner) -> None:  # type: ignore[no-untyped-def]
    runner = soft_runner
    ctx = runner.kind_context
    demos = tuple(ex.id for ex in runner.task.train[:3])
    winner = dataclasses.replace(runner.baseline, demo_ids=demos)
    short = dataclasses.replace(runner.baseline, instruction="Classify.")
    kind = PromptKind()
    with kind.scorer(winner, ctx) as ev:
        winner_test = ev.evaluate(winner, runner.task.test, "test")
    spec = DistillSpec(virtual_tokens=4, epochs=1)
    part = distillation_part(spec, winner, kind, short, ctx, winner_test).info

    # The winner reads its three demonstrations around every input; the student reads the
    # winner's text alone (the same instruction), plus its 4 virtual tokens.
    student_text = dataclasses.replace(winner, demo_ids=())
    assert part.winner.tokens_per_prediction == pytest.approx(_mean_request_tokens(ctx, winner), abs=0.05)
    assert part.distilled.tokens_per_prediction == pytest.approx(_mean_request_tokens(ctx, student_text) + 4, abs=0.05)
    # Roughly the prompt around an empty input plus the mean input (tokens merge at the seams).
    inputs = _mean_input_tokens(ctx)
    assert part.winner.tokens_per_prediction == pytest.approx(kind.prompt_tokens(winner, ctx) + inputs, abs=1.5)
    assert part.token_ratio == round(part.winner.tokens_per_prediction / part.distilled.tokens_per_prediction, 2)
    assert part.winner.test.value == winner_test.value
    assert part.distilled.candidate["method"] == "prompt_tuning"
    assert part.distilled.candidate["instruction"] == winner.instruction
    assert part.distilled.candidate["demo_ids"] == []
    # The paired test is the distilled form against the winner, on the same test examples.
    c = part.comparison
    assert c.n == len(runner.task.test)
    assert c.difference.estimate == pytest.approx(part.distilled.test.value - part.winner.test.value)
    assert part.distilled_inputs == len(runner.task.train) and part.training["steps"] > 0
    assert (ctx.output / part.artifact / "adapter_model.safetensors").is_file()


def test_a_knn_winner_counts_the_demonstrations_retrieved_for_each_input(soft_runner) -> None:  # type: ignore[no-untyped-def]
    from optprompt.kinds.base import KindContext
    from optprompt.prompts import Retrieval
    from optprompt.study.end.student import tokens_per_prediction

    runner = soft_runner
    ctx: KindContext = runner.kind_context
    pool = tuple(ex.id for ex in runner.task.train[:8])
    winner = dataclasses.replace(runner.baseline, retrieval=Retrieval(pool=pool, k=3))
    kind = PromptKind()
    test = runner.task.test
    got = tokens_per_prediction(kind, winner, ctx, test)
    assert got == pytest.approx(_mean_request_tokens(ctx, winner))
    # Each input reads its own three demonstrations: not the same count for every input.
    per_input = [tokens_per_prediction(kind, winner, ctx, [ex]) for ex in test]
    assert len({round(n - len(ctx.model.tokenizer(ex.input).input_ids)) for n, ex in zip(per_input, test)}) > 1


def test_an_ensemble_reads_every_member_and_the_input_once_per_member(soft_runner) -> None:  # type: ignore[no-untyped-def]
    runner = soft_runner
    ctx = runner.kind_context
    a = dataclasses.replace(runner.baseline, demo_ids=(runner.task.train[0].id,))
    b = dataclasses.replace(runner.baseline, instruction="Is the review positive or negative?")
    ensemble = EnsembleCandidate((b, a))
    kind = EnsembleKind()
    with kind.scorer(ensemble, ctx) as ev:
        winner_test = ev.evaluate(ensemble, runner.task.test, "test")
    part = distillation_part(
        DistillSpec(virtual_tokens=2, epochs=1), ensemble, kind, runner.baseline, ctx, winner_test
    ).info
    assert part.winner.tokens_per_prediction == pytest.approx(_mean_request_tokens(ctx, a, b), abs=0.05)
    # The student is trained under the first member's text (the best one), without demonstrations.
    assert part.distilled.candidate["instruction"] == b.instruction
    assert part.distilled.tokens_per_prediction == pytest.approx(_mean_request_tokens(ctx, b) + 2, abs=0.05)


# --- a whole study: result.json, show, export + load, run again ---------------------------


def test_a_study_distils_its_winner_exports_it_and_does_not_distil_it_again(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from optprompt.cli.main import main
    from optprompt.cli.output import print_result
    from optprompt.study.end import distillation as distilled

    unlabeled = tmp_path / "u.jsonl"
    unlabeled.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["good soup", "cold room", "fine"]))
    raw = _study(tmp_path, tiny_model_dir, distill={"virtual_tokens": 4, "epochs": 1})
    raw["task"] = {**raw["task"], "unlabeled": str(unlabeled)}
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run()
    part = result.distillation
    assert part is not None and not part.reused
    assert part.winner.hash == result.best.hash
    assert part.winner.test.value == result.best.test.value  # the winner's own test score, not re-scored apart
    assert part.distilled_inputs == len(runner.task.train) + 3
    # result.json holds it, typed, read back as written.
    again = load_result(spec.output).distillation
    assert again == part

    print_result(result)
    shown = capsys.readouterr().out
    assert "distilled the winner into prompt_tuning under a short prompt" in shown
    assert f"{part.token_ratio:.2f}x fewer tokens per prediction" in shown
    assert main(["show", spec.output]) == 0  # optprompt show prints it too
    assert f"{part.token_ratio:.2f}x fewer tokens per prediction" in capsys.readouterr().out

    # Export: the winner, and its distilled form in distilled/, loaded back exactly.
    to = tmp_path / "export"
    assert main(["export", spec.output, "--to", str(to)]) == 0
    assert f"distilled form (distill) to {to / 'distilled'}" in capsys.readouterr().out
    test = runner.task.test
    with optprompt.load(to / "distilled", tiny_model) as loaded:
        predictions = loaded.predict([ex.input for ex in test])
    measured = [
        json.loads(line)
        for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()
        if json.loads(line)["role"] == "distilled"
    ]
    labels = runner.task.labels
    assert predictions == [labels[p["pred"]] for p in measured]
    accuracy = sum(p == ex.target for p, ex in zip(predictions, test)) / len(test)
    assert accuracy == pytest.approx(part.distilled.test.value)
    assert optprompt.load(to, tiny_model).predict([test[0].input])  # the winner's export is still there

    # Run again over the same storage: the trials are done, the distillation is read back.
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the recorded distillation was trained again")

    monkeypatch.setattr(distilled, "distill_winner", refuse)
    rerun = StudyRunner(spec, model=tiny_model, progress=False).run()
    assert rerun.distillation is not None and rerun.distillation.reused
    assert rerun.distillation.model_dump(exclude={"reused"}) == part.model_dump(exclude={"reused"})


def test_a_multi_label_winner_is_distilled_on_its_written_answers(
    tmp_path: Path, tiny_model_dir: Path, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    """A task that generates its answer has no distribution: the student learns the
    winner's written label lists; exported and loaded back, it answers as measured."""
    from optprompt.cli.main import main

    tickets = Path(__file__).resolve().parents[2] / "studies" / "data" / "tickets.jsonl"
    raw = _study(tmp_path, tiny_model_dir, distill={"into": "lora", "lora_r": 2, "epochs": 1, "instruction": ""})
    raw["task"] = {"data": str(tickets), "type": "multi_label", "input": "text", "label": "labels_text",
                   "label_separator": "|", "id": "id", "max_examples": 40, "max_new_tokens": 6}  # fmt: skip
    raw["strategy"] = {"name": "template_search", "trials": 2, "max_demos": 2, "demo_pool": 4}
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run()
    part = result.distillation
    assert part is not None and part.method == "lora"
    assert part.distilled.candidate["instruction"] == ""  # dropped: fewer tokens than the winner
    assert part.token_ratio > 1
    assert part.distilled.test.metric == "label_f1" and part.comparison.n == len(runner.task.test)
    assert 0 < part.distilled_inputs <= len(runner.task.train) and part.training["steps"] > 0

    to = tmp_path / "export"
    assert main(["export", spec.output, "--to", str(to)]) == 0
    measured = [
        json.loads(line)
        for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()
        if json.loads(line)["role"] == "distilled"
    ]
    assert len(measured) == len(runner.task.test)
    with optprompt.load(to / "distilled", tiny_model) as student:  # LoRA: taken off the shared model again
        predictions = student.predict([ex.input for ex in runner.task.test])
    assert len(predictions) == len(measured)
