"""Prompt names, stage names and ``NAME@VERSION`` references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from optprompt.errors import RegistryError

__all__ = ["RegistryError", "PromptRef", "parse_ref", "validate_name", "validate_stage", "LATEST"]

LATEST = "latest"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_STAGE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,49}")
_REF_FORMS = "NAME, NAME@VERSION (a number), NAME@latest or NAME@STAGE (e.g. NAME@production)"


@dataclass(frozen=True)
class PromptRef:
    """A parsed reference: ``name`` and what follows ``@`` (``latest`` when absent).

    Attributes:
        name: The prompt name.
        selector: ``latest``, a version number as text, or a stage name.
        explicit: Whether the reference had an ``@`` part.
    """

    name: str
    selector: str = LATEST
    explicit: bool = False

    @property
    def version(self) -> int | None:
        """The version number when the selector is one, else None."""
        return int(self.selector) if self.selector.isdigit() else None

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid prompt name, else raise :class:`RegistryError`.

    Names use letters, digits, ``-``, ``_`` and ``.``, start with a letter or digit, and
    are at most 100 characters long.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(
            f"invalid prompt name {name!r}: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (at most 100 characters)"
        )
    return name


def validate_stage(stage: str) -> str:
    """Return ``stage`` if it is a valid stage name (``production``, ``staging``...)."""
    if not isinstance(stage, str) or not _STAGE.fullmatch(stage) or stage == LATEST:
        raise RegistryError(
            f"invalid stage {stage!r}: use letters, digits, '-' and '_', starting with a letter "
            f"('{LATEST}' is reserved for the newest version)"
        )
    return stage


def parse_ref(ref: str) -> PromptRef:
    """Parse ``NAME``, ``NAME@3``, ``NAME@latest`` or ``NAME@production``."""
    if not isinstance(ref, str):
        raise RegistryError(f"invalid prompt reference {ref!r}: expected {_REF_FORMS}")
    name, at, selector = ref.partition("@")
    if not at:
        return PromptRef(_checked_name(name, ref), LATEST, explicit=False)
    if not selector or "@" in selector:
        raise RegistryError(f"invalid prompt reference {ref!r}: expected {_REF_FORMS}")
    name = _checked_name(name, ref)
    if selector.isdigit():
        if int(selector) < 1:
            raise RegistryError(f"invalid prompt reference {ref!r}: versions start at 1")
        return PromptRef(name, str(int(selector)), explicit=True)
    if selector != LATEST and not _STAGE.fullmatch(selector):
        raise RegistryError(f"invalid prompt reference {ref!r}: expected {_REF_FORMS}")
    return PromptRef(name, selector, explicit=True)


def _checked_name(name: str, ref: str) -> str:
    try:
        return validate_name(name)
    except RegistryError as e:
        raise RegistryError(f"invalid prompt reference {ref!r}: {e}") from None
