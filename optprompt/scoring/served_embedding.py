"""Text embeddings from a model server's ``/v1/embeddings`` (vLLM started with
``--runner pooling --convert embed``, or any OpenAI-compatible embeddings endpoint).

Per-input (kNN) demonstrations compare inputs by their embeddings. With a served task
model there are no hidden states to pool, so a study names an embedding model explicitly:
a local model (:class:`~optprompt.scoring.embedding.ModelEmbedder`) or, with this module,
a served one (the strategy's ``embedder: http://HOST:PORT/v1`` or a mapping such as
``model:`` takes). :class:`ServedEmbedder` checks once that the endpoint embeds (a server
that serves generation only is refused with an error saying how to start one that embeds),
then embeds texts in batches. The server pools as it was configured (``--pooler-config``):
optprompt's ``pooling`` option applies to local embedding models only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import ModelError, ServerError

if TYPE_CHECKING:
    import numpy as np

    from optprompt.config.served import ServedModelSpec

__all__ = ["ServedEmbedder", "NO_EMBEDDINGS"]

#: Why a server without embeddings is refused, and what to do instead.
NO_EMBEDDINGS = (
    "it does not serve embeddings. Serve an embedding model (vLLM: `python -m vllm.entrypoints.openai.api_server "
    "--model DIR --runner pooling --convert embed`) or name a local embedding model (embedder: NAME or DIR)"
)
#: Texts per request.
BATCH = 64


class ServedEmbedder:
    """Embeds texts through a server's ``/v1/embeddings``.

    Args:
        spec: The served embedding model (``url``, ``name`` when it serves several,
            ``api_key_env``, ``max_concurrency``, ``timeout``, ``retries``).

    Raises:
        ModelError: the server lists no such model, or does not embed (the probe).
    """

    def __init__(self, spec: ServedModelSpec) -> None:
        from optprompt.models.endpoint import Call, Endpoint

        self.spec = spec
        self.endpoint = Endpoint(
            spec.url,
            api_key_env=spec.api_key_env,
            max_concurrency=spec.max_concurrency,
            timeout=spec.timeout,
            retries=spec.retries,
        )
        listed = self.endpoint.call(Call("GET", "/models", what="listing the served embedding models"))
        data = listed.get("data") if isinstance(listed, dict) else None
        ids = [str(d["id"]) for d in data or [] if isinstance(d, dict) and "id" in d]
        if spec.name is not None and spec.name not in ids:
            raise ModelError(f"embedding server {spec.url} serves no model {spec.name!r}; it serves: {', '.join(ids)}")
        if spec.name is None and len(ids) != 1:
            raise ModelError(
                f"embedding server {spec.url} serves {len(ids)} models ({', '.join(ids) or 'none'}): say which with "
                "embedder: {url: ..., name: ...}"
            )
        self.model_id = spec.name or ids[0]
        entry = next(d for d in data or [] if isinstance(d, dict) and d.get("id") == self.model_id)
        self.root = str(entry.get("root") or self.model_id)
        try:
            probe = self._request(["The capital of France is Paris."], "the embeddings probe")
        except ServerError as e:
            raise ModelError(f"embedding server {spec.url} ({self.model_id}): {e}; {NO_EMBEDDINGS}") from None
        self.dim = len(probe[0])
        #: Recorded in cards and results: the endpoint (never the key).
        self.ref = spec.ref
        digest = hashlib.sha256("\n".join([spec.url, self.model_id, self.root, str(self.dim)]).encode()).hexdigest()
        self.fingerprint = f"served-embeddings:{self.model_id}:{digest[:16]}"

    @property
    def reference(self) -> dict[str, Any]:
        """What rebuilds this embedder (a card records it): the served spec, without defaults."""
        return self.spec.model_dump(exclude_defaults=True)

    def _request(self, texts: Sequence[str], what: str) -> list[list[float]]:
        from optprompt.models.endpoint import Call

        body = {"model": self.model_id, "input": list(texts), "encoding_format": "float"}
        answer = self.endpoint.call(Call("POST", "/embeddings", body, what))
        return _vectors(answer, len(texts), self.spec.url)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text (an empty text: zeros), ``BATCH`` texts per request, the
        requests concurrent."""
        import numpy as np

        from optprompt.models.endpoint import Call

        rows = [i for i, t in enumerate(texts) if t]
        chunks = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        calls = [
            Call(
                "POST",
                "/embeddings",
                {"model": self.model_id, "input": [texts[i] for i in chunk], "encoding_format": "float"},
                f"embedding texts {chunk[0]}-{chunk[-1]}",
            )
            for chunk in chunks
        ]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for chunk, answer in zip(chunks, self.endpoint.many(calls)):
            out[chunk] = np.asarray(_vectors(answer, len(chunk), self.spec.url), dtype=np.float32)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """``text`` alone, in a request of its own."""
        import numpy as np

        if not text:
            return np.zeros(self.dim, dtype=np.float32)
        return np.asarray(self._request([text], "embedding an input")[0], dtype=np.float32)

    def close(self) -> None:
        self.endpoint.close()


def _vectors(answer: Any, n: int, url: str) -> list[list[float]]:
    """The ``n`` vectors of an embeddings answer, in input order."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != n:
        raise ServerError(f"{url}: expected {n} embeddings, got {str(answer)[:200]}")
    out: list[list[float] | None] = [None] * n
    for position, item in enumerate(data):
        i = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(i, int) or not 0 <= i < n or not isinstance(vector, list) or not vector:
            raise ServerError(f"{url}: an unreadable embedding ({str(item)[:200]})")
        out[i] = [float(v) for v in vector]
    return [v for v in out if v is not None]
