"""``distill`` at the end of a study: the winner distilled into an adapter under a short
prompt (:func:`~optprompt.study.distill_winner.distill_winner`), as ``result.json``'s
``distillation`` part.

The distillation is recorded in the distilled adapter's manifest (``distillation``): a
study run again over the same storage (``optprompt run`` on a finished study, or a resume
after a crash past the distillation) reads it back instead of training again, when it was
distilled from the same winner, with the same student, and the winner scores on test as it
did then. A crash during the distillation leaves no record, so it is done again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_text
from optprompt.results import DistillationInfo, DistilledSide
from optprompt.study.distill_winner import DISTILLED_DIR, distill_winner, short_prompt, student_candidate

if TYPE_CHECKING:
    from optprompt.config.spec import DistillSpec
    from optprompt.kinds.base import Candidate, CandidateKind, KindContext
    from optprompt.scoring.evaluate import Evaluation

__all__ = ["distillation_part", "Distilled", "RECORD_KEY", "TEST_PREDICTIONS_FILE"]

logger = logging.getLogger("optprompt")

#: The manifest key of the distilled adapter that records the distillation's figures.
RECORD_KEY = "distillation"
#: The distilled form's test predictions, kept beside its adapter (predictions.jsonl's "distilled" rows).
TEST_PREDICTIONS_FILE = "test_predictions.jsonl"


@dataclass(frozen=True)
class Distilled:
    """The ``distillation`` part of a result and the distilled form's test predictions."""

    info: DistillationInfo
    predictions: list[dict[str, Any]]


def _recorded(directory: Path, winner_hash: str, winner_test: Evaluation) -> Distilled | None:
    """The distillation recorded in ``directory``, if it is this winner's and the winner's
    test score is unchanged; None otherwise (it is distilled again)."""
    from optprompt._io import read_json
    from optprompt.adapters.artifact import MANIFEST_FILE

    predictions = directory / TEST_PREDICTIONS_FILE
    if not (directory / MANIFEST_FILE).is_file() or not predictions.is_file():
        return None
    manifest = read_json(directory / MANIFEST_FILE, what="distilled adapter manifest")
    record = manifest.get(RECORD_KEY)
    if not isinstance(record, dict) or (manifest.get("training") or {}).get("distilled_from") != winner_hash:
        return None
    info = DistillationInfo.model_validate(record)
    if info.winner.hash != winner_hash or info.winner.test.value != winner_test.value:
        return None
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Distilled(info.model_copy(update={"reused": True}), rows)


def distillation_part(
    spec: DistillSpec,
    winner: Candidate,
    kind: CandidateKind,
    fallback: Candidate,
    ctx: KindContext,
    winner_test: Evaluation,
    offsets: Sequence[float] | None = None,
) -> Distilled:
    """Distil ``winner`` as ``spec`` says (or read back its recorded distillation): the
    ``distillation`` part of the study's result and the distilled form's test predictions.

    Args:
        spec: The study's ``distill`` settings.
        winner: The study's winner; ``kind`` its candidate kind.
        fallback: The short prompt when the winner has no prompt text of its own (the baseline).
        ctx: The study's kind context (the adapter is kept under its artifacts).
        winner_test: The winner's test evaluation (the study scored it already, with ``offsets``).
        offsets: The winner's calibration offsets (found on dev).
    """
    from optprompt.adapters.artifact import update_manifest

    student_prompt = short_prompt(winner, fallback, instruction=spec.instruction)
    params = spec.student_params()
    student = student_candidate(student_prompt, spec.into, params)
    directory = ctx.artifacts / DISTILLED_DIR / student.hash
    recorded = _recorded(directory, winner.hash, winner_test)
    if recorded is not None:
        ctx.note("distillation of the winner already recorded: read back, not trained again")
        return recorded
    started = time.perf_counter()
    logger.info("distilling the winner (%s) into %s under a short prompt", winner.hash, spec.into)
    out = distill_winner(
        winner,
        kind,
        ctx,
        student_prompt=student_prompt,
        method=spec.into,
        params=params,
        offsets=offsets,
        teacher_test=winner_test,
    )
    tokens = out.tokens_per_prediction
    info = DistillationInfo(
        method=spec.into,
        winner=DistilledSide(
            hash=winner.hash,
            candidate=winner.to_dict(),
            tokens_per_prediction=tokens["teacher"],
            test=out.teacher_test.to_dict(),
        ),
        distilled=DistilledSide(
            hash=out.student.hash,
            candidate=out.student.to_dict(),
            tokens_per_prediction=tokens["student"],
            test=out.student_test.to_dict(),
        ),
        token_ratio=round(tokens["teacher"] / tokens["student"], 2),
        comparison=out.comparison,
        artifact=out.artifact,
        distilled_inputs=out.distilled_inputs,
        training=out.training,
        seconds=round(time.perf_counter() - started, 1),
    )
    predictions = [p.to_dict() for p in out.student_test.predictions]
    directory = ctx.output / out.artifact
    atomic_write_text(directory / TEST_PREDICTIONS_FILE, "".join(json.dumps(p) + "\n" for p in predictions))
    # The record last: a distillation cut short before it is done again.
    update_manifest(directory, **{RECORD_KEY: info.model_dump(mode="json", exclude_unset=True)})
    return Distilled(info, predictions)
