"""Context distillation of a study's winner into an adapter under a short prompt.

The best winners are the dearest to run: an ensemble of prompts, demonstrations in every
prompt, demonstrations retrieved per input. :func:`distill_winner` trains a soft prompt
(or LoRA) under a short prompt to reproduce the winner's *answer distribution* (its
softmax over the answers, calibration applied) on the train inputs and the task's
unlabelled inputs: the loss is KL(winner || student), the trainer's soft-target path. Dev
(gold labels) picks the best epoch, as for any trained candidate. Both are then scored on
test and compared with the study's paired test; the figures say what the distilled form
costs per prediction and what it loses.

It takes explicit inputs (the winner, its kind, the study's :class:`KindContext`) and
returns a typed :class:`DistilledWinner`; wiring it to the end of a study (``distill:
winner``) and exporting both is the study's business.

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
    from optprompt.kinds.base import CandidateKind, KindContext
    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example

__all__ = [
    "DISTILLED_DIR",
    "DistilledWinner",
    "distill_winner",
    "gold_share",
    "short_prompt",
    "student_answers",
    "student_targets",
    "teacher_distributions",
    "tokens_per_prediction",
    "student_defaults",
    "student_candidate",
]

#: The student's default: 16 virtual tokens of prompt tuning initialised from the instruction.
DEFAULT_STUDENT = {"num_virtual_tokens": 16, "init": "text", "lr": 0.01, "epochs": 4, "batch_size": 8}

#: Where distilled adapters are kept, under the study's artifacts (``<dir>/<student hash>``).
DISTILLED_DIR = "distilled"


def student_defaults(method: str) -> dict[str, Any]:
    """The student's default hyperparameters for ``method`` (the method's own ones only)."""
    if method == "prompt_tuning":
        return dict(DEFAULT_STUDENT)
    if method == "lora":
        return {"lora_r": 8, "lr": 1e-3, "epochs": 4, "batch_size": 8}
    out = {"num_virtual_tokens": 16, "lr": 0.01, "epochs": 4, "batch_size": 8}
    if method == "p_tuning":
        out["encoder_hidden_size"] = 128
    return out


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

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "student": self.student.to_dict(),
            "artifact": self.artifact,
            "test": {"teacher": self.teacher_test.value, "student": self.student_test.value},
            "tokens_per_prediction": dict(self.tokens_per_prediction),
            "token_ratio": round(self.tokens_per_prediction["teacher"] / self.tokens_per_prediction["student"], 2),
            "comparison": {
                "difference": c.difference.estimate,
                "p_value": c.p_value,
                "test": c.test,
                "n": c.n,
            },
            "distilled_inputs": self.distilled_inputs,
            "training": self.training,
        }


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


def student_candidate(student_prompt: PromptCandidate, method: str, params: dict[str, Any] | None = None) -> Any:
    """The student :func:`distill_winner` trains: ``method`` with ``params`` (over the
    method's defaults) around ``student_prompt``'s text."""
    from optprompt.adapters.candidate import SoftCandidate

    return SoftCandidate.create(student_prompt, method, {**student_defaults(method), **(params or {})})


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


def distill_winner(
    winner: Any,
    kind: CandidateKind,
    ctx: KindContext,
    *,
    student_prompt: PromptCandidate,
    method: str = "prompt_tuning",
    params: dict[str, Any] | None = None,
    offsets: Sequence[float] | None = None,
    teacher_test: Evaluation | None = None,
) -> DistilledWinner:
    """Distil ``winner`` (scored through ``kind``) into ``method`` under ``student_prompt``.

    Args:
        winner: The study's winning candidate (any kind that ranks answers).
        kind: Its candidate kind (its scorer gives the teacher's answers).
        ctx: The study's kind context (task, model, renderer, evaluator, dev, output).
        student_prompt: The short prompt the adapter is trained under (see :func:`short_prompt`).
        method / params: The student's PEFT method and hyperparameters (``lr``,
            ``epochs``, ``batch_size`` and the method's own; defaults: :func:`student_defaults`).
        offsets: The winner's calibration offsets (found on dev); None: it computes its own.
        teacher_test: The winner's test evaluation when the study has it already (scored
            with ``offsets``); None: scored here.

    Raises:
        ConfigError: no train or unlabelled inputs, or (generation tasks) no input the
            winner answered readably.
    """
    import torch

    from optprompt.adapters import training
    from optprompt.adapters.artifact import manifest_for, save_adapter
    from optprompt.adapters.backend import AdapterBackend
    from optprompt.adapters.methods import attached
    from optprompt.kinds.prompt import card_from_description
    from optprompt.kinds.soft import SoftKind, training_seed
    from optprompt.stats import compare

    task = ctx.task
    seen: set[str] = set()
    inputs = []
    for ex in [*task.train, *task.unlabeled]:  # a teacher may have added the unlabelled ones to train already
        if ex.id not in seen:
            seen.add(ex.id)
            inputs.append(ex)
    if not inputs:
        raise ConfigError("distilling a winner needs train or unlabelled inputs")
    student = student_candidate(student_prompt, method, params)
    p = student.param_map
    with kind.scorer(winner, ctx) as teacher_eval:
        taught = teacher_eval.evaluate(winner, inputs, "train", offsets=offsets)
        if teacher_test is None:
            teacher_test = teacher_eval.evaluate(winner, task.test, "test", offsets=offsets)
    labelled = {ex.id for ex in task.train}
    if task.generates:  # the winner's written answers, not a distribution
        examples = student_answers(task, inputs, [q.pred for q in taught.predictions], p.get("gold", 0.0), labelled)
        if not examples:
            raise ConfigError(
                f"distilling the winner: it answered none of the {len(inputs)} train and unlabelled inputs "
                "readably, so there is nothing to learn from"
            )
    else:
        dists = student_targets(inputs, teacher_distributions(taught), p.get("gold", 0.0), labelled)
        examples = [dataclasses.replace(ex, soft_target=d) for ex, d in zip(inputs, dists)]
    seed = training_seed(ctx.seed, student)
    torch.manual_seed(seed)
    items, targets = training.training_items(student, examples, ctx.renderer, ctx.model.tokenizer, chat=ctx.chat)
    settings = training.TrainSettings(
        lr=p["lr"], epochs=p["epochs"], batch_size=p.get("batch_size", 8), patience=p.get("patience", 2), seed=seed
    )
    init_text = ctx.renderer.instruction(student) or task.instruction
    adapter_kind = SoftKind()
    with attached(ctx.model, student, init_text) as peft_model:
        backend = AdapterBackend(ctx.model, peft_model, batch_tokens=ctx.evaluator.backend.batch_tokens)
        student_eval = ctx.evaluator.with_backend(backend)

        def on_epoch(epoch: int, loss: float) -> tuple[float, Evaluation]:
            ev = student_eval.evaluate(student, ctx.dev, "dev")
            ctx.note(f"distilling the winner: epoch {epoch}/{settings.epochs}, dev {ev.value:.3f}")
            return ev.value, ev

        result = training.train_adapter(
            peft_model,
            items,
            targets,
            settings,
            pad_id=backend.pad_id,
            device=ctx.model.device,
            on_epoch=on_epoch,
            keep_arg=backend.keep_arg,
        )
        student_test = student_eval.evaluate(student, task.test, "test")
        figures = {
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "seed": seed,
        }
        directory = ctx.artifacts / DISTILLED_DIR / student.hash
        task_info = task.summary()
        card = card_from_description(adapter_kind.describe(student, ctx), task_info)
        save_adapter(
            peft_model,
            directory,
            manifest_for(
                student,
                card,
                ctx.model,
                task=task_info,
                training={**figures, "distilled_from": winner.hash},
                dev=result.best_payload.to_dict(),
                study=ctx.study_name,
                seed=ctx.seed,
            ),
        )
    tokens = {
        "teacher": round(tokens_per_prediction(kind, winner, ctx, task.test), 1),
        "student": round(tokens_per_prediction(adapter_kind, student, ctx, task.test), 1),
    }
    return DistilledWinner(
        student=student,
        artifact=str(directory.relative_to(ctx.output)),
        teacher_test=teacher_test,
        student_test=student_test,
        tokens_per_prediction=tokens,
        comparison=compare(teacher_test.scores, student_test.scores),
        distilled_inputs=len(examples),
        training=figures,
    )
