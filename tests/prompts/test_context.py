"""task.truncate: prompt + input longer than the model's context (error, left, right)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.errors import CandidateRejected, DataError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.context import ContextLimitedRenderer, context_length
from optprompt.tasks.task import Example, Task

WORDS = "the food was great and the staff lovely but the room was awful".split()


def _text(n: int, start: int = 0) -> str:
    return " ".join(f"{WORDS[(start + i) % len(WORDS)]}" for i in range(n))


def _task(long_input: str) -> Task:
    dev = [
        Example("short", "the food was great", "positive", 1, row="dev row 1"),
        Example("long", long_input, "negative", 0, row="dev row 2"),
    ]
    return Task(
        name="t",
        type="classification",
        train=[],
        dev=dev,
        test=[],
        labels=("negative", "positive"),
        verbalizer={"negative": "negative", "positive": "positive"},
        instruction="Classify the review.",
        template="Input: {input}\nAnswer:",
    )


def _baseline() -> PromptCandidate:
    return PromptCandidate(
        instruction="Classify the review.",
        template="Input: {input}\nAnswer:",
        verbalizer=(("negative", "negative"), ("positive", "positive")),
    )


def _renderer(tiny_model, policy: str, context: int = 80, long_input: str | None = None) -> ContextLimitedRenderer:  # type: ignore[no-untyped-def]
    task = _task(long_input or ("START " + _text(150) + " END"))
    return ContextLimitedRenderer(
        task, tiny_model.chat_formatter(), tokenizer=tiny_model.tokenizer, context=context, policy=policy
    )


def test_the_context_comes_from_the_model_config(tiny_model) -> None:  # type: ignore[no-untyped-def]
    assert context_length(tiny_model.model, tiny_model.tokenizer) == 2048


def test_error_names_the_example_and_the_lengths(tiny_model) -> None:  # type: ignore[no-untyped-def]
    r = _renderer(tiny_model, "error")
    assert r.length(r.request(_baseline(), r.task.dev[0])) <= 80  # a short one passes untouched
    with pytest.raises(
        DataError,
        match=r"example 'long' \(dev row 2\): prompt \+ input is \d+ tokens \(input \d+\), "
        r"more than the model's context of 80 tokens; set task.truncate to left or right",
    ):
        r.check(_baseline(), r.task.dev)


@pytest.mark.parametrize("policy", ["left", "right"])
def test_left_and_right_cut_the_input_to_fit(tiny_model, policy: str) -> None:  # type: ignore[no-untyped-def]
    r = _renderer(tiny_model, policy)
    full = r.task.dev[1].input
    req = r.request(_baseline(), r.task.dev[1])
    assert r.length(req) <= 80
    assert "Classify the review." in req.prefix and "\nAnswer:" in req.suffix  # only the input is cut
    kept = req.suffix.split("\nAnswer:")[0].strip()
    assert kept and kept in full and len(kept) < len(full)
    if policy == "left":
        assert full.endswith(kept) and "END" in kept and "START" not in kept
    else:
        assert full.startswith(kept) and "START" in kept and "END" not in kept
    assert r.summary()["truncated_examples"] == 1 and r.summary()["truncated_ids"] == ["long"]
    assert r.summary()["max_tokens_cut"] > 0 and r.summary()["truncate"] == policy
    r.request(_baseline(), r.task.dev[0])
    assert r.summary()["truncated_examples"] == 1  # the short one was not cut


def test_a_prompt_that_cannot_fit_at_all_is_rejected(tiny_model) -> None:  # type: ignore[no-untyped-def]
    r = _renderer(tiny_model, "left", context=12)
    with pytest.raises(CandidateRejected, match="the prompt around the input is \\d+ tokens.*context of 12"):
        r.request(_baseline(), r.task.dev[0])


def test_no_limit_checks_nothing(tiny_model) -> None:  # type: ignore[no-untyped-def]
    r = _renderer(tiny_model, "error", context=None)  # type: ignore[arg-type]
    r.check(_baseline(), r.task.dev)
    assert r.summary()["truncated_examples"] == 0


def _long_study(study_dict: dict, tmp_path: Path, truncate: str | None) -> dict:
    rows = [json.loads(line) for line in Path(study_dict["task"]["data"]).read_text().splitlines()]
    rows[0]["text"] = _text(2200)  # about 2,200 tokens: over the tiny model's 2,048 positions
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = {**study_dict["task"], "data": str(data), **({"truncate": truncate} if truncate else {})}
    split = {"train": 0.0, "dev": 0.5, "test": 0.5}  # every row is scored (dev or test)
    return {**study_dict, "task": {**task, "split": split}, "strategy": {"name": "template_search", "trials": 2}}


def test_study_default_stops_before_trial_0_naming_the_example(study_dict: dict, tmp_path: Path) -> None:
    from optprompt.config import spec_from_dict
    from optprompt.study.runner import run_study

    spec = spec_from_dict(_long_study(study_dict, tmp_path, None))
    expected = r"example 'ex0' \(.*long.jsonl row 1\): prompt \+ input is \d+ tokens .*context of 2048 tokens"
    with pytest.raises(DataError, match=expected):
        run_study(spec, progress=False)


def test_study_left_truncates_and_counts_in_result_and_summary(study_dict: dict, tmp_path: Path, capsys) -> None:
    from optprompt.cli.output import print_result
    from optprompt.config import spec_from_dict
    from optprompt.study.runner import run_study

    result = run_study(spec_from_dict(_long_study(study_dict, tmp_path, "left")), progress=False).to_dict()
    assert result["context"]["limit"] == 2048 and result["context"]["truncate"] == "left"
    assert result["context"]["truncated_examples"] == 1
    saved = json.loads((Path(study_dict["output"]) / "result.json").read_text())
    assert saved["context"] == result["context"]
    print_result(result)
    shown = " ".join(capsys.readouterr().out.split())  # the summary wraps to the terminal
    assert "context: 1 example(s) cut to fit the model's 2048 tokens (task.truncate: left" in shown
