"""Scoring prompts whose demonstrations are retrieved per input (every example its own
prefix): the packed engine scores them all at once exactly as one example at a time, and
the model embedder gives a query the same vector alone as in a batch (to float precision)."""

from __future__ import annotations

import numpy as np
import pytest

from optprompt.prompts import PromptCandidate, PromptRenderer, Retrieval, Retrievers
from optprompt.scoring import CausalLMBackend, ModelEmbedder, naive_loglikelihoods
from optprompt.tasks.task import Example, Task


def _task(n_labels: int) -> Task:
    import random

    from optprompt_testdata import WORDS

    rng = random.Random(n_labels)
    labels = tuple(f"l{i}" for i in range(n_labels))

    def ex(i: str) -> Example:
        j = rng.randrange(n_labels)
        return Example(id=i, input=" ".join(rng.choices(WORDS, k=rng.randint(3, 12))), target=labels[j], target_index=j)

    train = [ex(f"t{i}") for i in range(20)]
    dev = [ex(f"d{i}") for i in range(9)]
    return Task(
        name="knn",
        type="classification",
        train=train,
        dev=dev,
        test=dev,
        labels=labels,
        verbalizer={lbl: w for lbl, w in zip(labels, ["good", "bad", "fine", "poor", "great"])},
        instruction="Classify.",
        template="Input: {input}\nAnswer:",
    )


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize(
    "k,mmr,balance,order,pooling", [(3, 1.0, False, "closest_last", "mean"), (4, 0.5, True, "as_retrieved", "last")]
)
def test_per_example_prefixes_score_as_one_at_a_time(  # type: ignore[no-untyped-def]
    tiny_model, tiny_plain_model, chat, k, mmr, balance, order, pooling
) -> None:
    loaded = tiny_model if chat else tiny_plain_model
    task = _task(3 if balance else 2)
    renderer = PromptRenderer(
        task,
        loaded.chat_formatter() if chat else None,
        retrievers=Retrievers(lambda ref, pooling: ModelEmbedder(loaded, pooling=pooling)),
    )
    cand = PromptCandidate(
        instruction="Classify.",
        template="Input: {input}\nAnswer:",
        verbalizer=tuple(task.verbalizer.items()),
        retrieval=Retrieval(
            pool=tuple(e.id for e in task.train), k=k, mmr=mmr, balance=balance, order=order, pooling=pooling
        ),
    )
    reqs = renderer.requests(cand, task.dev)
    assert len({r.prefix for r in reqs}) > 1  # the demonstrations differ per input
    backend = CausalLMBackend(loaded, engine="packed", pack_tokens=96)
    together = backend.loglikelihoods(reqs)
    alone = [CausalLMBackend(loaded, engine="packed").loglikelihoods([r])[0] for r in reqs]
    naive = naive_loglikelihoods(loaded, reqs)
    for a, b, c in zip(together, alone, naive):
        assert a == pytest.approx(b, abs=1e-4)
        assert a == pytest.approx(c, abs=1e-4)
    legacy = CausalLMBackend(loaded, engine="padded").loglikelihoods(reqs)
    for a, b in zip(together, legacy):
        assert a == pytest.approx(b, abs=1e-4)


def test_embedder_batches_agree_with_one_text_alone(tiny_model, tiny_masked, tiny_seq2seq) -> None:  # type: ignore[no-untyped-def]
    texts = ["the hotel was great", "bad food", "", "lovely staff never again the room was fine"]
    for loaded, pooling in [(m, p) for m in (tiny_model, tiny_masked, tiny_seq2seq) for p in ("mean", "last")]:
        e = ModelEmbedder(loaded, pooling=pooling)
        batch = e.embed(texts)
        alone = np.stack([e.embed_one(t) for t in texts])
        assert batch.shape == (4, e.dim)
        assert np.allclose(batch, alone, atol=1e-4)
        assert not batch[2].any()  # an empty text: zeros
        assert np.array_equal(e.embed_one(texts[0]), e.embed_one(texts[0]))
    mean, last = (
        ModelEmbedder(tiny_model).embed_one(texts[3]),
        ModelEmbedder(tiny_model, pooling="last").embed_one(texts[3]),
    )
    assert not np.allclose(mean, last)
