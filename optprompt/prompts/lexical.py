"""Lexical text vectors: TF-IDF over words and word pairs, fitted on a demonstration pool.

What per-input retrieval compares texts with when a candidate's ``similarity`` is
``lexical`` (or ``hybrid``, beside a model's embeddings): two texts are close when they
share words that are rare in the pool. On many-label intent tasks shared content words
("playlist", "alarm") predict the label better than a small model's pooled hidden states
do; on short noisy messages the two are level (docs/strategies.md, "Retrieval").

A :class:`LexicalEmbedder` is fitted on the pool it retrieves from (:meth:`fit`): its
vocabulary is the pool's words and word pairs, each weighted by its smoothed inverse document
frequency, so the same pool texts give the same vectors in a study and in an exported card
(which rebuilds it from the pool's stored inputs). A query's words the pool never uses add
to the query's length in one extra dimension that no pool vector has, so cosines are exact.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LexicalEmbedder", "terms"]

_WORD = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> Counter[str]:
    """The casefolded words of ``text`` and its adjacent word pairs, counted."""
    words = _WORD.findall(text.casefold())
    return Counter(words + [f"{a} {b}" for a, b in zip(words, words[1:])])


class LexicalEmbedder:
    """TF-IDF vectors (sublinear term frequency, smoothed IDF) over a pool's vocabulary.

    Unfitted it has no vocabulary: :meth:`fit` returns the embedder of one pool. The
    :class:`~optprompt.prompts.retrieval.Embedder` protocol's ``ref`` and ``fingerprint``
    name the method (there is no model).
    """

    ref = "lexical"
    fingerprint = "tfidf-words-pairs-v1"

    def __init__(self, vocabulary: dict[str, int] | None = None, idf: Sequence[float] = ()) -> None:
        self.vocabulary = dict(vocabulary or {})
        self.idf = list(idf)
        self._unseen = max(self.idf, default=1.0)  # the weight of a word the pool never used

    @classmethod
    def fit(cls, texts: Sequence[str]) -> LexicalEmbedder:
        """The embedder of ``texts``: their terms in sorted order, each with its IDF."""
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(terms(t)))
        n = len(texts)
        vocab = {term: i for i, term in enumerate(sorted(df))}
        idf = [math.log((1 + n) / (1 + df[term])) + 1.0 for term in sorted(df)]
        out = cls(vocab, idf)
        out._unseen = math.log(1 + n) + 1.0
        return out

    @property
    def dim(self) -> int:
        return len(self.vocabulary) + 1

    def embed_one(self, text: str) -> np.ndarray:
        import numpy as np

        v = np.zeros(self.dim, dtype=np.float32)
        unseen = 0.0
        for term, count in terms(text).items():
            i = self.vocabulary.get(term)
            if i is None:
                unseen += ((1.0 + math.log(count)) * self._unseen) ** 2
            else:
                v[i] = (1.0 + math.log(count)) * self.idf[i]
        v[-1] = math.sqrt(unseen)
        return v

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed_one(t) for t in texts])
