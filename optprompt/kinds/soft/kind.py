"""The trained-adapter kind (``soft``): a discrete template plus a PEFT adapter trained on it.

The kind trains each candidate on the train split when it is scored (one PEFT run per
trial, dev scored after each epoch and reported to Optuna's pruner), keeps the adapter
under ``OUTPUT/artifacts/adapters/<hash>``, scores the winner on test through it, and
exports it as PEFT files plus a manifest and the prompt card of the text around the input.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.adapters.artifact import MANIFEST_FILE
from optprompt.adapters.candidate import SoftCandidate, adapter_summary
from optprompt.errors import ConfigError, OptpromptError
from optprompt.kinds.base import CandidateKind, KindContext, mark_export
from optprompt.kinds.prompt import PromptKind, card_from_result
from optprompt.kinds.soft.training import TrainedAdapter, dev_loss, train_adapter_of, training_seed

if TYPE_CHECKING:
    import optuna

    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.kinds.soft.predictor import SoftPrompt
    from optprompt.models.loading import LoadedModel
    from optprompt.results import ResultEntry, StudyResult
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.tasks.task import Example

__all__ = ["SoftKind", "TrainedAdapter", "ADAPTERS_DIR", "HISTORY_ATTR", "TRAINING_ATTR", "training_seed", "dev_loss"]

ADAPTERS_DIR = "adapters"
HISTORY_ATTR = "soft.history"  # per-epoch train loss and dev score
TRAINING_ATTR = "soft.training"  # trainable parameters, steps, steps/s, best epoch


def result_fields(result: StudyResult) -> dict[str, Any]:
    """What a finished study's result adds to its winner's manifest: the final dev and
    test scores, the baseline's, the paired comparison and the warnings."""

    def dumped(score: Any) -> Any:
        return score.model_dump(mode="json", exclude_unset=True) if score is not None else None

    return {
        "scores": {"dev": dumped(result.best.dev), "test": dumped(result.best.test)},
        "baseline_scores": {"dev": dumped(result.baseline.dev), "test": dumped(result.baseline.test)},
        "comparison": result.comparison.to_dict() if result.comparison is not None else {},
        "warnings": list(result.warnings),
    }


class SoftKind(CandidateKind):
    """Soft prompts and LoRA adapters trained on the train split (model weights frozen)."""

    name = SoftCandidate.kind
    candidate_class = SoftCandidate
    label = "trained adapter"
    column = "adapter"
    export_label = "adapter and its manifest"
    step_name = "epoch"
    step_note = "after each training epoch"
    curve_title = "Learning curves"
    exports_front_members = False

    def summary(self, data: dict[str, Any]) -> str:
        return adapter_summary(data)

    def columns(self, data: dict[str, Any]) -> dict[str, Any]:
        """The prompt's columns with the adapter's summary before the instruction."""
        prompt = PromptKind().columns(data)
        instruction = prompt.pop("instruction")
        return {**prompt, "adapter": self.summary(data), "instruction": instruction}

    def details(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        return PromptKind().details(data)  # the text around the input is a prompt

    def describe(self, candidate: SoftCandidate, ctx: KindContext) -> dict[str, Any]:
        return PromptKind().describe(candidate, ctx)

    def prompt_tokens(self, candidate: SoftCandidate, ctx: KindContext, example: Example | None = None) -> int:
        return super().prompt_tokens(candidate, ctx, example) + candidate.virtual_tokens

    def adapter_dir(self, candidate: SoftCandidate, ctx: KindContext) -> Path:
        """Where ``candidate``'s adapter is kept in the study's output."""
        return ctx.artifacts / ADAPTERS_DIR / candidate.hash

    # --- training and scoring --------------------------------------------------------
    def _train_examples(self, candidate: SoftCandidate, ctx: KindContext, seed: int) -> list[Example]:
        from optprompt.tasks.sampling import balanced_sample

        if not ctx.task.train:
            raise ConfigError("trained adapters learn from the train split, which is empty")
        shown = set(candidate.demo_ids)
        pool = [ex for ex in ctx.task.train if ex.id not in shown]
        n = candidate.param_map.get("max_train_examples")
        if n and n < len(pool):
            pool = balanced_sample(pool, n, random.Random(seed), by_label=ctx.task.has_fixed_labels)
        return pool

    def fresh(self, candidate: SoftCandidate, ctx: KindContext, train: Sequence[Example]) -> list[Example]:
        """The rows of ``train`` the adapter was not trained on and its prompt does not show
        (with ``max_train_examples`` below the train size, the rows its sample left out):
        nothing about the candidate was chosen on them."""
        used = {ex.id for ex in self._train_examples(candidate, ctx, training_seed(ctx.seed, candidate))}
        used.update(candidate.demo_ids)
        return [ex for ex in train if ex.id not in used]

    def score(
        self, trial: optuna.Trial, candidate: SoftCandidate, ctx: KindContext, *, prunable: bool = True
    ) -> Evaluation:
        """Train ``candidate``'s adapter, scoring dev after each epoch (reported to the
        pruner), keep the best epoch's adapter with its manifest, return its dev score."""
        examples = self._train_examples(candidate, ctx, training_seed(ctx.seed, candidate))
        trained = self.train(candidate, ctx, examples, trial=trial, prunable=prunable, label=f"trial {trial.number}")
        trial.set_user_attr(HISTORY_ATTR, trained.history)
        trial.set_user_attr(TRAINING_ATTR, trained.figures)
        evaluation = trained.evaluation
        evaluation.extra["dev_scored"] = len(ctx.dev) * len(trained.history)
        evaluation.extra["trained_examples"] = trained.figures["train_examples"] * len(trained.history)
        evaluation.extra["artifact"] = str(trained.directory.relative_to(ctx.output))
        return evaluation

    #: The one training path of adapters (:func:`~optprompt.kinds.soft.training.train_adapter_of`).
    train = train_adapter_of

    @contextlib.contextmanager
    def scorer(self, candidate: SoftCandidate, ctx: KindContext) -> Iterator[Evaluator]:
        from optprompt.adapters.artifact import attach_saved
        from optprompt.adapters.backend import AdapterBackend
        from optprompt.adapters.methods import detach

        directory = self.adapter_dir(candidate, ctx)
        if not directory.is_dir():
            raise ConfigError(f"the adapter of candidate {candidate.hash} is missing: {directory}")
        peft_model = attach_saved(ctx.model, directory)
        try:
            backend = AdapterBackend(ctx.model, peft_model, batch_tokens=ctx.evaluator.backend.batch_tokens)
            yield ctx.evaluator.with_backend(backend)
        finally:
            detach(peft_model, ctx.model)

    # --- export and loading back ----------------------------------------------------
    def export(self, result: StudyResult, output: Path, to: Path, member: ResultEntry | None = None) -> Path:
        """Copy the winner's adapter (PEFT files + manifest, with the study's final scores)
        into ``to`` and write its prompt card beside it; returns the card's path."""
        if member is not None and member.trial != result.best.trial:
            raise OptpromptError(
                "only the winner's adapter is exported; load any trial's adapter from "
                "OUTPUT/artifacts/adapters/<hash> with optprompt.load"
            )
        artifact = result.best.artifact
        if not artifact or not (output / artifact).is_dir():
            raise OptpromptError(f"{output}: the winning adapter is missing ({artifact or 'no artifact recorded'})")
        return self.export_adapter(output / artifact, to, card_from_result(result), **result_fields(result))

    def export_adapter(self, directory: Path, to: Path, card: PromptCard, **manifest: Any) -> Path:
        """Copy the trained adapter in ``directory`` (PEFT files + manifest) into ``to`` with
        its prompt card, ``manifest``'s fields added to the copy's manifest (the study's final
        scores), and the export marker; returns the card's path. Every adapter a study
        exports (its winner, a distilled winner) goes through here."""
        from optprompt.adapters.artifact import read_manifest, update_manifest

        read_manifest(directory)  # a clear error when the directory is not an adapter
        to.mkdir(parents=True, exist_ok=True)
        for f in directory.iterdir():
            if f.is_file():
                shutil.copy2(f, to / f.name)
        update_manifest(to, card=card.to_dict(), **manifest)
        path = card.save(to)
        mark_export(to, self.name)
        return path

    def load(self, path: Path, model: str | LoadedModel | None = None, **options: Any) -> SoftPrompt:
        from optprompt.kinds.soft.predictor import load_adapter

        return load_adapter(path, model, **options)

    def detect(self, path: Path) -> bool:
        return (path / MANIFEST_FILE).is_file()
