"""The fast scorer must equal a plain one-example-at-a-time forward pass."""

from __future__ import annotations

import pytest

from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import CausalLMBackend, naive_loglikelihoods


def _requests() -> list[ScoreRequest]:
    prefix = "<|im_start|>user\nClassify the review.\n\nInput: lovely food\nAnswer: good\n\nInput: "
    suffixes = [
        "the hotel was fine",
        "bad",
        "really terrible service and the staff would never recommend it again",
        "a movie",
    ]
    out = [
        ScoreRequest(
            f"e{i}", prefix, s + "\nAnswer:<|im_end|>\n<|im_start|>assistant\n", ("good", "bad", "not very good at all")
        )
        for i, s in enumerate(suffixes)
    ]
    # a second prefix group with single-token answers, and an empty suffix
    out += [
        ScoreRequest("p1", "Input: price", " quality\nAnswer:", (" a", " the")),
        ScoreRequest("p2", "Input: price", "", (" a", " the")),
    ]
    return out


@pytest.mark.parametrize("batch_tokens", [8, 64, 4096])
def test_matches_naive_forward(tiny_model, batch_tokens: int) -> None:
    reqs = _requests()
    fast = CausalLMBackend(tiny_model, batch_tokens=batch_tokens).loglikelihoods(reqs)
    ref = naive_loglikelihoods(tiny_model, reqs)
    for f_row, r_row in zip(fast, ref):
        assert len(f_row) == len(r_row)
        for f, r in zip(f_row, r_row):
            assert f == pytest.approx(r, abs=1e-4)
    # predictions identical
    assert [max(range(len(r)), key=r.__getitem__) for r in fast] == [max(range(len(r)), key=r.__getitem__) for r in ref]


def test_plain_model_with_bos(tiny_plain_model) -> None:
    reqs = [
        ScoreRequest("a", "Text: the room", " was awful\nLabel:", (" good", " bad")),
        ScoreRequest("b", "Text: the room", " was lovely and the staff fine\nLabel:", (" good", " bad")),
    ]
    scorer = CausalLMBackend(tiny_plain_model)
    fast = scorer.loglikelihoods(reqs)
    ref = naive_loglikelihoods(tiny_plain_model, reqs)
    assert [v for row in fast for v in row] == pytest.approx([v for row in ref for v in row], abs=1e-4)
    assert scorer.tokens.bos  # the plain tokenizer adds BOS; the prefix starts with it
    assert all(v < 0 for row in fast for v in row)


def test_prefix_cache_reused(tiny_model) -> None:
    scorer = CausalLMBackend(tiny_model)
    reqs = _requests()[:4]
    scorer.loglikelihoods(reqs)
    first = scorer.computed_tokens
    scorer.loglikelihoods(reqs)
    prefix_len = len(scorer.tokens.prefix(reqs[0].prefix))
    assert scorer.computed_tokens - first == first - prefix_len
