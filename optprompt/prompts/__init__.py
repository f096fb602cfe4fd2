"""Prompt candidates and how they render into scoring requests."""

from optprompt.prompts.candidate import CALIBRATIONS, CHOICE_FORMATS, DEMO_ORDERS, PromptCandidate
from optprompt.prompts.render import (
    SENTINEL,
    ChatFormatter,
    PromptRenderer,
    ScoreRequest,
    fill_labels,
    fill_query,
    join_prompt,
    split_request,
)

__all__ = [
    "CALIBRATIONS",
    "CHOICE_FORMATS",
    "DEMO_ORDERS",
    "SENTINEL",
    "ChatFormatter",
    "PromptCandidate",
    "PromptRenderer",
    "ScoreRequest",
    "fill_labels",
    "fill_query",
    "join_prompt",
    "split_request",
]
