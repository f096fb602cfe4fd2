"""Export: a finished study's winner in its kind's format, and prompt cards.

The prompt card is the discrete-prompt kind's format (:mod:`optprompt.kinds.prompt`);
it is re-exported here for the programs that load cards.
"""

from optprompt.export.distilled import DISTILLED_EXPORT_DIR, export_distilled
from optprompt.export.trial import export_trial
from optprompt.export.winner import export_card
from optprompt.kinds.prompt.card import CARD_FILE, PROMPT_FILE, PromptCard, card_from_result, load_card

__all__ = [
    "CARD_FILE",
    "DISTILLED_EXPORT_DIR",
    "PROMPT_FILE",
    "PromptCard",
    "card_from_result",
    "export_card",
    "export_distilled",
    "export_trial",
    "load_card",
]
