"""Per-input demonstrations: the train examples most similar to each input (kNN retrieval).

A candidate with :class:`Retrieval` settings shows, for each input, ``k`` demonstrations
retrieved from a pool of train examples instead of fixed ones. Texts are compared by the
cosine of their embeddings (by default the task model's mean-pooled last hidden states,
:class:`optprompt.scoring.ModelEmbedder`), of their TF-IDF word vectors over the pool
(``similarity: lexical``, :mod:`optprompt.prompts.lexical`), or by the mean of the two cosines
(``hybrid``); Maximal Marginal Relevance trades similarity
to the input for diversity among the demonstrations; label balance caps how many
demonstrations share a label; the order puts the most similar demonstration next to the
input or keeps the retrieval order.

This module never touches a model: an :class:`Embedder` is injected (the study passes one
built on its model, an exported card one built on the card's model). Every vector is
normalised and rounded to float16 when it is made, so the study and an exported card
(which stores the pool's vectors as float16) compare exactly the same numbers; queries
are embedded one text at a time, so batching never changes a query's vector.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from optprompt.errors import CandidateRejected, ConfigError

if TYPE_CHECKING:
    import numpy as np

    from optprompt.config.served import ServedModelSpec
    from optprompt.tasks.task import Example, Task

__all__ = [
    "POOLINGS",
    "SIMILARITIES",
    "RETRIEVAL_ORDERS",
    "Embedder",
    "Retrieval",
    "DemoPool",
    "Retrievers",
    "select_demos",
    "normalise",
    "encode_vectors",
    "decode_vectors",
]

#: ``closest_last``: the most similar demonstration right before the input (ascending
#: similarity); ``as_retrieved``: the order they were picked in (most similar first).
RETRIEVAL_ORDERS = ("closest_last", "as_retrieved")
#: How a text's last hidden states become one vector: ``mean`` over its tokens, or the
#: ``last`` token's (which, in a decoder-only model, has read the whole text).
POOLINGS = ("mean", "last")
#: How texts are compared: the cosine of their ``embedding`` vectors, of their ``lexical``
#: TF-IDF vectors over the pool's words and word pairs, or the mean of the two (``hybrid``).
SIMILARITIES = ("embedding", "lexical", "hybrid")
_QUERY_CACHE = 100_000


class Embedder(Protocol):
    """Turns texts into vectors (any scale; they are normalised here).

    Attributes:
        ref: The model reference it embeds with (recorded in results and cards).
        fingerprint: The model's fingerprint (a card warns when its model differs).
    """

    ref: str
    fingerprint: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (batched; used for the pool)."""

    def embed_one(self, text: str) -> np.ndarray:
        """One text alone (no padding, no batch: the same vector wherever it is asked for)."""


@dataclass(frozen=True)
class Retrieval:
    """Demonstrations retrieved per input: where from and how.

    Attributes:
        pool: Ids of the train examples demonstrations are retrieved from.
        k: Demonstrations per input (fewer when the pool is smaller).
        mmr: Maximal Marginal Relevance lambda: 1 picks the most similar examples; lower
            values penalise similarity to demonstrations already picked (diversity).
        balance: Give each label (classification) or answer position (multiple choice)
            at most ``ceil(k / labels in the pool)`` demonstrations while other labels
            have examples left.
        order: One of :data:`RETRIEVAL_ORDERS`.
        embedder: The embedding model's reference; None: the task model. A served
            embedding endpoint (an http(s) URL or a mapping, as ``model:`` takes) becomes a
            :class:`~optprompt.config.ServedModelSpec`.
        pooling: One of :data:`POOLINGS`: how the embedding model's last hidden states
            become a text's vector.
        similarity: One of :data:`SIMILARITIES`; ``lexical`` needs no embedding model.
    """

    pool: tuple[str, ...]
    k: int = 4
    mmr: float = 1.0
    balance: bool = False
    order: Literal["closest_last", "as_retrieved"] = "closest_last"
    embedder: str | ServedModelSpec | None = None
    pooling: Literal["mean", "last"] = "mean"
    similarity: Literal["embedding", "lexical", "hybrid"] = "embedding"

    def __post_init__(self) -> None:
        from optprompt.config.served import ServedModelSpec, served_model_field

        if isinstance(self.embedder, (str, dict)) and not isinstance(self.embedder, ServedModelSpec):
            try:
                object.__setattr__(self, "embedder", served_model_field(self.embedder))
            except ValueError as e:
                raise ConfigError(f"retrieval.embedder: {e}") from None
        if not self.pool:
            raise ConfigError("retrieval.pool: empty; demonstrations need train examples to be retrieved from")
        if len(set(self.pool)) != len(self.pool):
            raise ConfigError("retrieval.pool: an example id appears twice")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"retrieval.k: {self.k!r} must be a positive integer")
        if isinstance(self.mmr, bool) or not isinstance(self.mmr, (int, float)) or not 0.0 <= self.mmr <= 1.0:
            raise ConfigError(f"retrieval.mmr: {self.mmr!r} must be a number from 0 to 1")
        if not isinstance(self.balance, bool):
            raise ConfigError(f"retrieval.balance: {self.balance!r} must be true or false")
        if self.order not in RETRIEVAL_ORDERS:
            raise ConfigError(f"retrieval.order: {self.order!r} is not one of {', '.join(RETRIEVAL_ORDERS)}")
        if (
            isinstance(self.embedder, str)
            and not self.embedder.strip()
            or not isinstance(self.embedder, (str, ServedModelSpec, type(None)))
        ):
            raise ConfigError(
                f"retrieval.embedder: {self.embedder!r} must be a model reference, a served embeddings endpoint "
                "(http://HOST:PORT/v1 or {url: ..., name: ...}) or null"
            )
        if self.pooling not in POOLINGS:
            raise ConfigError(f"retrieval.pooling: {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        if self.similarity not in SIMILARITIES:
            raise ConfigError(f"retrieval.similarity: {self.similarity!r} is not one of {', '.join(SIMILARITIES)}")

    def settings(self) -> dict[str, Any]:
        """The settings without the pool."""
        return {"k": self.k, "mmr": self.mmr, "balance": self.balance, "order": self.order}

    def to_dict(self) -> dict[str, Any]:
        embedder = self.embedder
        if embedder is not None and not isinstance(embedder, str):
            embedder = embedder.model_dump(exclude_defaults=True)  # a served endpoint: its settings, never a key
        out = {**self.settings(), "embedder": embedder, "pooling": self.pooling, "pool": list(self.pool)}
        if self.similarity != "embedding":  # only when set: the hashes of earlier candidates hold
            out["similarity"] = self.similarity
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Retrieval:
        known = {"pool", "k", "mmr", "balance", "order", "embedder", "pooling", "similarity"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"retrieval: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{**data, "pool": tuple(data.get("pool", ()))})


# --- vectors ---------------------------------------------------------------------------
def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), rounded to float16, as float32."""
    import numpy as np

    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(norms > 0, v / np.where(norms > 0, norms, 1.0), 0.0)
    return v.astype(np.float16).astype(np.float32)


def encode_vectors(vectors: np.ndarray) -> dict[str, Any]:
    """Normalised vectors as JSON: float16, little-endian, base64."""
    import numpy as np

    v = np.ascontiguousarray(np.asarray(vectors, dtype="<f2"))
    return {
        "rows": int(v.shape[0]),
        "dim": int(v.shape[1]),
        "dtype": "float16",
        "data": base64.b64encode(v.tobytes()).decode("ascii"),
    }


def decode_vectors(data: dict[str, Any], *, where: str = "vectors") -> np.ndarray:
    """Inverse of :func:`encode_vectors` (float32 rows)."""
    import numpy as np

    try:
        if data["dtype"] != "float16":
            raise ValueError(f"dtype {data['dtype']!r} is not float16")
        raw = base64.b64decode(data["data"], validate=True)
        v = np.frombuffer(raw, dtype="<f2").reshape(int(data["rows"]), int(data["dim"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: not a valid set of embedding vectors ({e})") from None
    return v.astype(np.float32)


# --- selection ---------------------------------------------------------------------------
def select_demos(
    query: np.ndarray,
    pool: np.ndarray,
    settings: Retrieval,
    *,
    labels: Sequence[str | None] | None = None,
    exclude: Sequence[int] = (),
) -> list[int]:
    """Indices into ``pool`` of the demonstrations for ``query``, in prompt order.

    Greedy Maximal Marginal Relevance: each step picks the pool row maximising
    ``mmr * sim(query, row) - (1 - mmr) * max sim(row, picked)`` (the first pick: the
    most similar; ties: the lower index), never ``exclude``. With ``balance``, a label
    that has its share (``ceil(k / labels)``) is passed over while other labels have
    rows left; when only capped labels remain, they fill the ``k`` places.

    Args:
        query: The input's normalised vector.
        pool: The pool's normalised vectors, one row each.
        settings: ``k``, ``mmr``, ``balance`` and ``order``.
        labels: Each pool row's label (for ``balance``; None entries are never capped).
        exclude: Rows never picked (the query itself, when it is in the pool).
    """
    import numpy as np

    n = pool.shape[0]
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    sims = pool @ q
    available = np.ones(n, dtype=bool)
    for i in exclude:
        available[i] = False
    caps: dict[str, int] = {}
    if settings.balance and labels is not None:
        present = {lbl for lbl, ok in zip(labels, available) if ok and lbl is not None}
        cap = -(-settings.k // max(1, len(present)))
        caps = {lbl: cap for lbl in present}
    lam = float(settings.mmr)
    capped = np.zeros(n, dtype=bool)  # rows whose label has its share (used only when nothing else is left)
    redundancy = np.full(n, -np.inf, dtype=np.float32)
    picked: list[int] = []
    while len(picked) < settings.k and available.any():
        score = lam * sims - (1.0 - lam) * np.where(np.isfinite(redundancy), redundancy, 0.0) if picked else sims
        eligible = available & ~capped
        score = np.where(eligible if eligible.any() else available, score, -np.inf)
        best = int(np.argmax(score))  # the first maximum: ties go to the lower index
        picked.append(best)
        available[best] = False
        if caps:
            lbl = labels[best]  # type: ignore[index]
            if lbl is not None and lbl in caps:
                caps[lbl] -= 1
                if caps[lbl] <= 0:
                    capped |= np.array([x == lbl for x in labels], dtype=bool)  # type: ignore[union-attr]
        redundancy = np.maximum(redundancy, pool @ pool[best])
    if settings.order == "closest_last":
        rank = {i: r for r, i in enumerate(picked)}
        picked = sorted(picked, key=lambda i: (float(sims[i]), -rank[i]))
    return picked


# --- pools and the per-study cache -------------------------------------------------------
class DemoPool:
    """A pool of examples with their vectors, and one embedder for queries.

    Args:
        ids / texts / labels: The pool (labels for balance, None where there is none).
        embedder: Embeds queries (and the pool, unless ``vectors`` are given); a factory
            is called on first use, so a ``lexical`` pool never loads a model.
        vectors: The pool's embedding vectors as :func:`normalise` returns them (an exported
            card's); embedded (batched, once) on first use when None.
        queries: A shared text -> embedding vector cache for ``embedder``'s queries.
        similarity: One of :data:`SIMILARITIES`: ``lexical`` and ``hybrid`` fit a TF-IDF
            vocabulary on ``texts`` (:class:`~optprompt.prompts.lexical.LexicalEmbedder`).
    """

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        labels: Sequence[str | None],
        embedder: Embedder | Callable[[], Embedder],
        *,
        vectors: np.ndarray | None = None,
        queries: OrderedDict[str, np.ndarray] | None = None,
        similarity: str = "embedding",
    ) -> None:
        from optprompt.prompts.lexical import LexicalEmbedder

        if not (len(ids) == len(texts) == len(labels)):
            raise ConfigError("retrieval pool: ids, texts and labels differ in length")
        if similarity not in SIMILARITIES:
            raise ConfigError(f"retrieval pool: similarity {similarity!r} is not one of {', '.join(SIMILARITIES)}")
        self.ids = list(ids)
        self.texts = list(texts)
        self.labels = list(labels)
        self.index = {i: n for n, i in enumerate(self.ids)}
        self.similarity = similarity
        self._embedder = embedder
        self._vectors = vectors
        self._queries: OrderedDict[str, np.ndarray] = queries if queries is not None else OrderedDict()
        self._lexical = LexicalEmbedder.fit(self.texts) if similarity != "embedding" else None
        self._matrix: np.ndarray | None = None
        if vectors is not None and vectors.shape[0] != len(self.ids):
            raise ConfigError(f"retrieval pool: {vectors.shape[0]} vectors for {len(self.ids)} examples")

    @property
    def embedder(self) -> Embedder:
        if callable(self._embedder) and not hasattr(self._embedder, "embed_one"):
            self._embedder = self._embedder()  # a factory: load the model on first use
        return self._embedder  # type: ignore[return-value]

    @property
    def uses_model(self) -> bool:
        """Whether texts are compared (partly) by the embedding model's vectors."""
        return self.similarity != "lexical"

    @property
    def vectors(self) -> np.ndarray:
        """The pool's normalised embedding vectors (embedded once, batched; what a card stores)."""
        if self._vectors is None:
            self._vectors = normalise(self.embedder.embed(self.texts))
        return self._vectors

    @property
    def matrix(self) -> np.ndarray:
        """The pool's vectors as queries are compared with them (see :meth:`query`)."""
        if self._matrix is None:
            lexical = normalise(self._lexical.embed(self.texts)) if self._lexical is not None else None
            self._matrix = self._combine(self.vectors if self.uses_model else None, lexical)
        return self._matrix

    def _combine(self, embedding: np.ndarray | None, lexical: np.ndarray | None) -> np.ndarray:
        """One normalised vector per row: ``hybrid`` joins the two unit vectors, so a dot
        product is the mean of the two cosines."""
        import numpy as np

        if lexical is None:
            return embedding  # type: ignore[return-value]
        if embedding is None:
            return lexical
        return normalise(np.concatenate([embedding, lexical], axis=1))

    def _embedding(self, text: str) -> np.ndarray:
        v = self._queries.get(text)
        if v is None:
            v = normalise(self.embedder.embed_one(text))[0]
            self._queries[text] = v
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return v

    def query(self, text: str) -> np.ndarray:
        """``text``'s normalised vector (its embedding part cached)."""
        embedding = self._embedding(text)[None] if self.uses_model else None
        lexical = normalise(self._lexical.embed_one(text)) if self._lexical is not None else None
        return self._combine(embedding, lexical)[0]

    def select(self, settings: Retrieval, text: str, exclude_id: str | None = None) -> list[int]:
        """Pool indices of ``text``'s demonstrations, in prompt order; never ``exclude_id``."""
        if self.uses_model:
            vectors, query = self.vectors, self._embedding(text)
            if query.shape[0] != vectors.shape[1]:
                raise ConfigError(
                    f"retrieval: the query's embedding has {query.shape[0]} dimensions, the pool's "
                    f"{vectors.shape[1]}: they come from different embedding models"
                )
        exclude = [self.index[exclude_id]] if exclude_id is not None and exclude_id in self.index else []
        return select_demos(self.query(text), self.matrix, settings, labels=self.labels, exclude=exclude)


class Retrievers:
    """Demonstration pools of one study, embedded once each, with one embedder per model.

    Args:
        embedder_for: ``(model reference (None: the task model), pooling)`` ->
            :class:`Embedder`; called once per pair, when a candidate first retrieves with it.
    """

    def __init__(self, embedder_for: Callable[[str | None, str], Embedder]) -> None:
        self._embedder_for = embedder_for
        self._embedders: dict[tuple[str | None, str], Embedder] = {}
        self._queries: dict[tuple[str | None, str], OrderedDict[str, np.ndarray]] = {}
        self._pools: dict[tuple[str | None, str, tuple[str, ...]], DemoPool] = {}

    def embedder(self, ref: str | None, pooling: str = "mean") -> Embedder:
        if (ref, pooling) not in self._embedders:
            self._embedders[ref, pooling] = self._embedder_for(ref, pooling)
        return self._embedders[ref, pooling]

    def pool(self, settings: Retrieval, task: Task) -> DemoPool:
        """The pool ``settings`` retrieve from (examples of ``task``), embedded once."""
        key = (settings.embedder, settings.pooling, settings.pool, settings.similarity)
        if key not in self._pools:
            try:
                examples = [task.example(i) for i in settings.pool]
            except KeyError as e:
                raise CandidateRejected(f"retrieval pool: {e}") from None
            self._pools[key] = DemoPool(
                [ex.id for ex in examples],
                [ex.input for ex in examples],
                [task.task_type.balance_key(ex) for ex in examples],
                # built on first use: a lexical pool needs no embedding model (nor a served study one)
                lambda: self.embedder(settings.embedder, settings.pooling),
                queries=self._queries.setdefault((settings.embedder, settings.pooling), OrderedDict()),
                similarity=settings.similarity,
            )
        return self._pools[key]

    def demos(self, settings: Retrieval, task: Task, example: Example) -> list[Example]:
        """``example``'s demonstrations (never ``example`` itself), in prompt order."""
        pool = self.pool(settings, task)
        return [task.example(pool.ids[i]) for i in pool.select(settings, example.input, example.id)]
