from __future__ import annotations

import math

import pytest

from optprompt.prompts import PromptCandidate, PromptRenderer
from optprompt.scoring import CausalLMBackend, Evaluator
from optprompt.scoring.calibration import apply_offsets, mean_offsets, normalise
from optprompt.tasks import Example, Task


def test_normalise_is_log_softmax() -> None:
    out = normalise([math.log(1), math.log(3)])
    assert out == pytest.approx([math.log(0.25), math.log(0.75)])


def test_mean_offsets_remove_a_constant_bias() -> None:
    # The model prefers label 1 by the same margin on every input: after mean calibration
    # the inputs where label 0 is relatively more likely are predicted as 0.
    rows = [[-2.0, -1.0], [-1.2, -1.0], [-3.0, -1.0], [-0.9, -1.0]]
    raw = [max(range(2), key=r.__getitem__) for r in rows]
    off = mean_offsets(rows)
    cal = [max(range(2), key=apply_offsets(r, off).__getitem__) for r in rows]
    assert raw == [1, 1, 1, 0]
    assert cal == [1, 0, 1, 0]


def test_apply_offsets_checks_lengths() -> None:
    with pytest.raises(ValueError, match="2 offsets for 3 choices"):
        apply_offsets([0.0, 1.0, 2.0], [0.0, 0.0])


def _task() -> Task:
    words = ["great food", "awful room", "fine staff", "bad price", "lovely hotel", "terrible service"]
    exs = [Example(f"e{i}", w, "pos" if i % 2 == 0 else "neg", 1 if i % 2 == 0 else 0) for i, w in enumerate(words)]
    return Task(
        "t",
        "classification",
        exs[:2],
        exs[2:],
        exs[2:],
        labels=("neg", "pos"),
        verbalizer={"neg": "bad", "pos": "good"},
    )


@pytest.mark.parametrize("method", ["mean", "content_free"])
def test_evaluator_applies_calibration_and_reuses_given_offsets(tiny_model, plugins, method: str) -> None:
    task = _task()
    ev = Evaluator(
        task, CausalLMBackend(tiny_model), PromptRenderer(task, tiny_model.chat_formatter()), plugins.metrics
    )
    cand = PromptCandidate(
        "Judge it.", "Input: {input}\nAnswer:", verbalizer=(("neg", "bad"), ("pos", "good")), calibration=method
    )
    first = ev.evaluate(cand, task.dev)
    assert first.offsets is not None and len(first.offsets) == 2
    expected = [max(range(2), key=apply_offsets(p.logliks, first.offsets).__getitem__) for p in first.predictions]
    assert [p.pred for p in first.predictions] == expected
    # Given offsets are used as they are (dev offsets applied to test).
    forced = ev.evaluate(cand, task.dev, offsets=[0.0, 100.0])
    assert forced.offsets == [0.0, 100.0]
    assert all(p.pred == 0 for p in forced.predictions)


def _mc_task() -> Task:
    opts = [("red apple", "blue sky", "green grass"), ("loud drum", "quiet mouse", "slow snail")]
    exs = [
        Example(f"q{i}", text, o[i % 3], i % 3, options=o)
        for i, (text, o) in enumerate(
            [("fruit?", opts[0]), ("weather?", opts[0]), ("lawn?", opts[0]), ("noise?", opts[1]), ("small?", opts[1])]
        )
    ]
    return Task("mc", "multiple_choice", exs[:1], exs[1:], exs[1:])


def test_options_of_their_own_are_calibrated_content_free_per_question(tiny_model, plugins) -> None:
    from optprompt.errors import CandidateRejected
    from optprompt.scoring.calibration import CONTENT_FREE_INPUTS

    task = _mc_task()
    ev = Evaluator(
        task, CausalLMBackend(tiny_model), PromptRenderer(task, tiny_model.chat_formatter()), plugins.metrics
    )
    plain = PromptCandidate("Pick one.", "Q: {input}\n{options}\nA:")
    cand = PromptCandidate("Pick one.", "Q: {input}\n{options}\nA:", calibration="content_free")
    got = ev.evaluate(cand, task.dev)
    assert got.offsets is None  # nothing to keep: each question's options are calibrated afresh
    raw = ev.evaluate(plain, task.dev)
    # By hand: each question's options scored after every content-free input, same prompt.
    renderer = PromptRenderer(task, tiny_model.chat_formatter())
    backend = CausalLMBackend(tiny_model)
    for ex, pred, plain_pred in zip(task.dev, got.predictions, raw.predictions):
        free = [Example(f"{ex.id}-{t}", t, ex.target, ex.target_index, options=ex.options) for t in CONTENT_FREE_INPUTS]
        offsets = mean_offsets(backend.loglikelihoods(renderer.requests(plain, free)))
        scores = apply_offsets(list(plain_pred.logliks), offsets)
        assert pred.pred == max(range(3), key=scores.__getitem__)
        assert list(pred.logliks) == pytest.approx(list(plain_pred.logliks))  # the raw scores are kept
    with pytest.raises(CandidateRejected, match="needs the same answers in every example"):
        ev.evaluate(PromptCandidate("Pick one.", "Q: {input}\n{options}\nA:", calibration="mean"), task.dev)
