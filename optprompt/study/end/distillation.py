"""``distill`` at the end of a study: the winner distilled into an adapter under a short
prompt (:func:`~optprompt.study.end.student.distill_winner`), as ``result.json``'s
``distillation`` part.

``result.json`` is the study's record: a study run again over the same output (``optprompt
run`` on a finished study, or a resume after a crash past the end) reads the distillation
back from it instead of training again, when it was distilled from the same winner, with
the same student, the winner scores on test as it did then, and the student's adapter and
test predictions are still there. Anything else is distilled again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from optprompt._io import atomic_write_text
from optprompt.results import DistillationInfo, DistilledSide
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.on_test import ScoreTest
from optprompt.study.end.pick import PickWinner
from optprompt.study.end.step import EndStep
from optprompt.study.end.student import distill_winner, short_prompt, student_candidate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from optprompt.config.spec import DistillSpec
    from optprompt.kinds.base import Candidate, CandidateKind, KindContext
    from optprompt.scoring.evaluate import Evaluation

__all__ = ["DistillWinner", "Distilled", "TEST_PREDICTIONS_FILE", "distillation_part"]

logger = logging.getLogger("optprompt")

#: The distilled form's test predictions, kept beside its adapter (predictions.jsonl's "distilled" rows).
TEST_PREDICTIONS_FILE = "test_predictions.jsonl"


@dataclass(frozen=True)
class Distilled:
    """The ``distillation`` part of a result and the distilled form's test predictions."""

    info: DistillationInfo
    predictions: list[dict[str, Any]]


def _recorded(output: Path, student_hash: str, winner_hash: str, winner_test: Evaluation) -> Distilled | None:
    """The distillation the study's previous ``result.json`` records, if it is this winner's
    into this student and the winner's test score is unchanged; None otherwise."""
    from optprompt.errors import OptpromptError
    from optprompt.results import RESULT_FILE, load_result

    if not (output / RESULT_FILE).is_file():
        return None
    try:
        info = load_result(output).distillation
    except OptpromptError:  # an older or damaged record: distil again
        return None
    if info is None or info.distilled.hash != student_hash or info.winner.hash != winner_hash:
        return None
    predictions = output / info.artifact / TEST_PREDICTIONS_FILE
    if info.winner.test.value != winner_test.value or not predictions.is_file():
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
    student = student_candidate(short_prompt(winner, fallback, instruction=spec.instruction), spec)
    recorded = _recorded(ctx.output, student.hash, winner.hash, winner_test)
    if recorded is not None:
        ctx.note("distillation of the winner already recorded: read back, not trained again")
        return recorded
    started = time.perf_counter()
    logger.info("distilling the winner (%s) into %s under a short prompt", winner.hash, spec.into)
    out = distill_winner(winner, kind, ctx, student=student, offsets=offsets, teacher_test=winner_test)
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
    text = "".join(json.dumps(p) + "\n" for p in predictions)
    atomic_write_text(ctx.output / out.artifact / TEST_PREDICTIONS_FILE, text)
    return Distilled(info, predictions)


class DistillWinner(EndStep[Distilled]):
    """Distil the winner as the study's ``distill`` says (or read back its recorded
    distillation). Test was scored for the winner before: the distilled form is trained on
    train + unlabelled inputs, picked on dev, and only then scored on test."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return end.spec.distill is not None

    def title(self, end: StudyEnd, state: EndState) -> str | None:
        return "distilling the winner"

    def run(self, end: StudyEnd, state: EndState) -> Distilled:
        spec = cast("DistillSpec", end.spec.distill)  # applies() checked it is there
        pick = state.part(PickWinner)
        winner = pick.candidate
        offsets = pick.offsets if winner.hash != end.baseline.hash else None
        return distillation_part(
            spec, winner, end.kind_of(winner), end.baseline, end.kind_context, state.part(ScoreTest).winner, offsets
        )

    def result_fields(self, part: Distilled) -> dict[str, Any]:
        return {"distillation": part.info}
