"""The study's model pool: the task model, other models strategies and retrieval ask for,
their scoring backends and the shared score cache. Each model is loaded once per study."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        self._others: dict[str, LoadedModel] = {}  # embedding models and generators other than the task model
        self._cache = None
        self._task_backend: Backend | None = None

    def load(self, ref: str, *, with_backend_setting: bool = False) -> LoadedModel:
        from optprompt.models.loading import load_model

        sc = self.spec.scoring
        extra = {"backend": sc.backend} if with_backend_setting else {}
        return load_model(ref, self.plugins, device=sc.device, dtype=sc.dtype, progress=self.progress, **extra)

    def task_model(self) -> LoadedModel:
        """The study's model, loaded on first use."""
        if self.model is None:
            self.model = self.load(self.spec.model, with_backend_setting=True)
        return self.model

    def backend_for(self, model: LoadedModel) -> Backend:
        """A scoring backend for ``model``, behind the shared score cache when it is on."""
        from optprompt.scoring.cache import CachedBackend, ScoreCache, default_cache_path

        sc = self.spec.scoring
        backend = self.plugins.backends.get(model.family).obj(model, batch_tokens=sc.batch_tokens)
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

    def _other(self, ref: str) -> LoadedModel:
        if ref not in self._others:
            self._others[ref] = self.load(ref)
        return self._others[ref]

    def for_strategy(self, ref: str):  # type: ignore[no-untyped-def]
        """Backend and model for a strategy's generator; the task model when ``ref`` is it."""
        if ref == self.spec.model and self.model is not None:
            return self.task_backend(), self.model
        loaded = self._other(ref)
        return self.backend_for(loaded), loaded

    def embedder(self, ref: str | None, pooling: str) -> Embedder:
        """The embedder of per-input demonstrations: the task model's when ``ref`` is None
        (or names it), else ``ref`` loaded with the study's device and dtype."""
        from optprompt.scoring.embedding import ModelEmbedder

        if (ref is None or ref == self.spec.model) and self.model is not None:
            return ModelEmbedder(self.model, pooling=pooling)
        return ModelEmbedder(self._other(ref or self.spec.model), pooling=pooling)
