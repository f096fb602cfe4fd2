"""The discrete-prompt candidate kind: its card, its predictor and its registration."""

from optprompt.kinds.prompt.card import (
    CARD_FILE,
    PROMPT_FILE,
    PromptCard,
    card_from_description,
    card_from_result,
    load_card,
)
from optprompt.kinds.prompt.kind import PromptKind, describe
from optprompt.kinds.prompt.predictor import CardPredictor, load_card_model
from optprompt.plugins.hookspecs import hookimpl

__all__ = [
    "CARD_FILE",
    "PROMPT_FILE",
    "CardPredictor",
    "PromptCard",
    "PromptKind",
    "card_from_description",
    "card_from_result",
    "describe",
    "load_card",
    "load_card_model",
]


@hookimpl
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    register(PromptKind)
