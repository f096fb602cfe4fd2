"""The one training path of adapters: a soft candidate's PEFT run on the study's model
(dev scored after each epoch, reported to the pruner; the best epoch kept with its
manifest), used for every trial of the ``soft`` and ``prompt_adapter`` kinds and for the
student of a distilled winner."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.kinds.prompt import card_from_description

if TYPE_CHECKING:
    import optuna

    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.kinds.base import KindContext
    from optprompt.kinds.soft.kind import SoftKind
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example

__all__ = ["TrainedAdapter", "train_adapter_of", "training_seed", "dev_loss"]


@dataclass(frozen=True)
class TrainedAdapter:
    """What :meth:`SoftKind.train` did: the best epoch's dev evaluation, the run's figures
    (trainable parameters, steps, best epoch...), its per-epoch history and where the
    adapter is kept."""

    evaluation: Evaluation
    figures: dict[str, Any]
    history: list[dict[str, Any]]
    directory: Path


def training_seed(study_seed: int, candidate: SoftCandidate) -> int:
    """The seed of ``candidate``'s training run: from the study's seed and its hash, so a
    resumed study re-trains an interrupted trial to the same adapter."""
    digest = hashlib.sha256(f"{study_seed}:{candidate.hash}".encode()).hexdigest()
    return int(digest[:8], 16)


def dev_loss(ev: Evaluation) -> float | None:
    """The mean cross-entropy of the right answer over ``ev``'s answers' summed
    log-likelihoods (the training objective, measured on dev), or None when ``ev`` has no
    ranked answers (generation, extraction)."""
    import math

    losses = []
    for p in ev.predictions:
        if not p.logliks or not isinstance(p.gold, int) or not 0 <= p.gold < len(p.logliks):
            return None
        top = max(p.logliks)
        log_z = top + math.log(sum(math.exp(x - top) for x in p.logliks))
        losses.append(log_z - p.logliks[p.gold])
    return sum(losses) / len(losses) if losses else None


def train_adapter_of(
    kind: SoftKind,
    candidate: SoftCandidate,
    ctx: KindContext,
    examples: Sequence[Example],
    *,
    trial: optuna.Trial | None = None,
    prunable: bool = True,
    label: str = "training",
    provenance: dict[str, Any] | None = None,
) -> TrainedAdapter:
    """The one training path of adapters, :meth:`SoftKind.train <optprompt.kinds.soft.SoftKind.train>`:
    train ``candidate``'s adapter on ``examples`` (gold answers, or a teacher's distribution
    over the answers in ``soft_target``), score dev after each epoch (reported to ``trial``'s
    pruner when there is one), keep the best epoch's adapter under ``kind.adapter_dir`` with
    the manifest that describes it.

    Args:
        label: What the progress line calls this run ("trial 12", "distilling the winner").
        provenance: Added to the manifest's ``training`` part (where the targets came from).
    """
    import torch

    from optprompt.adapters import training
    from optprompt.adapters.backend import AdapterBackend
    from optprompt.adapters.methods import attached, trainable_parameters
    from optprompt.errors import pruned

    p = candidate.param_map
    seed = training_seed(ctx.seed, candidate)
    torch.manual_seed(seed)
    items, targets = training.training_items(candidate, examples, ctx.renderer, ctx.model.tokenizer, chat=ctx.chat)
    loaded = ctx.model
    init_text = p.get("init_text") or ctx.renderer.instruction(candidate) or ctx.task.instruction
    settings = training.TrainSettings(
        lr=p["lr"],
        epochs=p["epochs"],
        batch_size=p.get("batch_size", 8),
        warmup_ratio=p.get("warmup_ratio", 0.1),
        weight_decay=p.get("weight_decay", 0.0),
        max_grad_norm=p.get("max_grad_norm", 1.0),
        patience=p.get("patience", 2),
        seed=seed,
    )
    report = trial is not None and len(ctx.objectives) == 1
    n_dev = len(ctx.dev)
    with attached(loaded, candidate, init_text) as peft_model:
        backend = AdapterBackend(loaded, peft_model, batch_tokens=ctx.evaluator.backend.batch_tokens)
        evaluator = ctx.evaluator.with_backend(backend)

        def on_epoch(epoch: int, loss: float) -> tuple[float, Evaluation, float | None]:
            ev = evaluator.evaluate(candidate, ctx.dev, "dev")
            if report:
                trial.report(ev.value, epoch)  # type: ignore[union-attr]
                # After the last epoch there is nothing left to save: keep the run.
                if prunable and epoch < settings.epochs and trial.should_prune():  # type: ignore[union-attr]
                    raise pruned(
                        f"pruned after epoch {epoch} of {settings.epochs} (dev {ev.value:.4f})",
                        scored=n_dev * epoch,
                    )
            return ev.value, ev, dev_loss(ev)

        per_epoch = -(-len(items) // settings.batch_size)

        def on_step(step: int, loss: float) -> None:
            epoch = (step - 1) // per_epoch + 1
            ctx.note(
                f"{label}: {candidate.method} epoch {epoch}/{settings.epochs}, "
                f"step {step - (epoch - 1) * per_epoch}/{per_epoch}, loss {loss:.3f}"
            )

        result = training.train_adapter(
            peft_model,
            items,
            targets,
            settings,
            pad_id=backend.pad_id,
            device=loaded.device,
            on_epoch=on_epoch,
            on_step=on_step,
            keep_arg=backend.keep_arg,
        )
        figures = {
            "trainable_parameters": trainable_parameters(peft_model),
            "train_examples": len(items),
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2),
            "steps_per_second": round(result.steps_per_second, 3),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "seed": seed,
        }
        directory = _save(
            kind,
            peft_model,
            candidate,
            ctx,
            {**figures, "history": result.history, **(provenance or {})},
            result.best_payload,
        )
    return TrainedAdapter(result.best_payload, figures, result.history, directory)


def _save(
    kind: SoftKind,
    peft_model: Any,
    candidate: SoftCandidate,
    ctx: KindContext,
    training: dict[str, Any],
    dev: Evaluation,
) -> Path:
    """Keep the trained adapter under the kind's ``adapter_dir`` with the manifest that describes it."""
    from optprompt.adapters.artifact import manifest_for, save_adapter

    task_info = ctx.task.summary()
    card = card_from_description(kind.describe(candidate, ctx), task_info)
    directory = kind.adapter_dir(candidate, ctx)
    save_adapter(
        peft_model,
        directory,
        manifest_for(
            candidate,
            card,
            ctx.model,
            task=task_info,
            training=training,
            dev=dev.to_dict(),
            study=ctx.study_name,
            seed=ctx.seed,
        ),
    )
    return directory
