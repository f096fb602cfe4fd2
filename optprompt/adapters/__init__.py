"""Soft prompts and PEFT adapters: the ``soft`` candidate kind (:class:`AdapterKind`).

A :class:`SoftCandidate` is a discrete prompt (the text around the input) plus the
description of a PEFT adapter trained on top of it. :mod:`.methods` turns that
description into a PEFT config, :mod:`.training` trains it with the objective the scorer
ranks by, :mod:`.backend` scores and generates with the adapted model, :mod:`.artifact`
saves and loads adapters back (:func:`load_adapter`), and :mod:`.kind` ties them together
as the kind the study scores, exports and loads through. :mod:`.prompt_adapter` is the
``prompt_adapter`` kind: an adapter trained under a discrete winner's prompt.
"""

from optprompt.adapters.artifact import MANIFEST_FILE, SoftPrompt, load_adapter
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.kind import ADAPTERS_DIR, HISTORY_ATTR, TRAINING_ATTR, AdapterKind
from optprompt.adapters.methods import METHODS, PROMPT_LEARNING
from optprompt.adapters.prompt_adapter import PromptAdapterCandidate, PromptAdapterKind, parent_of

__all__ = [
    "ADAPTERS_DIR",
    "HISTORY_ATTR",
    "MANIFEST_FILE",
    "METHODS",
    "PROMPT_LEARNING",
    "TRAINING_ATTR",
    "AdapterKind",
    "PromptAdapterCandidate",
    "PromptAdapterKind",
    "SoftCandidate",
    "SoftPrompt",
    "load_adapter",
    "parent_of",
]
