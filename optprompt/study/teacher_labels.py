"""Distillation: a teacher's answers become the student's training labels.

With ``teacher:`` in the study file, the teacher answers every train input and every
input of ``task.unlabeled`` before trial 0; its answers (hard labels: the label, option,
answer text or entity list it predicts) replace the gold train labels, and the labelled
unlabelled inputs join the train split. Dev and test keep their gold labels, so every
candidate is still chosen and judged on the truth. Inputs the teacher cannot answer (a
format failure) are left out of train. At the end of the study the teacher is scored on
test like the student, and ``result.json["teacher"]`` compares teacher, student (the
winner) and the student's baseline prompt.

A teacher is an export (a prompt card or an adapter directory, loaded with
:func:`optprompt.kinds.load`) or any model reference, which then answers with the task's
baseline prompt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import OptpromptError
from optprompt.tasks.task import Example, Task
from optprompt.tasks.types import GENERATION_SETTINGS_KEY

if TYPE_CHECKING:
    from optprompt.kinds.base import Predictor
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins
    from optprompt.prompts.candidate import PromptCandidate

__all__ = ["TeacherLabels", "distill_task", "label_with_teacher", "load_teacher"]


@dataclass
class TeacherLabels:
    """What the teacher did for a study.

    Attributes:
        ref: The teacher as the study file names it.
        predictor: The loaded teacher (predicts like ``optprompt.load(...)``).
        train: Train inputs the teacher labelled (kept in train).
        unlabeled: ``task.unlabeled`` inputs it labelled (added to train).
        dropped: Inputs it could not answer (left out of train).
        agreement: Share of train inputs where its label equals the gold one (None for
            generation and extraction, where labels are not single choices).
    """

    ref: str
    predictor: Any
    train: int = 0
    unlabeled: int = 0
    dropped: int = 0
    agreement: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {"ref": self.ref, "train_labelled": self.train, "unlabeled_labelled": self.unlabeled}
        out["dropped"] = self.dropped
        out.update(self.extra)
        if self.agreement is not None:
            out["train_agreement_with_gold"] = round(self.agreement, 4)
        return out


def _is_export(ref: str) -> bool:
    from optprompt.kinds.base import EXPORT_FILE

    path = Path(ref).expanduser()
    return path.is_dir() and any((path / name).is_file() for name in (EXPORT_FILE, "prompt_card.json"))


def load_teacher(
    ref: str,
    task: Task,
    baseline: PromptCandidate,
    plugins: Plugins,
    *,
    device: str,
    dtype: str,
    chat: str,
    generation: dict[str, Any],
    model: LoadedModel | None = None,
) -> Predictor:
    """The teacher ``ref`` names: an export loaded by its kind, or a model answering with
    ``baseline`` (the task's baseline prompt) through its chat template when it has one
    (``chat``: the study's ``scoring.chat``), decoding with ``generation`` (the task's
    ``max_new_tokens``, ``stop`` and ``extract``). ``model``: the model ``ref`` names,
    already loaded (the student's own, when the teacher is the same model)."""
    from optprompt.kinds.loading import load

    if _is_export(ref):
        return load(ref, plugins=plugins, device=device, dtype=dtype)
    from optprompt.kinds.prompt import CardPredictor, card_from_description, describe
    from optprompt.models.loading import load_model
    from optprompt.prompts.render import PromptRenderer

    loaded = model or load_model(ref, plugins, device=device, dtype=dtype, progress=False)
    use_chat = loaded.has_chat_template if chat == "auto" else chat == "on"
    summary = {**task.summary(), GENERATION_SETTINGS_KEY: dict(generation)}
    desc = describe(PromptRenderer(task), use_chat, baseline)
    card = card_from_description(desc, summary)
    return CardPredictor(card, loaded)


def _distributions(task: Task, teacher: Predictor, inputs: list[Example], options: Any) -> list[tuple[float, ...]]:
    """The teacher's probability of each choice of each input: the softmax of its answers'
    log-likelihoods, after its calibration offsets (what its predictions rank by)."""
    import math

    from optprompt.scoring.calibration import apply_offsets

    logliks = teacher.loglikelihoods([ex.input for ex in inputs], options)  # type: ignore[attr-defined]
    card = getattr(teacher, "card", None)
    offsets = ((getattr(card, "calibration", None) or {}).get("offsets")) if card is not None else None
    out = []
    for ll in logliks:
        scores = apply_offsets(ll, offsets) if offsets else list(ll)
        top = max(scores)
        exp = [math.exp(x - top) for x in scores]
        total = sum(exp)
        out.append(tuple(e / total for e in exp))
    return out


def _relabel(task: Task, example: Example, answer: Any) -> Example | None:
    """``example`` with ``answer`` as its label; None when the answer is no label at all."""
    return task.task_type.relabel(task, example, answer)


def label_with_teacher(task: Task, teacher: Predictor, ref: str, *, soft: bool = True) -> tuple[Task, TeacherLabels]:
    """``task`` with the teacher's answers as train labels and its labelled unlabelled
    inputs added to train; the fingerprint changes with the teacher's answers. With
    ``soft`` (classification and multiple choice, a teacher that scores its answers), each
    example also gets the teacher's answer distribution as ``soft_target``.

    Raises:
        OptpromptError: the teacher answers none of the inputs (nothing to train on).
    """
    inputs = [*task.train, *task.unlabeled]
    options = [list(ex.options) for ex in inputs] if task.has_options else None
    answers = teacher.predict([ex.input for ex in inputs], options) if inputs else []
    ranks = task.ranks_answers and hasattr(teacher, "loglikelihoods")
    dists = _distributions(task, teacher, inputs, options) if soft and ranks and inputs else []
    labels = TeacherLabels(ref=ref, predictor=teacher)
    labels.extra["labels"] = "soft" if dists else "hard"
    train: list[Example] = []
    agree = []
    for i, (ex, answer) in enumerate(zip(inputs, answers)):
        new = _relabel(task, ex, answer)
        if new is None:
            labels.dropped += 1
            continue
        if dists:
            new = dataclasses.replace(new, soft_target=dists[i])
        train.append(new)
        if i < len(task.train):
            labels.train += 1
            if task.ranks_answers:
                agree.append(new.target_index == ex.target_index)
        else:
            labels.unlabeled += 1
    if inputs and not train:
        raise OptpromptError(f"teacher {ref!r} answered none of the {len(inputs)} train and unlabelled inputs")
    if agree:
        labels.agreement = sum(agree) / len(agree)
    h = hashlib.sha256(task.fingerprint.encode())
    h.update(
        json.dumps([ref, [(ex.id, ex.target, [e.key for e in ex.entities], ex.soft_target) for ex in train]]).encode()
    )
    return dataclasses.replace(task, train=train, fingerprint=h.hexdigest()[:16]), labels


def distill_task(spec: Any, task: Task, plugins: Plugins, pool: Any) -> tuple[Task, TeacherLabels]:
    """The study's distillation step: the teacher named by ``spec.teacher`` labels ``task``'s
    train split (and ``task.unlabeled``); returns the relabelled task and what the teacher did.

    A teacher that is the study's own model is loaded once, through ``pool`` (self-distillation).
    """
    from optprompt.prompts.candidate import baseline_candidate

    sc, ts, ref = spec.scoring, spec.task, spec.teacher or ""
    same = ref == spec.model
    teacher = load_teacher(
        ref,
        task,
        baseline_candidate(task, chat=False),
        plugins,
        device=sc.device,
        dtype=sc.dtype,
        chat=sc.chat,
        generation={"max_new_tokens": ts.max_new_tokens, "stop": list(ts.stop), "extract": ts.extract},
        model=pool.task_model() if same else None,
    )
    return label_with_teacher(task, teacher, ref, soft=spec.teacher_labels == "auto")
