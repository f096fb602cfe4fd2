"""A third candidate kind, added by a plugin package alone (no core file knows it).

An *ensemble* is several discrete prompts whose answer log-likelihoods are summed per
example; the answer with the highest sum wins. The package registers the kind and a
strategy proposing ensembles, through the same hooks any installed plugin implements.
"""

from optprompt.plugins import hookimpl
from optprompt_ensemble_kind.kind import EnsembleCandidate, EnsembleKind, EnsemblePredictor
from optprompt_ensemble_kind.strategy import EnsembleSearch

__all__ = ["EnsembleCandidate", "EnsembleKind", "EnsemblePredictor", "EnsembleSearch"]


@hookimpl
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    register(EnsembleKind)


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(EnsembleSearch)
