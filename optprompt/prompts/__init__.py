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
    retrieved_placeholder,
    split_request,
)
from optprompt.prompts.retrieval import RETRIEVAL_ORDERS, DemoPool, Embedder, Retrieval, Retrievers, select_demos
from optprompt.prompts.wording import CASINGS, apply_casing, claims_one_word, extend_instruction, fits_answers

__all__ = [
    "CASINGS",
    "apply_casing",
    "claims_one_word",
    "extend_instruction",
    "fits_answers",
    "CALIBRATIONS",
    "CHOICE_FORMATS",
    "DEMO_ORDERS",
    "RETRIEVAL_ORDERS",
    "SENTINEL",
    "ChatFormatter",
    "DemoPool",
    "Embedder",
    "PromptCandidate",
    "PromptRenderer",
    "Retrieval",
    "Retrievers",
    "ScoreRequest",
    "fill_labels",
    "fill_query",
    "join_prompt",
    "retrieved_placeholder",
    "select_demos",
    "split_request",
]
