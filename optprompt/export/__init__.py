"""Export: prompt cards that other programs load and format inputs with."""

from optprompt.export.card import CARD_FILE, PROMPT_FILE, PromptCard, card_from_result, export_card, load_card

__all__ = ["CARD_FILE", "PROMPT_FILE", "PromptCard", "card_from_result", "export_card", "load_card"]
