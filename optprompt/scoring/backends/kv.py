"""The key/value cache across transformers versions.

transformers 5.24 renamed the forward argument and output field ``past_key_values`` to
``cache`` (the old name is deprecated until 5.40). Every place that hands a cache to a
model or takes one back goes through these two functions, so the rename lives here alone.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["cache_kwargs", "output_cache", "cache_arg", "crop_to"]


@functools.cache
def _arg_for(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_arg(model: Any) -> str:
    """The name under which ``model``'s forward takes a key/value cache."""
    return _arg_for(type(model))


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """``{name: cache}`` for ``model``'s forward; empty when there is no cache."""
    return {} if cache is None else {cache_arg(model): cache}


def output_cache(output: Any) -> Any:
    """The key/value cache a forward pass returned (``cache``, else ``past_key_values``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def crop_to(cache: Any, length: int) -> None:
    """Cut ``cache`` back to its first ``length`` positions.

    Passes the number of positions to drop as a negative count, which every transformers
    5.x version reads the same way (5.24 refuses the older absolute length).
    """
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)
