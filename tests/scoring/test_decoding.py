"""The decoding loop's fast paths produce exactly what plain greedy decoding produces:
finished rows dropped from the batch, prompt-lookup drafts verified in one pass."""

from __future__ import annotations

import copy

import pytest
import torch

from optprompt.scoring import CausalLMBackend, GenerationSettings
from optprompt.scoring.backends.decoding import decode, lookup_draft


def test_lookup_draft_follows_the_latest_earlier_match() -> None:
    assert lookup_draft([1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3], 2) == [7, 1]  # the latest match wins
    assert lookup_draft([5, 6, 7, 5, 6], 3) == [7, 5, 6]
    assert lookup_draft([4, 8, 4], 2) == [8, 4]  # falls back to a 1-gram
    assert lookup_draft([7, 7, 7, 7], 2) == [7, 7]  # a match with k tokens after it beats a later one
    assert lookup_draft([1, 2, 3], 2) == []  # nothing repeats
    assert lookup_draft([1, 2, 1], 0) == []


def _prompts() -> list[str]:
    # Inputs repeated inside their prompts (the model may copy), of mixed lengths.
    return [
        "Text: the hotel room was fine and the staff was kind\nRepeat: the hotel room",
        "Text: book a table\nRepeat: book",
        "Text: play the screening event of the movie music\nRepeat: play the",
        "x",
        "Text: weather weather weather\nRepeat: weather",
    ]


def _repeating(model):  # type: ignore[no-untyped-def]
    """The tiny model with its layers' outputs zeroed: the next token depends on the current
    one alone, so greedy output falls into a loop that prompt lookup predicts."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return model


@pytest.mark.parametrize("repeating", [False, True])
@pytest.mark.parametrize("stop", [(), ("\n",)])
def test_compaction_and_lookup_equal_plain_greedy(tiny_model, stop, repeating: bool) -> None:  # type: ignore[no-untyped-def]
    """Random weights (drafts rejected: masked holes in the cache) and a repeating model
    (drafts accepted): the same tokens as plain greedy decoding, row by row."""
    backend = CausalLMBackend(tiny_model, engine="packed")
    seqs = [backend.tokens.prefix(p) for p in _prompts()]
    settings = GenerationSettings(max_new_tokens=24, stop=stop)
    model = _repeating(tiny_model.model) if repeating else tiny_model.model
    passes = {"n": 0}
    handle = model.register_forward_pre_hook(lambda *a: passes.__setitem__("n", passes["n"] + 1))
    try:
        runs = {}
        for name, kw in {
            "plain": {"lookup": 0, "compact": False},
            "compact": {"lookup": 0, "compact": True},
            "lookup": {"lookup": 4, "compact": True},
        }.items():
            passes["n"] = 0
            with torch.inference_mode():
                out, computed = decode(model, tiny_model.tokenizer, seqs, settings, pad_id=backend.pad_id, **kw)
            runs[name] = (out, passes["n"], computed)
    finally:
        handle.remove()
    plain, compact, lookup = runs["plain"], runs["compact"], runs["lookup"]
    assert compact[0] == plain[0]
    assert lookup[0] == plain[0]
    assert any(len(o) > 3 for o in plain[0])
    if repeating:  # drafts accepted: several tokens per pass
        assert lookup[1] < plain[1] / 2
    assert compact[2] <= plain[2]


def test_the_budget_bounds_every_row_with_lookup(tiny_model) -> None:
    backend = CausalLMBackend(tiny_model, engine="packed")
    seqs = [backend.tokens.prefix(p) for p in _prompts()]
    eos = set()
    for n in (0, 1, 5):
        with torch.inference_mode():
            out, _ = decode(
                tiny_model.model,
                tiny_model.tokenizer,
                seqs,
                GenerationSettings(max_new_tokens=n, stop=()),
                pad_id=backend.pad_id,
                lookup=4,
            )
        assert all(len(o) <= n for o in out)
        eos |= {len(o) for o in out}
    assert 5 in eos
