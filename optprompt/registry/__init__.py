"""Prompt registry: versioned prompt cards with provenance, stages and promotion.

``optprompt registry add/list/show/diff/promote`` on the command line;
:func:`load_prompt` (``load_prompt("sentiment@production")``) from Python.
"""

from optprompt.registry.diff import diff_cards
from optprompt.registry.refs import PromptRef, RegistryError, parse_ref
from optprompt.registry.store import PromptRegistry, default_registry_root, load_prompt
from optprompt.registry.version import RegistryVersion, card_hash

__all__ = [
    "PromptRef",
    "PromptRegistry",
    "RegistryError",
    "RegistryVersion",
    "card_hash",
    "default_registry_root",
    "diff_cards",
    "load_prompt",
    "parse_ref",
]
