"""The packed engine equals one-example-at-a-time full forwards, computes each distinct token
once, and generation with a reused prefix equals plain decoding."""

from __future__ import annotations

import random

import pytest
import torch

from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import CausalLMBackend, GenerationSettings, naive_loglikelihoods
from optprompt.scoring.backends.trie import build_trie, pack_forest, tree_mask

WORDS = (
    "the hotel room was fine bad great service staff never again lovely food cold rude price quality "
    "movie music play add search event screening weather book restaurant rate playlist"
).split()


def _labels(rng: random.Random, n: int, multi: bool) -> tuple[str, ...]:
    """``n`` distinct labels; multi-token ones share leading words (``very good``/``very bad``)."""
    out: list[str] = []
    while len(out) < n:
        if multi:
            head = rng.choice(["very", "not", "add", "search"])
            w = " ".join([head, *rng.sample(WORDS, rng.randint(1, 4))]).replace(" ", "_" if rng.random() < 0.3 else " ")
        else:
            w = rng.choice(WORDS)
        if w not in out:
            out.append(w)
    return tuple(out)


def _job(rng: random.Random, *, n_labels: int, multi: bool, chat: bool, per_example_prefix: bool, empty: bool):
    labels = _labels(rng, n_labels, multi)
    demos = "\n\n".join(f"Input: {' '.join(rng.sample(WORDS, 6))}\nAnswer: {rng.choice(labels)}" for _ in range(3))
    head = "<|im_start|>user\n" if chat else ""
    reqs = []
    for i in range(7):
        prefix = f"{head}Classify into {', '.join(labels)}.\n\n{demos}\n\nInput:"
        if per_example_prefix:  # demonstrations chosen per input: prefixes share only their start
            prefix = (
                f"{head}Classify.\n\nInput: {' '.join(rng.sample(WORDS, 5))}\nAnswer: {rng.choice(labels)}\n\nInput:"
            )
        suffix = "" if empty and i % 3 == 0 else " " + " ".join(rng.sample(WORDS, rng.randint(1, 12))) + "\nAnswer:"
        if chat:
            suffix += "<|im_end|>\n<|im_start|>assistant\n"
        reqs.append(ScoreRequest(f"e{i}", prefix, suffix, tuple((" " if not chat else "") + w for w in labels)))
    return reqs


def _assert_exact(fast, ref) -> None:  # type: ignore[no-untyped-def]
    assert [len(r) for r in fast] == [len(r) for r in ref]
    for f_row, r_row in zip(fast, ref):
        assert f_row == pytest.approx(r_row, abs=1e-4)
        assert max(range(len(f_row)), key=f_row.__getitem__) == max(range(len(r_row)), key=r_row.__getitem__)


@pytest.mark.parametrize(
    "n_labels,multi,per_example_prefix,empty,pack",
    [
        (2, False, False, False, 1024),
        (2, False, False, True, 7),
        (7, True, False, False, 1024),
        (7, True, False, True, 33),
        (20, True, False, False, 64),
        (12, True, True, False, 1024),
        (12, True, True, True, 19),
        (4, True, True, False, 3),
    ],
)
@pytest.mark.parametrize("chat", [True, False])
def test_packed_equals_naive(tiny_model, tiny_plain_model, n_labels, multi, per_example_prefix, empty, pack, chat):
    loaded = tiny_model if chat else tiny_plain_model
    rng = random.Random(n_labels * 31 + pack)
    reqs = _job(rng, n_labels=n_labels, multi=multi, chat=chat, per_example_prefix=per_example_prefix, empty=empty)
    backend = CausalLMBackend(loaded, engine="packed", pack_tokens=pack)
    ref = naive_loglikelihoods(loaded, reqs)
    _assert_exact(backend.loglikelihoods(reqs), ref)
    # and again, from the cached root, in slices that split the job anywhere
    again = backend.loglikelihoods(reqs[:3]) + backend.loglikelihoods(reqs[3:])
    _assert_exact(again, ref)


def test_multiple_choice_sentence_options(tiny_model) -> None:
    rng = random.Random(5)
    reqs = []
    for i in range(6):
        options = tuple(" ".join(rng.sample(WORDS, rng.randint(8, 15))) for _ in range(4))
        block = "\n".join(f"- {o}" for o in options)
        reqs.append(
            ScoreRequest(
                f"q{i}",
                "Pick the best answer.\n\nQuestion:",
                f" {' '.join(rng.sample(WORDS, 9))}\n{block}\nAnswer:",
                tuple(" " + o for o in options),
            )
        )
    backend = CausalLMBackend(tiny_model, engine="packed", pack_tokens=48)
    _assert_exact(backend.loglikelihoods(reqs), naive_loglikelihoods(tiny_model, reqs))


def test_each_distinct_token_once(tiny_model) -> None:
    """computed_tokens is the shared root once plus the trie's nodes, whatever the row size."""
    rng = random.Random(3)
    reqs = _job(rng, n_labels=7, multi=True, chat=True, per_example_prefix=False, empty=False)
    tokens = CausalLMBackend(tiny_model).tokens
    contexts = [tokens.prefix(r.prefix) + tokens.encode(r.suffix) for r in reqs]
    answers = [[tokens.continuation(c) for c in r.continuations] for r in reqs]
    root = len(tokens.prefix(reqs[0].prefix))
    distinct = len(build_trie(contexts, answers, root).trie)
    for pack in (16, 1024):
        backend = CausalLMBackend(tiny_model, engine="packed", pack_tokens=pack)
        backend.loglikelihoods(reqs)
        assert backend.computed_tokens == root + distinct
        # the root is cached: scoring again computes only the trie
        backend.loglikelihoods(reqs)
        assert backend.computed_tokens == root + 2 * distinct
    # far fewer than one row per (example, answer)
    naive = sum(len(c) + len(a) - 1 for c, ans in zip(contexts, answers) for a in ans)
    assert root + distinct < naive / 5


def test_packed_and_legacy_agree(tiny_model) -> None:
    rng = random.Random(9)
    reqs = _job(rng, n_labels=5, multi=True, chat=True, per_example_prefix=False, empty=True)
    packed = CausalLMBackend(tiny_model, engine="packed").loglikelihoods(reqs)
    legacy = CausalLMBackend(tiny_model, engine="padded").loglikelihoods(reqs)
    _assert_exact(packed, legacy)


def test_unmaskable_attention_falls_back_once(tiny_model, monkeypatch, caplog) -> None:
    monkeypatch.setattr(tiny_model.model.config, "_attn_implementation", "flash_attention_2", raising=False)
    with caplog.at_level("WARNING"):
        backend = CausalLMBackend(tiny_model)
    assert backend.engine == "padded"
    assert "padded" in caplog.text
    from optprompt.errors import ConfigError

    with pytest.raises(ConfigError, match="eager or sdpa"):
        CausalLMBackend(tiny_model, engine="packed")


def test_trie_shares_leading_tokens_and_packs_rows() -> None:
    job = build_trie([[1, 2, 3], [1, 2, 4]], [[[7, 8], [7, 9]], [[5]]], skip=1)
    # nodes: 2, 3, 7(after 3), 4 -> answers' last tokens are never inputs
    assert len(job.trie) == 4
    assert job.reads[0][0] == [(1, 7), (2, 8)] and job.reads[0][1] == [(1, 7), (2, 9)]
    sizes = job.trie.subtree_sizes()
    assert sizes[0] == 4
    rows, big = pack_forest(sizes, [0], budget=3)
    assert rows == [] and big == [0]
    allowed = tree_mask([-1, 0, 1, 0])
    assert allowed.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, False, False, True],
    ]


def _greedy(loaded, ids: list[int], n: int) -> list[int]:  # type: ignore[no-untyped-def]
    from optprompt.scoring.backends.decoding import eos_ids

    eos = eos_ids(loaded.model, loaded.tokenizer)
    seq, out = list(ids), []
    with torch.inference_mode():
        for _ in range(n):
            nxt = int(loaded.model(input_ids=torch.tensor([seq])).logits[0, -1].argmax())
            if nxt in eos:
                break
            out.append(nxt)
            seq.append(nxt)
    return out


def test_generation_reuses_prefix_and_equals_plain_decoding(tiny_model) -> None:
    prefix = "<|im_start|>user\nRewrite the instruction.\n\nInput: the hotel was fine\nOutput: fine hotel\n\nInput:"
    prompts = [prefix + s for s in (" bad", " really terrible service and the staff", " a movie\nOutput:")]
    settings = GenerationSettings(max_new_tokens=8, stop=())
    backend = CausalLMBackend(tiny_model)
    out = backend.generate(prompts, settings)
    expected = [
        tiny_model.tokenizer.decode(_greedy(tiny_model, backend.tokens.prefix(p), 8), skip_special_tokens=True)
        for p in prompts
    ]
    assert out == expected
    # the shared prefix ran once: fewer tokens than every prompt in full
    encoded = [backend.tokens.prefix(p) for p in prompts]
    shared = len(backend.tokens.prefix(prefix)) - 1
    longest_rest = max(len(e) - shared for e in encoded)
    assert backend.computed_tokens <= shared + 3 * longest_rest + 3 * 7  # prefix once, padded rests, 7 steps
    assert backend.computed_tokens < sum(len(e) for e in encoded)
    # and transformers' own generate agrees
    ids = torch.tensor([backend.tokens.prefix(prompts[0])])
    with torch.inference_mode():
        hf = tiny_model.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False
        )
    assert (
        out[0]
        == tiny_model.tokenizer.decode(hf[0, ids.shape[1] :], skip_special_tokens=True).split(
            tiny_model.tokenizer.eos_token or "\0"
        )[0]
    )


def test_sampling_is_seeded(tiny_model) -> None:
    backend = CausalLMBackend(tiny_model)
    s = GenerationSettings(max_new_tokens=6, stop=(), temperature=1.0, seed=3)
    a = backend.generate(["Input: a\nAnswer:", "Input: b c\nAnswer:"], s)
    b = backend.generate(["Input: a\nAnswer:", "Input: b c\nAnswer:"], s)
    assert a == b


def test_threads_follow_cores_and_workers(tmp_path, monkeypatch) -> None:
    from optprompt.errors import ConfigError
    from optprompt.scoring.backends.threads import live_workers, threads_for

    assert threads_for(2, 1, None) == 2
    assert threads_for(2, 2, None) == 1
    assert threads_for(16, 3, None) == 5
    assert threads_for(2, 5, None) == 1
    assert threads_for(2, 1, "3") == 3
    with pytest.raises(ConfigError, match="OPTPROMPT_THREADS"):
        threads_for(2, 1, "many")
    import os

    (tmp_path / f"{os.getpid()}.pid").touch()
    (tmp_path / "999999999.pid").touch()  # a dead worker's file is removed
    assert live_workers(tmp_path) == 1
    assert not (tmp_path / "999999999.pid").exists()
