"""Prompt + adapter candidates: a discrete winner's prompt with an adapter trained under it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from optprompt.adapters.candidate import SoftCandidate, adapter_summary
from optprompt.errors import ConfigError
from optprompt.prompts.candidate import PromptCandidate

__all__ = ["PromptAdapterCandidate", "parent_of", "prompt_adapter_summary"]


def parent_of(prompt: PromptCandidate, **where: Any) -> tuple[tuple[str, Any], ...]:
    """The provenance of a discrete prompt as a candidate's ``parent``: its hash (``where``
    may give the hash of the candidate it was taken from, calibration included) and
    ``where`` it was found (``trial`` and ``dev`` in this study, ``study``: a finished
    study's name, or ``source``)."""
    fields = {"hash": prompt.hash, **{k: v for k, v in where.items() if v is not None}}
    json.dumps(fields)  # JSON values only (TypeError otherwise)
    return tuple(sorted(fields.items()))


@dataclass(frozen=True)
class PromptAdapterCandidate(SoftCandidate):
    """A discrete prompt found by a search (its instruction, template, demonstrations and
    answer words, as :class:`~optprompt.prompts.PromptCandidate` text) with a PEFT adapter
    (soft prompt or LoRA) trained *under* it: the adapter learns with exactly that text
    around every train input, and is scored and exported with it.

    Attributes:
        parent: Where the discrete prompt came from, as sorted ``(key, value)`` pairs:
            ``hash`` (the discrete candidate's hash, calibration and retrieval included),
            and ``trial`` and ``dev`` (its trial and dev score in this study) or ``study``
            (the finished study it was read from). Part of the hash.

    The discrete prompt's calibration is not kept (training on the task corrects the
    label bias it corrects) nor its per-input retrieval (the adapter is trained around
    fixed text): :meth:`under` drops both.
    """

    kind: ClassVar[str] = "prompt_adapter"

    parent: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if "hash" not in dict(self.parent):
            raise ConfigError("a prompt + adapter candidate names its discrete prompt: parent needs a 'hash'")

    @classmethod
    def under(
        cls, prompt: PromptCandidate, method: str, params: dict[str, Any], **where: Any
    ) -> PromptAdapterCandidate:
        """``method`` with ``params`` trained under the discrete ``prompt`` (found ``where``)."""
        return cls(
            **prompt.text_fields(),
            metadata=dict(prompt.metadata),
            method=method,
            params=tuple(sorted(params.items())),
            parent=parent_of(prompt, **where),
        )

    @property
    def parent_map(self) -> dict[str, Any]:
        return dict(self.parent)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["parent"] = dict(self.parent)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptAdapterCandidate:
        data = dict(data)
        parent = tuple(sorted(dict(data.pop("parent", {})).items()))
        soft = SoftCandidate.from_dict(data)
        return cls(**{**soft.__dict__, "parent": parent})


def prompt_adapter_summary(candidate: dict[str, Any]) -> str:
    """A prompt + adapter candidate (as a dict) in a few words: the adapter and its prompt's origin."""
    parent = candidate.get("parent") or {}
    if "trial" in parent:
        origin = f"under trial {parent['trial']}'s prompt"
    elif "study" in parent:
        origin = f"under the winner of {parent['study']}"
    else:
        origin = f"under prompt {parent.get('hash', '?')}"
    return f"{adapter_summary(candidate)}, {origin}"
