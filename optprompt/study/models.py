"""The study's model pool: the task model, other models strategies and retrieval ask for,
their scoring backends and the shared score cache. Each model is loaded once per study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optprompt.config.spec import StudySpec
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins
    from optprompt.prompts.retrieval import Embedder
    from optprompt.scoring.backends.base import Backend

__all__ = ["ModelPool"]


class ModelPool:
    """Loads the study's models with its device, dtype and backend settings.

    Args:
        spec: The study (its ``model`` and ``scoring`` settings).
        plugins: Where model loaders and backends are registered.
        model: An already loaded task model (tests pass a tiny one).
        progress: Show loading progress.
    """

    def __init__(self, spec: StudySpec, plugins: Plugins, model: LoadedModel | None = None, progress: bool = True):
        self.spec = spec
        self.plugins = plugins
        self.progress = progress
        self.model = model  # the task model, once loaded
        self._others: dict[Any, LoadedModel] = {}  # embedding models and generators other than the task model
        self._cache = None
        self._task_backend: Backend | None = None

    def load(self, ref: Any, *, with_backend_setting: bool = False) -> LoadedModel:
        from optprompt.models.loading import load_model

        sc = self.spec.scoring
        extra = {"backend": sc.backend} if with_backend_setting else {}
        return load_model(ref, self.plugins, device=sc.device, dtype=sc.dtype, progress=self.progress, **extra)

    def task_model(self) -> LoadedModel:
        """The study's model, loaded on first use."""
        if self.model is None:
            self.model = self.load(self.spec.model, with_backend_setting=True)
        return self.model

    def can_train(self) -> bool:
        """Whether candidates can be trained: an in-process model, or a served one with a
        local copy of its weights (``weights:``)."""
        from optprompt.models.served import is_served_ref, served_spec

        return not is_served_ref(self.spec.model) or served_spec(self.spec.model).weights is not None

    def can_embed(self) -> bool:
        """Whether the task model embeds texts in-process (a served one has no hidden states
        to pool: retrieval then names an ``embedder`` or compares words)."""
        from optprompt.models.served import is_served_ref

        return not is_served_ref(self.spec.model)

    def training_model(self) -> LoadedModel:
        """The model kinds train and score trained candidates on: the task model, or for a
        served one the local copy of its weights when given (else the served model: kinds
        that train are refused before they run, see :meth:`can_train`)."""
        from optprompt.models.served import is_served_ref, served_spec

        if is_served_ref(self.spec.model):
            weights = served_spec(self.spec.model).weights
            if weights is not None:
                return self._other(weights)
        return self.task_model()

    def backend_for(self, model: LoadedModel) -> Backend:
        """A scoring backend for ``model``, behind the shared score cache when it is on."""
        from optprompt.scoring.backends.factory import make_backend
        from optprompt.scoring.cache import CachedBackend, ScoreCache, default_cache_path

        sc = self.spec.scoring
        backend = make_backend(model, self.plugins, batch_tokens=sc.batch_tokens)
        if not sc.cache:
            return backend
        if self._cache is None:
            self._cache = ScoreCache(sc.cache_path or default_cache_path())
        return CachedBackend(backend, self._cache)

    def task_backend(self) -> Backend:
        """The task model's backend (one per study)."""
        if self._task_backend is None:
            self._task_backend = self.backend_for(self.task_model())
        return self._task_backend

    def _other(self, ref: Any) -> LoadedModel:
        key = _canonical(ref)
        if key not in self._others:
            self._others[key] = self.load(ref)
        return self._others[key]

    def is_task_model(self, ref: Any) -> bool:
        """Whether ``ref`` names the study's model (a server's URL names the served spec)."""
        return _canonical(ref) == _canonical(self.spec.model)

    def for_strategy(self, ref: Any):  # type: ignore[no-untyped-def]
        """Backend and model for a strategy's generator; the task model when ``ref`` is it."""
        if self.is_task_model(ref) and self.model is not None:
            return self.task_backend(), self.model
        loaded = self._other(ref)
        return self.backend_for(loaded), loaded

    def embedder(self, ref: Any, pooling: str) -> Embedder:
        """The embedder of per-input demonstrations: the task model's when ``ref`` is None
        (or names it), a served embeddings endpoint when ``ref`` names one, else ``ref``
        loaded with the study's device and dtype. A served task model has no hidden states
        to pool: such studies name an embedding model (local or served) explicitly."""
        from optprompt.errors import ModelError
        from optprompt.models.served import is_served_ref
        from optprompt.scoring.embedding import ModelEmbedder, make_embedder

        if ref is None and is_served_ref(self.spec.model):
            raise ModelError(
                f"per-input demonstrations need embeddings, and model {self.spec.model} is served: name an embedding "
                "model for retrieval in the strategy's embedder option: a served embeddings endpoint "
                "(embedder: http://HOST:PORT/v1, e.g. vLLM with --runner pooling --convert embed) or a local model "
                "(embedder: smollm2-135m-instruct), or compare inputs by their words alone "
                "(knn: {similarity: [lexical]})"
            )
        if (ref is None or self.is_task_model(ref)) and self.model is not None and not is_served_ref(ref):
            return ModelEmbedder(self.model, pooling=pooling)
        return make_embedder(ref or self.spec.model, pooling, self._other)


def _canonical(ref: Any) -> Any:
    from optprompt.models.served import is_served_ref, served_spec

    return served_spec(ref) if is_served_ref(ref) else ref
