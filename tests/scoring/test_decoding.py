"""The decoding loop's fast paths produce exactly what plain greedy decoding produces:
finished rows dropped from the batch, prompt-lookup drafts verified in one pass."""

from __future__ import annotations

import copy

import pytest
import torch

from optprompt.scoring import CausalLMBackend, GenerationSettings
from optprompt.scoring.backends import decoding
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


@pytest.mark.parametrize("lookup", [0, 3])
@pytest.mark.parametrize("repeating", [False, True])
def test_rows_joining_a_running_batch_decode_as_they_would_alone(
    tiny_model, lookup: int, repeating: bool, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Continuous batching: at most 2 (or 3) rows at once, waiting rows joining as others
    finish, their caches aligned with the running rows' (positions explicit, padding
    masked), the leading positions of rows that left trimmed away: every row gets what it
    gets decoded alone, and with rows waiting for whole batches to end."""
    backend = CausalLMBackend(tiny_model, engine="packed")
    prompts = _prompts() * 5  # 25 rows: many joins, and a cache long enough to trim
    seqs = [backend.tokens.prefix(p) for p in prompts]
    settings = GenerationSettings(max_new_tokens=20, stop=("e", "\n"))  # rows end at different steps
    model = _repeating(tiny_model.model) if repeating else tiny_model.model
    joins = {"n": 0, "widest": 0, "trimmed": 0}
    trim = decoding._trim

    def counted_trim(cache, mask):  # type: ignore[no-untyped-def]
        out = trim(cache, mask)
        joins["trimmed"] += out.shape[1] < mask.shape[1]
        assert cache.get_seq_length() == out.shape[1]
        return out

    monkeypatch.setattr(decoding, "_trim", counted_trim)

    def count(module, args, kwargs):  # type: ignore[no-untyped-def]
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1 + lookup:  # a prefill: rows starting
            joins["n"] += 1
        joins["widest"] = max(joins["widest"], kwargs["attention_mask"].shape[1])

    with torch.inference_mode():
        alone = [decode(model, tiny_model.tokenizer, [s], settings, pad_id=backend.pad_id)[0][0] for s in seqs]
        handle = model.register_forward_pre_hook(count, with_kwargs=True)
        try:
            joined = {
                rows: decode(
                    model, tiny_model.tokenizer, seqs, settings, pad_id=backend.pad_id, lookup=lookup, max_rows=rows
                )[0]
                for rows in (2, 3)
            }
        finally:
            handle.remove()
        batches = decode(
            model, tiny_model.tokenizer, seqs, settings, pad_id=backend.pad_id, max_rows=3, continuous=False
        )[0]
    assert joined[2] == alone and joined[3] == alone and batches == alone
    assert len({len(o) for o in alone}) > 1  # rows end at different steps: they join mid-decoding
    assert joins["n"] > 25 // 2  # rows started in many passes, not in whole batches
    assert joins["trimmed"] > 0  # positions of rows that left were cut away
