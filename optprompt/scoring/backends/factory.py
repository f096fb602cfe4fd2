"""Backends are built in one place: a loaded or served model in, its family's backend out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optprompt.plugins.manager import Plugins
    from optprompt.scoring.backends.base import Backend

__all__ = ["make_backend"]


def make_backend(model: Any, plugins: Plugins, *, batch_tokens: int | None = None) -> Backend:
    """The backend registered for ``model``'s family (``causal``, ``seq2seq``, ``masked``,
    ``served`` for a model server, or a plugin's), with ``batch_tokens`` when given.

    Args:
        model: A :class:`~optprompt.models.LoadedModel` or :class:`~optprompt.models.ServedModel`.
        plugins: Where backends are registered.
        batch_tokens: Tokens per forward pass (in-process) or per request (served).
    """
    cls = plugins.backends.get(model.family).obj
    return cls(model, **({"batch_tokens": batch_tokens} if batch_tokens is not None else {}))  # type: ignore[no-any-return]
