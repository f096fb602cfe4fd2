"""The ``soft_prompt`` strategy: one PEFT training run per Optuna trial.

Each trial picks a method (prompt tuning, prefix tuning, P-tuning, LoRA) and its
hyperparameters; the adapter is trained on the train split around a fixed discrete
template, scored on dev after every epoch (reported to Optuna, so the median pruner can
stop weak runs) and saved with its manifest under ``OUTPUT/artifacts/adapters/<hash>``.
The candidate's hash covers the template, method and hyperparameters, and training is
seeded from the study's seed and that hash, so a resumed study re-trains an interrupted
trial to the same adapter.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt_plugins.soft_prompt.config import SoftPromptConfig

from optprompt._io import read_json
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.methods import PROMPT_LEARNING
from optprompt.errors import ConfigError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.strategies.base import BaseStrategy, Budget, StrategyContext, TrialSession

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import PruningSpec
    from optprompt.scoring.evaluate import Evaluation, Evaluator
    from optprompt.tasks.task import Example

__all__ = ["SoftPrompt", "ADAPTERS_DIR", "HISTORY_ATTR", "TRAINING_ATTR"]

ADAPTERS_DIR = "adapters"
HISTORY_ATTR = "soft_prompt.history"  # per-epoch train loss and dev score
TRAINING_ATTR = "soft_prompt.training"  # trainable parameters, steps, steps/s, best epoch


class SoftPrompt(BaseStrategy):
    """Soft prompts and adapters trained by gradient descent (model weights frozen)."""

    name = "soft_prompt"
    config_class = SoftPromptConfig
    config: SoftPromptConfig

    def __init__(self, config: SoftPromptConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        if context.task.type not in ("classification", "multiple_choice", "generation"):
            raise ConfigError(f"soft_prompt: unsupported task type {context.task.type!r}")
        if not context.task.train:
            raise ConfigError("soft_prompt trains on the train split, which is empty")
        self.template = self._template(config.template)

    # --- the text around the input ---------------------------------------------------
    def _template(self, ref: str) -> PromptCandidate:
        if ref == "baseline":
            return self.context.baseline
        path = Path(ref)
        if not path.is_absolute() and self.context.task.source:
            near = Path(self.context.task.source).parent / path
            path = near if near.exists() and not path.exists() else path
        if path.is_dir():
            path = path / "result.json"
        if not path.is_file():
            raise ConfigError(
                f"strategy.template: {ref!r} is neither 'baseline' nor a finished study (no result.json at {path})"
            )
        data = read_json(path, what="finished study result")
        try:
            cand = PromptCandidate.from_dict(data["best"]["candidate"])
        except (KeyError, TypeError) as e:
            raise ConfigError(f"{path}: no winning candidate in it ({e})") from None
        for i in cand.demo_ids:
            try:
                self.context.task.example(i)
            except KeyError:
                raise ConfigError(
                    f"strategy.template: {path}'s prompt shows demonstration {i!r}, which is not in this task's data"
                ) from None
        return PromptCandidate(**cand.text_fields())

    # --- budget, sampler, pruner -----------------------------------------------------
    def budget(self) -> Budget:
        trials = self.config.trials
        return Budget(trials=trials, dev_scorings=1 + (trials - 1) * self.config.epochs[1])

    def create_pruner(self, pruning: PruningSpec, n_dev: int) -> optuna.pruners.BasePruner:
        import optuna

        if pruning.pruner != "none":
            raise ConfigError(
                f"pruning.pruner: soft_prompt prunes training runs per epoch itself (strategy.prune); "
                f"set pruning.pruner to 'none' (got {pruning.pruner!r})"
            )
        if not self.config.prune or len(self.context.objectives) > 1:
            return optuna.pruners.NopPruner()
        # +1: the baseline trial is complete but reports nothing per epoch.
        return optuna.pruners.MedianPruner(n_startup_trials=self.config.prune_after + 1, n_warmup_steps=0)

    # --- proposing -------------------------------------------------------------------
    def propose(self, trial: optuna.Trial) -> SoftCandidate:
        c = self.config
        method = trial.suggest_categorical("method", list(c.methods))
        params: dict[str, Any] = {}
        low, high = c.lr_range(method)
        params["lr"] = low if low == high else trial.suggest_float(f"{method}.lr", low, high, log=True)
        e_low, e_high = c.epochs
        params["epochs"] = e_low if e_low == e_high else trial.suggest_int("epochs", e_low, e_high)
        if method in PROMPT_LEARNING:
            params["num_virtual_tokens"] = trial.suggest_categorical(f"{method}.virtual_tokens", list(c.virtual_tokens))
        if method == "prompt_tuning":
            params["init"] = trial.suggest_categorical("prompt_tuning.init", list(c.init))
            if params["init"] == "text" and c.init_text:
                params["init_text"] = c.init_text
        elif method == "p_tuning":
            params["encoder_hidden_size"] = c.encoder_hidden_size
        elif method == "prefix_tuning" and c.prefix_projection:
            params["prefix_projection"] = True
            params["encoder_hidden_size"] = c.encoder_hidden_size
        elif method == "lora":
            params["lora_r"] = trial.suggest_categorical("lora.r", list(c.lora_r))
            if c.lora_targets:
                params["lora_targets"] = list(c.lora_targets)
        params.update(
            batch_size=c.batch_size,
            warmup_ratio=c.warmup_ratio,
            weight_decay=c.weight_decay,
            max_grad_norm=c.max_grad_norm,
            patience=c.patience,
        )
        if c.max_train_examples:
            params["max_train_examples"] = c.max_train_examples
        return SoftCandidate.create(self.template, method, params)

    # --- training and scoring --------------------------------------------------------
    def _train_examples(self, candidate: SoftCandidate, seed: int) -> list[Example]:
        from optprompt.tasks.sampling import balanced_sample

        shown = set(candidate.demo_ids)
        pool = [ex for ex in self.context.task.train if ex.id not in shown]
        n = candidate.param_map.get("max_train_examples")
        if n and n < len(pool):
            pool = balanced_sample(pool, n, random.Random(seed), by_label=self.context.task.type == "classification")
        return pool

    @staticmethod
    def _seed(study_seed: int, candidate: SoftCandidate) -> int:
        digest = hashlib.sha256(f"{study_seed}:{candidate.hash}".encode()).hexdigest()
        return int(digest[:8], 16)

    def adapter_dir(self, candidate: PromptCandidate, session: TrialSession) -> Path:
        return session.artifacts / ADAPTERS_DIR / candidate.hash

    def score(self, trial: optuna.Trial, candidate: PromptCandidate, session: TrialSession) -> Evaluation:
        import torch

        from optprompt.adapters.artifact import manifest_for, save_adapter
        from optprompt.adapters.backend import AdapterBackend
        from optprompt.adapters.methods import attached, trainable_parameters
        from optprompt.adapters.training import TrainSettings, train_adapter, training_items
        from optprompt.export.card import card_from_description
        from optprompt.study.fidelity import Pruned
        from optprompt.study.results import describe

        if not isinstance(candidate, SoftCandidate):
            return session.score(candidate, trial)
        p = candidate.param_map
        seed = self._seed(session.seed, candidate)
        torch.manual_seed(seed)
        examples = self._train_examples(candidate, seed)
        items, targets = training_items(
            candidate, examples, session.renderer, session.model.tokenizer, chat=session.chat
        )
        loaded = session.model
        init_text = p.get("init_text") or session.renderer.instruction(candidate) or self.context.task.instruction
        settings = TrainSettings(
            lr=p["lr"],
            epochs=p["epochs"],
            batch_size=p.get("batch_size", 8),
            warmup_ratio=p.get("warmup_ratio", 0.1),
            weight_decay=p.get("weight_decay", 0.0),
            max_grad_norm=p.get("max_grad_norm", 1.0),
            patience=p.get("patience", 2),
            seed=seed,
        )
        single = len(self.context.objectives) == 1
        n_dev = len(session.dev)
        with attached(loaded, candidate, init_text) as peft_model:
            backend = AdapterBackend(loaded, peft_model, batch_tokens=session.evaluator.backend.batch_tokens)
            evaluator = session.evaluator.with_backend(backend)

            def on_epoch(epoch: int, loss: float) -> tuple[float, Evaluation]:
                ev = evaluator.evaluate(candidate, session.dev, "dev")
                if single:
                    trial.report(ev.value, epoch)
                    # After the last epoch there is nothing left to save: keep the run.
                    if epoch < settings.epochs and trial.should_prune():
                        raise Pruned(
                            n_dev * epoch,
                            n_dev,
                            ev.value,
                            reason=f"pruned after epoch {epoch} of {settings.epochs} (dev {ev.value:.4f})",
                        )
                return ev.value, ev

            per_epoch = -(-len(items) // settings.batch_size)

            def on_step(step: int, loss: float) -> None:
                epoch = (step - 1) // per_epoch + 1
                session.note(
                    f"trial {trial.number}: {candidate.method} epoch {epoch}/{settings.epochs}, "
                    f"step {step - (epoch - 1) * per_epoch}/{per_epoch}, loss {loss:.3f}"
                )

            result = train_adapter(
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
            evaluation: Evaluation = result.best_payload
            training = {
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
            task_info = self.context.task.summary()
            card = card_from_description(describe(session.renderer, session.chat, candidate), task_info)
            directory = self.adapter_dir(candidate, session)
            save_adapter(
                peft_model,
                directory,
                manifest_for(
                    candidate,
                    card,
                    loaded,
                    task=task_info,
                    training={**training, "history": result.history},
                    dev=evaluation.to_dict(),
                    study=session.study_name,
                    seed=session.seed,
                ),
            )
        trial.set_user_attr(HISTORY_ATTR, result.history)
        trial.set_user_attr(TRAINING_ATTR, training)
        evaluation.extra["dev_scored"] = n_dev * len(result.history)
        evaluation.extra["artifact"] = str(directory.relative_to(session.output))
        return evaluation

    @contextlib.contextmanager
    def scorer(self, candidate: PromptCandidate, session: TrialSession) -> Iterator[Evaluator]:
        if not isinstance(candidate, SoftCandidate):
            yield session.evaluator
            return
        from optprompt.adapters.artifact import attach_saved
        from optprompt.adapters.backend import AdapterBackend
        from optprompt.adapters.methods import detach

        directory = self.adapter_dir(candidate, session)
        if not directory.is_dir():
            raise ConfigError(f"the adapter of candidate {candidate.hash} is missing: {directory}")
        peft_model = attach_saved(session.model, directory)
        try:
            backend = AdapterBackend(session.model, peft_model, batch_tokens=session.evaluator.backend.batch_tokens)
            yield session.evaluator.with_backend(backend)
        finally:
            detach(peft_model, session.model)

    # --- reporting -------------------------------------------------------------------
    def summary(self, study: optuna.Study) -> dict[str, Any]:
        from optuna.trial import TrialState

        from optprompt.study import attrs

        by_method: dict[str, dict[str, Any]] = {}
        for t in study.get_trials(deepcopy=False):
            cand = t.user_attrs.get(attrs.CANDIDATE) or {}
            if cand.get("kind") != "soft":
                continue
            m = by_method.setdefault(cand["method"], {"trials": 0, "pruned": 0, "failed": 0, "best": None})
            m["trials"] += 1
            m["pruned"] += t.state == TrialState.PRUNED
            m["failed"] += t.state == TrialState.FAIL
            training = t.user_attrs.get(TRAINING_ATTR)
            if t.state == TrialState.COMPLETE and training and (m["best"] is None or t.values[0] > m["best"]["dev"]):
                m["best"] = {
                    "trial": t.number,
                    "dev": t.values[0],
                    "params": cand.get("params"),
                    "trainable_parameters": training["trainable_parameters"],
                    "steps_per_second": training["steps_per_second"],
                    "artifact": t.user_attrs.get(attrs.ARTIFACT),
                }
        return {"methods": by_method}
