"""Prompt candidates and how they render into scoring requests."""

from optprompt.prompts.candidate import CALIBRATIONS, CHOICE_FORMATS, DEMO_ORDERS, PromptCandidate
from optprompt.prompts.render import ChatFormatter, PromptRenderer, ScoreRequest

__all__ = [
    "CALIBRATIONS",
    "CHOICE_FORMATS",
    "DEMO_ORDERS",
    "ChatFormatter",
    "PromptCandidate",
    "PromptRenderer",
    "ScoreRequest",
]
