"""Context distillation of a study's winner into an adapter under a short prompt: the
student, its targets, and what each side costs per prediction.

The best winners are the dearest to run: an ensemble of prompts, demonstrations in every
prompt, demonstrations retrieved per input. :func:`distill_winner` trains a soft prompt
(or LoRA) under a short prompt to reproduce the winner's *answer distribution* (its
softmax over the answers, calibration applied) on the train inputs and the task's
unlabelled inputs: the loss is KL(winner || student), the trainer's soft-target path. Dev
(gold labels) picks the best epoch, as for any trained candidate. Both are then scored on
test and compared with the study's paired test; the figures say what the distilled form
costs per prediction and what it loses.

It takes explicit inputs (the winner, its kind, the study's :class:`KindContext`) and
returns a typed :class:`DistilledWinner`. The student is trained by the soft kind's own
training (:meth:`~optprompt.kinds.soft.SoftKind.train`, the one training path of adapters)
with the winner's answers as targets, and kept, scored and exported as any trained adapter.

Tasks that generate their answer (multi-label, extraction, free text) have no answer
distribution to match; there the student learns the winner's *written answers*
(sequence-level distillation, Kim & Rush 2016): each input is relabelled with what the
winner wrote, read back as the task type reads another model's answer
(:meth:`~optprompt.tasks.types.base.TaskType.relabel`), and the adapter is trained on
those answers as on gold ones (:func:`student_answers`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError

if TYPE_CHECKING:
    from optprompt.config.spec import DistillSpec
    from optprompt.kinds.base import CandidateKind, KindContext
    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example

__all__ = [
    "DistilledWinner",
    "distill_winner",
    "gold_share",
    "short_prompt",
    "student_answers",
    "student_targets",
    "teacher_distributions",
    "tokens_per_prediction",
    "student_candidate",
]


@dataclass
class DistilledWinner:
    """The winner, its distilled form, and how they compare on test.

    Attributes:
        student: The trained :class:`~optprompt.adapters.SoftCandidate`.
        artifact: The student's adapter directory (PEFT files + manifest).
        teacher_test / student_test: Their test evaluations (same examples, same order).
        tokens_per_prediction: Per side, the tokens the model reads per test prediction
            (the kind's prompt tokens around the input, times the forward passes its
            predictions take, plus the mean input's tokens).
        comparison: The paired test, student vs teacher (teacher as ``baseline``).
        distilled_inputs: Inputs the student learnt from (train + unlabelled).
        training: The training run's figures (steps, best epoch, history).
    """

    student: Any
    artifact: str
    teacher_test: Evaluation
    student_test: Evaluation
    tokens_per_prediction: dict[str, float]
    comparison: Any
    distilled_inputs: int
    training: dict[str, Any] = field(default_factory=dict)


def short_prompt(candidate: Any, fallback: PromptCandidate, *, instruction: str | None = None) -> PromptCandidate:
    """The student's prompt: ``candidate``'s text without demonstrations, retrieval or
    calibration when it is a single prompt, its first member's when it is several prompts
    (an ensemble: its members are ranked best first), else ``fallback`` (e.g. the study's
    baseline). ``instruction``, when given, replaces its instruction (``""``: none)."""
    from optprompt.prompts.candidate import PromptCandidate

    members = getattr(candidate, "members", None)
    if members and type(members[0]) is PromptCandidate:
        candidate = members[0]
    short = fallback
    if type(candidate) is PromptCandidate:
        short = dataclasses.replace(candidate, demo_ids=(), retrieval=None, calibration="none", metadata={})
    if instruction is not None:
        short = dataclasses.replace(short, instruction=instruction, metadata={})
    return short


def student_targets(
    inputs: Sequence[Example], teacher: Sequence[Sequence[float]], gold: float, labelled: set[str]
) -> list[tuple[float, ...]]:
    """The student's target per input: the teacher's distribution, mixed with the gold
    label (weight ``gold``) on the inputs whose ids are in ``labelled`` (the train split;
    unlabelled inputs have no gold label)."""
    out = []
    for ex, dist in zip(inputs, teacher):
        if gold and ex.id in labelled:
            mixed = [(1.0 - gold) * p for p in dist]
            mixed[ex.target_index] += gold
            out.append(tuple(mixed))
        else:
            out.append(tuple(dist))
    return out


def gold_share(example_id: str) -> float:
    """A number in [0, 1) fixed by ``example_id``: the labelled inputs whose share is below
    ``gold`` keep their gold answer (generation tasks), the same ones in every run."""
    import hashlib

    return int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) / 2**32


def student_answers(
    task: Any, inputs: Sequence[Example], answers: Sequence[Any], gold: float, labelled: set[str]
) -> list[Example]:
    """Generation tasks: the student's training examples, each input relabelled with the
    winner's answer (``answers``: its predictions' ``pred``, as the task type reads them).
    On the labelled inputs (ids in ``labelled``) whose :func:`gold_share` is below
    ``gold`` the gold answer stays instead. Inputs the winner answered unreadably (a
    format failure) are left out, unless they keep their gold answer."""
    out = []
    for ex, answer in zip(inputs, answers, strict=True):
        if ex.id in labelled and gold_share(ex.id) < gold:
            out.append(ex)
            continue
        relabelled = task.task_type.relabel(task, ex, answer)
        if relabelled is not None:
            out.append(relabelled)
    return out


def student_candidate(student_prompt: PromptCandidate, spec: DistillSpec) -> Any:
    """The student :func:`distill_winner` trains: ``spec.into`` with ``spec``'s
    hyperparameters (the study file's ``distill``, whose defaults are the student's: one
    place for them) around ``student_prompt``'s text."""
    from optprompt.adapters.candidate import SoftCandidate

    return SoftCandidate.create(student_prompt, spec.into, spec.student_params())


def _softmax(xs: Sequence[float]) -> tuple[float, ...]:
    top = max(xs)
    ex = [math.exp(x - top) for x in xs]
    total = sum(ex)
    return tuple(e / total for e in ex)


def teacher_distributions(evaluation: Evaluation) -> list[tuple[float, ...]]:
    """Per prediction, the teacher's distribution over the answers: the softmax of its
    log-likelihoods after its calibration offsets (what it ranks by)."""
    from optprompt.scoring.calibration import apply_offsets

    out = []
    for p in evaluation.predictions:
        scores = list(p.logliks)
        if evaluation.offsets is not None:
            scores = apply_offsets(scores, evaluation.offsets)
        out.append(_softmax(scores))
    return out


def tokens_per_prediction(kind: CandidateKind, candidate: Any, ctx: KindContext, examples: Sequence[Example]) -> float:
    """The tokens the model reads per prediction on ``examples``, on average: the kind's prompt
    tokens around each input (demonstrations retrieved for it; every member's prompt for an
    ensemble; an adapter's virtual tokens), plus the input once per forward pass it takes.
    The answer continuations, the same for every candidate of a task, are not counted."""
    if not examples:
        raise ConfigError("tokens per prediction need at least one example")
    passes = len(getattr(candidate, "members", ()) or ()) or 1  # an ensemble reads the input once per member
    total = 0
    for ex in examples:
        total += kind.prompt_tokens(candidate, ctx, ex)
        total += passes * len(ctx.model.tokenizer(ex.input, add_special_tokens=False).input_ids)
    return total / len(examples)


def _inputs(task: Any) -> list[Example]:
    """The inputs the student learns from: train, then the unlabelled ones (each once: a
    teacher may have added the unlabelled ones to train already)."""
    seen: set[str] = set()
    out = []
    for ex in [*task.train, *task.unlabeled]:
        if ex.id not in seen:
            seen.add(ex.id)
            out.append(ex)
    if not out:
        raise ConfigError("distilling a winner needs train or unlabelled inputs")
    return out


def _student_examples(task: Any, inputs: list[Example], taught: Evaluation, gold: float) -> list[Example]:
    """Each input with what the student learns: the winner's written answer (generation
    tasks) or its answer distribution (``soft_target``), gold mixed in as ``gold`` says."""
    labelled = {ex.id for ex in task.train}
    if task.generates:  # the winner's written answers, not a distribution
        examples = student_answers(task, inputs, [q.pred for q in taught.predictions], gold, labelled)
        if not examples:
            raise ConfigError(
                f"distilling the winner: it answered none of the {len(inputs)} train and unlabelled inputs "
                "readably, so there is nothing to learn from"
            )
        return examples
    dists = student_targets(inputs, teacher_distributions(taught), gold, labelled)
    return [dataclasses.replace(ex, soft_target=d) for ex, d in zip(inputs, dists)]


def distill_winner(
    winner: Any,
    kind: CandidateKind,
    ctx: KindContext,
    *,
    student: Any,
    offsets: Sequence[float] | None = None,
    teacher_test: Evaluation | None = None,
) -> DistilledWinner:
    """Distil ``winner`` (scored through ``kind``) into the adapter ``student``.

    Args:
        winner: The study's winning candidate (any kind that ranks answers).
        kind: Its candidate kind (its scorer gives the teacher's answers).
        ctx: The study's kind context (task, model, renderer, evaluator, dev, output).
        student: The adapter to train (:func:`student_candidate`: a short prompt, see
            :func:`short_prompt`, and the ``distill`` settings).
        offsets: The winner's calibration offsets (found on dev); None: it computes its own.
        teacher_test: The winner's test evaluation when the study has it already (scored
            with ``offsets``); None: scored here.

    Raises:
        ConfigError: no train or unlabelled inputs, or (generation tasks) no input the
            winner answered readably.
    """
    from optprompt.kinds.soft import SoftKind
    from optprompt.stats import compare

    task = ctx.task
    inputs = _inputs(task)
    with kind.scorer(winner, ctx) as teacher_eval:
        taught = teacher_eval.evaluate(winner, inputs, "train", offsets=offsets)
        if teacher_test is None:
            teacher_test = teacher_eval.evaluate(winner, task.test, "test", offsets=offsets)
    examples = _student_examples(task, inputs, taught, student.param_map.get("gold", 0.0))
    adapters = SoftKind()
    trained = adapters.train(
        student, ctx, examples, label="distilling the winner", provenance={"distilled_from": winner.hash}
    )
    with adapters.scorer(student, ctx) as student_eval:
        student_test = student_eval.evaluate(student, task.test, "test")
    figures = {k: trained.figures[k] for k in ("steps", "train_seconds", "best_epoch", "seed")}
    tokens = {
        "teacher": round(tokens_per_prediction(kind, winner, ctx, task.test), 1),
        "student": round(tokens_per_prediction(adapters, student, ctx, task.test), 1),
    }
    return DistilledWinner(
        student=student,
        artifact=str(trained.directory.relative_to(ctx.output)),
        teacher_test=teacher_test,
        student_test=student_test,
        tokens_per_prediction=tokens,
        comparison=compare(teacher_test.scores, student_test.scores),
        distilled_inputs=len(examples),
        training={**figures, "history": trained.history},
    )
