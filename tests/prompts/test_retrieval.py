"""kNN retrieval of per-input demonstrations: nearest by cosine, MMR diversity, label
balance, order, never the query itself, deterministic; candidates and rendering."""

from __future__ import annotations

import numpy as np
import pytest

from optprompt.errors import ConfigError
from optprompt.prompts import PromptCandidate, PromptRenderer, Retrieval, Retrievers, select_demos
from optprompt.prompts.retrieval import DemoPool, decode_vectors, encode_vectors, normalise
from optprompt.tasks.task import Example, Task


def _settings(k: int = 2, **kw: object) -> Retrieval:
    return Retrieval(pool=("a",), k=k, **kw)  # type: ignore[arg-type]


def _unit(*rows: list[float]) -> np.ndarray:
    return normalise(np.array(rows, dtype=np.float32))


def test_picks_the_nearest_by_cosine_not_by_length() -> None:
    query = _unit([1.0, 0.0])[0]
    # Row 0 is long but points away; row 2 is short and closest in angle.
    pool = _unit([10.0, 10.0], [0.0, 1.0], [0.1, 0.01], [1.0, 0.3])
    assert select_demos(query, pool, _settings(2, order="as_retrieved")) == [2, 3]
    raw = np.array([[10.0, 10.0], [0.0, 1.0], [0.1, 0.01], [1.0, 0.3]], dtype=np.float32)
    cos = raw @ np.array([1.0, 0.0]) / np.linalg.norm(raw, axis=1)
    assert list(np.argsort(-cos)[:2]) == [2, 3]


def test_mmr_trades_similarity_for_diversity() -> None:
    query = _unit([1.0, 0.0, 0.0])[0]
    # Rows 0 and 1 are near-duplicates close to the query; row 2 is a little less close but different.
    pool = _unit([1.0, 0.1, 0.0], [1.0, 0.11, 0.0], [0.8, 0.0, 0.6])
    assert select_demos(query, pool, _settings(2, mmr=1.0, order="as_retrieved")) == [0, 1]
    assert select_demos(query, pool, _settings(2, mmr=0.5, order="as_retrieved")) == [0, 2]


def test_label_balance_caps_each_label() -> None:
    query = _unit([1.0, 0.0])[0]
    pool = _unit([1.0, 0.01], [1.0, 0.02], [1.0, 0.03], [0.5, 1.0], [0.0, 1.0])
    labels = ["pos", "pos", "pos", "neg", "neg"]
    assert select_demos(query, pool, _settings(2, order="as_retrieved"), labels=labels) == [0, 1]
    assert select_demos(query, pool, _settings(2, balance=True, order="as_retrieved"), labels=labels) == [0, 3]
    four = select_demos(query, pool, _settings(4, balance=True, order="as_retrieved"), labels=labels)
    assert sorted(labels[i] for i in four) == ["neg", "neg", "pos", "pos"]
    # A label that runs out leaves its places to the others: k is still filled.
    one_neg = ["pos", "pos", "pos", "neg", "pos"]
    filled = select_demos(query, pool, _settings(4, balance=True, order="as_retrieved"), labels=one_neg)
    assert filled == [0, 1, 3, 2]
    # k below the number of labels: one per label, the most similar of each first.
    three = ["a", "b", "c", "c", "c"]
    assert select_demos(query, pool, _settings(2, balance=True, order="as_retrieved"), labels=three) == [0, 1]


def test_order_puts_the_most_similar_next_to_the_input() -> None:
    query = _unit([1.0, 0.0])[0]
    pool = _unit([0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.5])
    assert select_demos(query, pool, _settings(3, order="as_retrieved")) == [1, 3, 2]
    assert select_demos(query, pool, _settings(3, order="closest_last")) == [2, 3, 1]


def test_never_the_query_itself_and_k_larger_than_the_pool() -> None:
    query = _unit([1.0, 0.0])[0]
    pool = _unit([1.0, 0.0], [0.9, 0.1], [0.0, 1.0])
    assert 0 not in select_demos(query, pool, _settings(2), exclude=[0])
    assert sorted(select_demos(query, pool, _settings(8), exclude=[0])) == [1, 2]


def test_ties_and_zero_vectors_are_deterministic() -> None:
    pool = _unit([1.0, 0.0], [1.0, 0.0], [1.0, 0.0])
    zero = np.zeros(2, dtype=np.float32)
    runs = {tuple(select_demos(zero, pool, _settings(2, order="as_retrieved"))) for _ in range(5)}
    assert runs == {(0, 1)}


def test_vectors_round_trip_exactly() -> None:
    rng = np.random.default_rng(0)
    v = normalise(rng.normal(size=(7, 16)))
    assert np.array_equal(decode_vectors(encode_vectors(v)), v)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    with pytest.raises(ConfigError, match="card.vectors: not a valid set"):
        decode_vectors({"dtype": "float16", "rows": 3, "dim": 16, "data": "AAAA"}, where="card.vectors")


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"pool": ()}, "retrieval.pool: empty"),
        ({"pool": ("a", "a")}, "appears twice"),
        ({"k": 0}, "retrieval.k"),
        ({"mmr": 1.5}, "retrieval.mmr"),
        ({"order": "sideways"}, "retrieval.order: 'sideways'"),
        ({"embedder": " "}, "retrieval.embedder"),
    ],
)
def test_bad_settings_are_named(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Retrieval(**{"pool": ("a", "b"), **kw})


# --- candidates and the renderer ----------------------------------------------------------
class _WordEmbedder:
    """Bag of words over a fixed vocabulary: similar texts share words."""

    ref = "bag-of-words"
    fingerprint = "bow:1"

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab
        self.calls = 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.calls += 1
        return np.stack([self.embed_one(t) for t in texts])

    def embed_one(self, text: str) -> np.ndarray:
        words = text.split()
        return np.array([words.count(w) for w in self.vocab], dtype=np.float32)


def _task() -> Task:
    def ex(i: str, text: str, label: str) -> Example:
        return Example(id=i, input=text, target=label, target_index=["neg", "pos"].index(label), row=i)

    train = [
        ex("t0", "great food", "pos"),
        ex("t1", "great room", "pos"),
        ex("t2", "awful food", "neg"),
        ex("t3", "awful room", "neg"),
        ex("t4", "great great food", "pos"),
    ]
    dev = [ex("d0", "great food again", "pos"), ex("d1", "awful awful room", "neg")]
    return Task(
        name="t",
        type="classification",
        train=train,
        dev=dev,
        test=dev,
        labels=("neg", "pos"),
        verbalizer={"neg": "bad", "pos": "good"},
        instruction="Classify.",
        template="Review: {input}\nAnswer:",
        metric="accuracy",
    )


def _candidate(**kw: object) -> PromptCandidate:
    r = Retrieval(pool=("t0", "t1", "t2", "t3", "t4"), **kw)  # type: ignore[arg-type]
    return PromptCandidate(
        instruction="Classify.",
        template="Review: {input}\nAnswer:",
        verbalizer=(("neg", "bad"), ("pos", "good")),
        retrieval=r,
    )


def test_candidate_round_trips_and_hashes_stay_for_fixed_demos() -> None:
    cand = _candidate(k=2, mmr=0.5, balance=True)
    again = PromptCandidate.from_dict(cand.to_dict())
    assert again == cand and again.hash == cand.hash
    plain = PromptCandidate(instruction="x", template="{input}")
    assert "retrieval" not in plain.to_dict()
    assert _candidate(k=3).hash != _candidate(k=2).hash
    with pytest.raises(ConfigError, match="not both"):
        PromptCandidate(instruction="x", template="{input}", demo_ids=("t0",), retrieval=cand.retrieval)
    with pytest.raises(ConfigError, match="retrieval: unknown key"):
        PromptCandidate.from_dict({**cand.to_dict(), "retrieval": {**cand.retrieval.to_dict(), "kay": 2}})


def test_renderer_retrieves_per_input_and_embeds_the_pool_once() -> None:
    task = _task()
    embedder = _WordEmbedder(["great", "awful", "food", "room", "again"])
    renderer = PromptRenderer(task, retrievers=Retrievers(lambda ref, pooling: embedder))
    cand = _candidate(k=2)
    first = renderer.demos(cand, task.dev[0])
    assert [d.id for d in first] == ["t4", "t0"]  # closest last
    assert [d.id for d in renderer.demos(cand, task.dev[1])] == ["t2", "t3"]
    reqs = renderer.requests(cand, task.dev)
    assert reqs[0].prefix != reqs[1].prefix  # demonstrations differ per input
    assert "Review: great food\nAnswer: good" in reqs[0].prefix
    assert embedder.calls == 1  # the pool, once
    # A train example is never its own demonstration.
    assert "t0" not in [d.id for d in renderer.demos(cand, task.train[0])]
    assert "retrieved for the input from 5 examples" in renderer.render_text(cand)


def test_renderer_without_an_embedder_says_so() -> None:
    task = _task()
    with pytest.raises(ConfigError, match="retrieves its demonstrations per input.*no embedder"):
        PromptRenderer(task).request(_candidate(), task.dev[0])


def test_pool_with_given_vectors_does_not_embed() -> None:
    class _Fails:
        ref, fingerprint = "x", "x"

        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise AssertionError("the pool must not be embedded again")

        def embed_one(self, text: str) -> np.ndarray:
            return np.array([1.0, 0.0], dtype=np.float32)

    pool = DemoPool(["a", "b"], ["x", "y"], [None, None], _Fails(), vectors=_unit([0.0, 1.0], [1.0, 0.0]))
    assert pool.select(_settings(1), "anything") == [1]


def test_adapters_train_around_fixed_text_only() -> None:
    from optprompt.adapters.candidate import SoftCandidate

    cand = _candidate(k=2)
    assert "retrieval" not in cand.text_fields()
    assert SoftCandidate.create(cand, "lora", {}).retrieval is None
    with pytest.raises(ConfigError, match="cannot be retrieved per input"):
        SoftCandidate(instruction="x", template="{input}", retrieval=cand.retrieval)
