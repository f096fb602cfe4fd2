"""Lexical retrieval: TF-IDF over words and word pairs fitted on the pool; the ``lexical``
and ``hybrid`` similarities of a demonstration pool."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optprompt.errors import ConfigError
from optprompt.prompts import PromptCandidate, Retrieval
from optprompt.prompts.lexical import LexicalEmbedder, terms
from optprompt.prompts.retrieval import DemoPool, normalise

POOL = ["Play my road trip playlist", "Set the alarm for six", "Cancel the alarm", "What is the weather"]


class _NoModel:
    """An embedder that must never be asked: lexical pools need no model."""

    ref, fingerprint = "none", "none"

    def embed(self, texts):  # type: ignore[no-untyped-def]
        raise AssertionError("a lexical pool embedded its texts with a model")

    def embed_one(self, text: str) -> np.ndarray:
        raise AssertionError("a lexical pool embedded a query with a model")


def test_terms_are_casefolded_words_and_adjacent_pairs() -> None:
    assert terms("Wake me UP, wake me") == {
        "wake": 2, "me": 2, "up": 1, "wake me": 2, "me up": 1, "up wake": 1,
    }  # fmt: skip
    assert terms("") == {}


def test_rare_shared_words_count_more_than_common_ones() -> None:
    lex = LexicalEmbedder.fit(POOL)
    pool = normalise(lex.embed(POOL))
    # "the" is in three of four pool texts; "playlist" in one.
    query = normalise(lex.embed_one("start the playlist"))[0]
    assert int(np.argmax(pool @ query)) == 0
    assert lex.idf[lex.vocabulary["playlist"]] > lex.idf[lex.vocabulary["the"]]


def test_cosine_is_exact_with_words_the_pool_never_used() -> None:
    """A query's unseen words lengthen it (one extra dimension), so its cosines shrink."""
    lex = LexicalEmbedder.fit(POOL)
    pool = normalise(lex.embed(POOL))
    seen = normalise(lex.embed_one("cancel alarm"))[0]
    unseen = normalise(lex.embed_one("cancel alarm tomorrow morning"))[0]
    assert pool[:, -1].tolist() == [0.0] * len(POOL)  # the pool uses only its own words
    assert float(pool[2] @ unseen) < float(pool[2] @ seen)
    # By hand: query terms cancel, alarm (pair "cancel alarm" unseen); row 2: cancel, the, alarm, 2 pairs.
    idf = {t: lex.idf[lex.vocabulary[t]] for t in ("cancel", "alarm", "the", "cancel the", "the alarm")}
    unseen_weight = math.log(1 + len(POOL)) + 1
    q_norm = math.sqrt(idf["cancel"] ** 2 + idf["alarm"] ** 2 + unseen_weight**2)
    r_norm = math.sqrt(sum(v**2 for v in idf.values()))
    want = (idf["cancel"] ** 2 + idf["alarm"] ** 2) / (q_norm * r_norm)
    assert float(pool[2] @ seen) == pytest.approx(want, abs=2e-3)  # float16 rounding


def test_the_same_pool_gives_the_same_vectors() -> None:
    a, b = LexicalEmbedder.fit(POOL), LexicalEmbedder.fit(list(POOL))
    assert a.vocabulary == b.vocabulary and a.idf == b.idf
    assert np.array_equal(a.embed(POOL), b.embed(POOL))
    assert list(a.vocabulary) == sorted(a.vocabulary)


def test_a_lexical_pool_never_loads_a_model() -> None:
    pool = DemoPool(["a", "b", "c", "d"], POOL, [None] * 4, _NoModel(), similarity="lexical")
    picked = pool.select(Retrieval(pool=("a",), k=1), "please set an alarm")
    assert picked == [1]


def test_hybrid_compares_by_the_mean_of_the_two_cosines() -> None:
    embedded = normalise(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], dtype=np.float32))

    class _Fixed:
        ref, fingerprint = "fixed", "fixed"

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return embedded

        def embed_one(self, text: str) -> np.ndarray:
            return np.array([1.0, 0.2], dtype=np.float32)

    pool = DemoPool(["a", "b", "c", "d"], POOL, [None] * 4, _Fixed(), similarity="hybrid")
    lex = LexicalEmbedder.fit(POOL)
    text = "cancel the alarm now"
    got = pool.matrix @ pool.query(text)
    lexical = normalise(lex.embed(POOL)) @ normalise(lex.embed_one(text))[0]
    embedding = embedded @ normalise(np.array([1.0, 0.2]))[0]
    assert got == pytest.approx((lexical + embedding) / 2, abs=2e-3)
    # The embedding part alone would pick row 0 (the playlist); together they pick the alarm.
    assert int(np.argmax(embedding)) == 0 and int(np.argmax(got)) == 2
    assert pool.vectors.shape == (4, 2)  # what a card stores: the embedding part only


def test_similarity_is_validated_and_kept_out_of_earlier_hashes() -> None:
    with pytest.raises(ConfigError, match="retrieval.similarity: 'bm25' is not one of embedding, lexical, hybrid"):
        Retrieval(pool=("a",), similarity="bm25")  # type: ignore[arg-type]
    plain = Retrieval(pool=("a",))
    assert "similarity" not in plain.to_dict()  # candidates stored before it existed keep their hashes
    hybrid = Retrieval(pool=("a",), similarity="hybrid")
    assert Retrieval.from_dict(hybrid.to_dict()) == hybrid
    cand = PromptCandidate(instruction="x", template="{input}", retrieval=hybrid)
    again = PromptCandidate.from_dict(cand.to_dict())
    assert again == cand and again.hash == cand.hash
    assert cand.hash != PromptCandidate(instruction="x", template="{input}", retrieval=plain).hash
