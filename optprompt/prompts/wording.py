"""What an instruction may say about the answers: "answer with one word" only when every
answer is one word. A prompt a person would ship never contradicts its own answers."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["claims_one_word", "fits_answers", "extend_instruction", "CASINGS", "apply_casing"]

_ONE_WORD = re.compile(r"\b(one|a single|single)\s+word\b", re.IGNORECASE)

#: One casing convention for every answer word of a prompt: as the labels are written, first
#: letter capitalised, or lower case.
CASINGS = ("as given", "capitalized", "lower")


def claims_one_word(instruction: str) -> bool:
    """Whether ``instruction`` asks for a one-word answer."""
    return bool(_ONE_WORD.search(instruction))


def fits_answers(instruction: str, answers: Iterable[str]) -> bool:
    """False when ``instruction`` asks for one word and some answer has several."""
    return not (claims_one_word(instruction) and any(len(a.split()) > 1 for a in answers))


def _words(text: str) -> str:
    return " ".join(re.findall(r"[\w{}]+", text.lower()))


def extend_instruction(base: str, variant: str) -> str | None:
    """``variant`` with ``{base}`` standing for ``base`` (an instruction variant that adds to
    the baseline's), or None when what it adds is already there: a sentence ``base`` already
    says, or a second list of the labels. A careful engineer never writes "Answer with one
    of: {labels}." twice."""
    if "{base}" not in variant:
        return variant
    added = variant.replace("{base}", " ").strip()
    said = bool(_words(added)) and _words(added) in _words(base)
    if said or ("{labels}" in base and "{labels}" in added):
        return None
    return variant.replace("{base}", base.rstrip())


def apply_casing(word: str, casing: str) -> str:
    """``word`` in the casing ``casing`` (one of :data:`CASINGS`)."""
    if casing == "capitalized":
        return word[:1].upper() + word[1:]
    if casing == "lower":
        return word.lower()
    if casing == "as given":
        return word
    raise ValueError(f"casing {casing!r} is not one of {CASINGS}")
