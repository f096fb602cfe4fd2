"""The distilled form of a study's winner (``distill``), exported beside the winner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from optprompt.errors import OptpromptError
from optprompt.kinds.prompt.card import PromptCard

if TYPE_CHECKING:
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.results import StudyResult

__all__ = ["DISTILLED_EXPORT_DIR", "export_distilled"]

#: The folder of an export that holds the winner's distilled form.
DISTILLED_EXPORT_DIR = "distilled"


def export_distilled(
    result: StudyResult, output: str | os.PathLike[str], to: str | os.PathLike[str], kinds: CandidateKinds
) -> Path | None:
    """Copy the distilled adapter of the study in ``output`` (PEFT files + manifest, with the
    distillation's figures) into ``to``, with its prompt card and export marker, so that
    ``optprompt.load(to)`` predicts as the study measured it on test. None when the study
    distilled nothing.

    Raises:
        OptpromptError: the distilled adapter recorded in ``result.json`` is missing.
    """
    from optprompt.adapters.artifact import MANIFEST_FILE, read_manifest
    from optprompt.kinds.soft import SoftKind

    part = result.distillation
    if part is None:
        return None
    source = Path(output) / part.artifact
    if not (source / MANIFEST_FILE).is_file():
        raise OptpromptError(f"{output}: the distilled adapter is missing ({part.artifact})")
    kind = kinds.of_dict(part.distilled.candidate)
    if not isinstance(kind, SoftKind):
        raise OptpromptError(f"{output}: the distilled form is a {kind.label}, not a trained adapter")
    card = PromptCard.from_dict(read_manifest(source)["card"], source=str(source / MANIFEST_FILE))
    return kind.export_adapter(source, Path(to), card, distillation=part.model_dump(mode="json", exclude_unset=True))
