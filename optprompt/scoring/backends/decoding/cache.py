"""The running batch's key/value cache: copied per row, joined, cut back.

Rows are aligned at the right: a shorter row's cache is padded at the front and the
padding masked out. Positions are explicit, so every key keeps the position it was
written at whatever its column in the cache.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["expand", "join", "mergeable", "trim"]


def expand(cache: Any, n: int) -> Any:
    """A copy of a one-row ``cache`` with ``n`` rows."""
    out = copy.deepcopy(cache)
    if n > 1:
        out.batch_repeat_interleave(n)
    return out


def mergeable(cache: Any) -> bool:
    """Whether rows can join ``cache`` mid-decoding: plain dynamic layers only (a sliding
    window or a static cache keeps positions of its own)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # a transformers without layered caches: batches one after another
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _left_pad(t: Any, length: int, dim: int) -> Any:
    """``t`` padded with zeros at the front of ``dim`` to ``length``."""
    import torch

    extra = length - t.shape[dim]
    if extra <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def join(cache: Any, mask: Any, other: Any, other_mask: Any) -> Any:
    """Rows of ``other`` appended to ``cache`` (in place), both aligned at the right: the
    shorter one's positions padded at the front, masked out. Returns the joined mask."""
    import torch

    length = max(mask.shape[1], other_mask.shape[1])
    for a, b in zip(cache.layers, other.layers):
        a.keys = torch.cat([_left_pad(a.keys, length, 2), _left_pad(b.keys, length, 2)], dim=0)
        a.values = torch.cat([_left_pad(a.values, length, 2), _left_pad(b.values, length, 2)], dim=0)
    return torch.cat([_left_pad(mask, length, 1), _left_pad(other_mask, length, 1)], dim=0)


def trim(cache: Any, mask: Any) -> Any:
    """Drop the leading positions no running row attends to any more (those of rows that
    have left), so that a long stream of joining rows keeps a short cache. Returns the mask."""
    used = mask.any(dim=0)
    start = int(used.int().argmax()) if bool(used.any()) else 0
    if start < 16:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, start:, :]
        layer.values = layer.values[:, :, start:, :]
    return mask[:, start:]
