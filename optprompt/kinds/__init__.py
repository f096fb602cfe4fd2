"""Candidate kinds: the extension point that owns what differs between kinds of candidates.

Built in: ``prompt`` (discrete prompts, :mod:`optprompt.kinds.prompt`) and ``soft``
(trained soft prompts and adapters, :mod:`optprompt.adapters`). A plugin adds a kind by
implementing the ``register_candidate_kinds`` hook.
"""

from optprompt.kinds.base import (
    DEFAULT_KIND,
    EXPORT_FILE,
    Candidate,
    CandidateKind,
    KindContext,
    Predictor,
    mark_export,
)
from optprompt.kinds.loading import export_kind, load
from optprompt.kinds.registry import CandidateKinds, candidate_kinds

__all__ = [
    "DEFAULT_KIND",
    "EXPORT_FILE",
    "Candidate",
    "CandidateKind",
    "CandidateKinds",
    "candidate_kinds",
    "KindContext",
    "Predictor",
    "export_kind",
    "load",
    "mark_export",
]
