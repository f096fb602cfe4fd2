"""The prompt + adapter kind: trained like the ``soft`` kind, under a discrete winner's prompt.

Training, scoring, the winner's test scorer, the export (PEFT files + manifest + the prompt
card of the text around the input) and loading back are the trained-adapter kind's
(:class:`~optprompt.kinds.soft.SoftKind`); this kind adds what differs: its candidates
name the discrete prompt they were trained under, which the leaderboard, ``show`` and the
report print, and its exports are marked as its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optprompt.adapters.artifact import MANIFEST_FILE
from optprompt.kinds.prompt_adapter.candidate import PromptAdapterCandidate, prompt_adapter_summary
from optprompt.kinds.soft import SoftKind

__all__ = ["PromptAdapterKind"]


class PromptAdapterKind(SoftKind):
    """A soft prompt or LoRA adapter trained under a discrete prompt found by a search."""

    name = PromptAdapterCandidate.kind
    candidate_class = PromptAdapterCandidate
    label = "prompt + adapter"
    export_label = "adapter, its manifest and its prompt card"

    def summary(self, data: dict[str, Any]) -> str:
        return prompt_adapter_summary(data)

    def details(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        parent = data.get("parent") or {}
        where = (
            f"trial {parent['trial']} of this study (dev {parent['dev']:.4f})"
            if "trial" in parent and isinstance(parent.get("dev"), (int, float))
            else f"trial {parent['trial']} of this study"
            if "trial" in parent
            else f"the winner of {parent['study']}"
            if "study" in parent
            else "a discrete prompt"
        )
        return [*super().details(data), ("trained under", f"{where}, prompt {parent.get('hash', '?')}")]

    def detect(self, path: Path) -> bool:
        from optprompt._io import read_json

        manifest = path / MANIFEST_FILE
        if not manifest.is_file():
            return False
        return (read_json(manifest, what="adapter manifest").get("candidate") or {}).get("kind") == self.name
