"""The trained-adapter kind (``soft``): a discrete template plus a PEFT adapter trained on it.

:mod:`.kind` scores and exports candidates, :mod:`.training` trains them (the one
training path of adapters) (the PEFT machinery is
:mod:`optprompt.adapters`); :mod:`.predictor` loads an exported adapter back
(:func:`load_adapter`, :class:`SoftPrompt`).
"""

from optprompt.kinds.soft.kind import ADAPTERS_DIR, HISTORY_ATTR, TRAINING_ATTR, SoftKind
from optprompt.kinds.soft.predictor import SoftPrompt, load_adapter
from optprompt.kinds.soft.training import TrainedAdapter, training_seed
from optprompt.plugins.hookspecs import hookimpl

__all__ = [
    "ADAPTERS_DIR",
    "HISTORY_ATTR",
    "TRAINING_ATTR",
    "SoftKind",
    "SoftPrompt",
    "TrainedAdapter",
    "load_adapter",
    "training_seed",
]


@hookimpl
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    register(SoftKind)
