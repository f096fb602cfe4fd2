"""Soft prompts and PEFT adapters: the machinery the ``soft`` candidate kind
(:mod:`optprompt.kinds.soft`) trains, scores and saves with.

A :class:`SoftCandidate` is a discrete prompt (the text around the input) plus the
description of a PEFT adapter trained on top of it. :mod:`.methods` turns that
description into a PEFT config, :mod:`.training` trains it with the objective the scorer
ranks by, :mod:`.backend` scores and generates with the adapted model, and :mod:`.artifact`
saves adapters with their manifest and puts a saved one back on a model.
"""

from optprompt.adapters.artifact import MANIFEST_FILE
from optprompt.adapters.candidate import METHODS, PROMPT_LEARNING, SoftCandidate

__all__ = ["MANIFEST_FILE", "METHODS", "PROMPT_LEARNING", "SoftCandidate"]
