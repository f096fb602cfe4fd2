"""Soft prompts and PEFT adapters: candidates, training, scoring and loading back.

A :class:`SoftCandidate` is a discrete prompt (the text around the input) plus the
description of a PEFT adapter trained on top of it. :mod:`.methods` turns that
description into a PEFT config, :mod:`.training` trains it with the objective the scorer
ranks by, :mod:`.backend` scores and generates with the adapted model, and
:mod:`.artifact` saves, exports and loads adapters back (:func:`load_adapter`).
"""

from optprompt.adapters.artifact import MANIFEST_FILE, SoftPrompt, load_adapter
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.methods import METHODS, PROMPT_LEARNING

__all__ = ["SoftCandidate", "SoftPrompt", "load_adapter", "MANIFEST_FILE", "METHODS", "PROMPT_LEARNING"]
