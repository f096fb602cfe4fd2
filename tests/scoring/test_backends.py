"""Every backend's batched path equals its one-at-a-time reference; generation is batched
exactly; the score cache answers repeats without model time."""

from __future__ import annotations

import pytest

from optprompt.errors import CandidateRejected
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import (
    CachedBackend,
    CausalLMBackend,
    GenerationSettings,
    MaskedLMBackend,
    ScoreCache,
    Seq2SeqBackend,
)


def _flat(rows):  # type: ignore[no-untyped-def]
    return [v for r in rows for v in r]


def _requests(multi: bool = True) -> list[ScoreRequest]:
    answers = (" good", " bad", " not very good at all") if multi else (" good", " bad")
    texts = ["the hotel was fine", "bad", "really terrible service and the staff would never recommend it", "a movie"]
    return [ScoreRequest(f"e{i}", "Classify.\n\nInput: ", t + "\nAnswer:", answers) for i, t in enumerate(texts)]


@pytest.mark.parametrize("batch_tokens", [4, 40, 4096])
def test_seq2seq_matches_reference(tiny_seq2seq, batch_tokens: int) -> None:
    assert tiny_seq2seq.family == "seq2seq"
    backend = Seq2SeqBackend(tiny_seq2seq, batch_tokens=batch_tokens)
    reqs = _requests()
    assert _flat(backend.loglikelihoods(reqs)) == pytest.approx(_flat(backend.naive_loglikelihoods(reqs)), abs=1e-4)


@pytest.mark.parametrize("batch_tokens", [4, 40, 4096])
def test_masked_matches_reference(tiny_masked, batch_tokens: int) -> None:
    assert tiny_masked.family == "masked"
    backend = MaskedLMBackend(tiny_masked, batch_tokens=batch_tokens)
    reqs = _requests(multi=False)
    fast = backend.loglikelihoods(reqs)
    assert _flat(fast) == pytest.approx(_flat(backend.naive_loglikelihoods(reqs)), abs=1e-4)
    assert len({tuple(r) for r in fast}) > 1  # the input matters


def test_masked_rejects_multi_token_answers(tiny_masked) -> None:
    with pytest.raises(CandidateRejected, match="single-token"):
        MaskedLMBackend(tiny_masked).loglikelihoods(_requests(multi=True))


def test_masked_cannot_generate(tiny_masked) -> None:
    from optprompt.errors import OptpromptError

    with pytest.raises(OptpromptError, match="cannot generate"):
        MaskedLMBackend(tiny_masked).generate(["x"], GenerationSettings())


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_seq2seq"])
def test_batched_generation_equals_one_at_a_time(fixture: str, request: pytest.FixtureRequest) -> None:
    loaded = request.getfixturevalue(fixture)
    cls = CausalLMBackend if loaded.family == "causal" else Seq2SeqBackend
    prompts = ["Input: the room\nAnswer:", "Input: really terrible service and the staff\nAnswer:", "Q: price?\nA:"]
    settings = GenerationSettings(max_new_tokens=6, stop=())
    batched = cls(loaded, batch_tokens=4096).generate(prompts, settings)
    single = [cls(loaded, batch_tokens=4096).generate([p], settings)[0] for p in prompts]
    assert batched == single
    assert all(isinstance(t, str) for t in batched)


def test_generation_stops_at_stop_string(tiny_model) -> None:
    backend = CausalLMBackend(tiny_model)
    free = backend.generate(["Input: the room\nAnswer:"], GenerationSettings(max_new_tokens=12, stop=()))[0]
    assert free, "the tiny model generates something"
    stop = free[len(free) // 2] if free.strip() else free[0]
    cut = backend.generate(["Input: the room\nAnswer:"], GenerationSettings(max_new_tokens=12, stop=(stop,)))[0]
    assert stop not in cut
    assert free.startswith(cut)


def test_an_empty_prompt_is_refused_before_generating(tiny_model) -> None:
    """Nothing can continue a prompt of no tokens (a model without BOS): the candidate is
    rejected with the reason, the other prompts' work is not started."""
    backend = CausalLMBackend(tiny_model)
    assert backend.tokens.bos == []  # the chat fixture adds no BOS, so "" is no tokens at all
    with pytest.raises(CandidateRejected, match="an empty prompt cannot be continued"):
        backend.generate(["Input: the room\nAnswer:", ""], GenerationSettings(max_new_tokens=4, stop=()))
    assert backend.generate([], GenerationSettings(max_new_tokens=4, stop=())) == []


def test_score_cache_answers_repeats_without_model_time(tiny_model, tmp_path) -> None:
    backend = CausalLMBackend(tiny_model)
    cached = CachedBackend(backend, ScoreCache(tmp_path / "c.sqlite"))
    reqs = _requests()
    first = cached.loglikelihoods(reqs)
    tokens = backend.computed_tokens
    again = CachedBackend(CausalLMBackend(tiny_model), ScoreCache(tmp_path / "c.sqlite"))  # a new process
    assert again.loglikelihoods(reqs) == first
    assert again.backend.computed_tokens == 0 and again.hits == len(reqs)
    # a changed request is a miss; unchanged ones still hit
    changed = reqs[:2] + [ScoreRequest("x", reqs[0].prefix, "new text\nAnswer:", reqs[0].continuations)]
    again.loglikelihoods(changed)
    assert again.misses == 1 and again.hits == len(reqs) + 2
    assert tokens > 0
    gen = cached.generate(["Q: a\nA:"], GenerationSettings(max_new_tokens=3, stop=()))
    assert again.generate(["Q: a\nA:"], GenerationSettings(max_new_tokens=3, stop=())) == gen
    assert again.generate(["Q: a\nA:"], GenerationSettings(max_new_tokens=4, stop=())) is not None
    assert again.misses == 2  # a different token budget is a different key


@pytest.mark.parametrize("engine", ["packed", "padded"])
def test_oom_backoff_halves_batch(tiny_model, monkeypatch, engine: str) -> None:
    import torch

    backend = CausalLMBackend(tiny_model, batch_tokens=1024, engine=engine, pack_tokens=1024)
    owner, name = (backend._packed, "score") if engine == "packed" else (backend, "_score_group")
    real = getattr(owner, name)
    calls = {"n": 0}

    def flaky(*args):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real(*args)

    monkeypatch.setattr(owner, name, flaky)
    out = backend.loglikelihoods(_requests())
    assert backend.batch_tokens == 512
    if engine == "packed":
        assert backend._packed.budget == 512  # rows shrink with the budget
    assert _flat(out) == pytest.approx(_flat(backend.naive_loglikelihoods(_requests())), abs=1e-4)


def test_the_engine_setting_is_read_in_one_place(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from optprompt.errors import ConfigError
    from optprompt.scoring.backends.engines import ENGINE_ENV, engine_setting

    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_setting(None) == "auto" and engine_setting("packed") == "packed"
    monkeypatch.setenv(ENGINE_ENV, "legacy")  # the padded engine's earlier name is still read
    assert engine_setting(None) == "padded"
    with pytest.raises(ConfigError, match="scoring engine 'fast' is not one of auto, packed, padded"):
        engine_setting("fast")
