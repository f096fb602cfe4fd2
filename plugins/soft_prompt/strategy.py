"""The ``soft_prompt`` strategy: proposes one PEFT training run per Optuna trial.

Each trial picks a method (prompt tuning, prefix tuning, P-tuning, LoRA) and its
hyperparameters around a fixed discrete template: the baseline's (``soft`` candidates), or
a discrete winner's (``prompt_adapter`` candidates: ``template`` names a finished study or
writes a prompt, or a composing strategy calls :meth:`SoftPrompt.use_template`). The
strategy only proposes: the candidate's kind (:class:`optprompt.kinds.soft.SoftKind`, or
:class:`optprompt.kinds.prompt_adapter.PromptAdapterKind` built on it) trains the adapter on the train
split, scores dev after every epoch (reported to Optuna, so the median pruner this
strategy sets up can stop weak runs) and saves it with its manifest under
``OUTPUT/artifacts/adapters/<hash>``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt_plugins.soft_prompt.config import SoftPromptConfig

from optprompt.adapters import PROMPT_LEARNING, SoftCandidate
from optprompt.errors import ConfigError, OptpromptError
from optprompt.kinds.prompt_adapter import PromptAdapterCandidate
from optprompt.kinds.soft import ADAPTERS_DIR, HISTORY_ATTR, TRAINING_ATTR
from optprompt.prompts import PromptCandidate
from optprompt.results import load_result
from optprompt.strategies import BaseStrategy, Budget, Family, Fidelity, StrategyContext

if TYPE_CHECKING:
    import optuna

    from optprompt.config import PruningSpec

__all__ = ["SoftPrompt", "ADAPTERS_DIR", "HISTORY_ATTR", "TRAINING_ATTR"]


class SoftPrompt(BaseStrategy):
    """Soft prompts and adapters trained by gradient descent (model weights frozen)."""

    name = "soft_prompt"
    config_class = SoftPromptConfig
    config: SoftPromptConfig
    trains = True
    accepts_template = True
    accepts_fidelity = True
    family = Family(cost=3, share=2)  # trains: the dearest, and half the budget under fixed shares

    def __init__(self, config: SoftPromptConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        if not context.task.train:
            raise ConfigError("soft_prompt trains on the train split, which is empty")
        #: Where the text around the input came from (None: the baseline, plain trained
        #: adapters); set, proposals are prompt + adapter candidates.
        self.parent: dict[str, Any] | None = None
        self.template = self._template(config.template)
        #: A lower fidelity asked for by a composing strategy (``auto``'s first rung); None: as configured.
        self.fidelity: Fidelity | None = None

    # --- the text around the input ---------------------------------------------------
    def _template(self, ref: str | dict[str, Any]) -> PromptCandidate:
        if isinstance(ref, dict):
            return self._written(ref)
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
        try:
            result = load_result(path)
            cand = PromptCandidate.from_dict(result.best.candidate)
        except (OptpromptError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}: no winning candidate in it ({e})") from None
        self._check_demos(cand, f"{path}'s prompt")
        self.parent = {"hash": cand.hash, "study": result.name}
        return PromptCandidate(**cand.text_fields())

    def _written(self, fields: dict[str, Any]) -> PromptCandidate:
        """A prompt written in the study file, on top of the baseline's fields."""
        known = set(self.context.baseline.text_fields())
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"strategy.template: unknown keys {unknown}; a prompt has {', '.join(sorted(known))}")
        data = {**self.context.baseline.to_dict(), **fields}
        if isinstance(data.get("verbalizer"), dict):
            data["verbalizer"] = list(data["verbalizer"].items())
        try:
            cand = PromptCandidate.from_dict(data)
        except (ConfigError, TypeError, ValueError) as e:
            raise ConfigError(f"strategy.template: not a valid prompt ({e})") from None
        self._check_demos(cand, "the prompt")
        self.parent = {"hash": cand.hash, "source": "study file"}
        return PromptCandidate(**cand.text_fields())

    def _check_demos(self, cand: PromptCandidate, what: str) -> None:
        train = {ex.id for ex in self.context.task.train}
        for i in cand.demo_ids:
            if i not in train:
                try:
                    self.context.task.example(i)
                except KeyError:
                    raise ConfigError(
                        f"strategy.template: {what} shows demonstration {i!r}, which is not in this task's data"
                    ) from None
                raise ConfigError(
                    f"strategy.template: {what} shows demonstration {i!r}, which is not a train example here "
                    "(demonstrations come from the train split; dev and test stay unseen)"
                )

    def use_template(self, prompt: PromptCandidate, **where: Any) -> None:
        """Train the next proposals under the discrete ``prompt`` (``auto``: the best of the
        study so far, found at ``trial=N`` with ``dev=value``): they are prompt + adapter
        candidates naming it. Its calibration and per-input retrieval are dropped (the
        adapter is trained around fixed text)."""
        self.template = PromptCandidate(**prompt.text_fields(), metadata=dict(prompt.metadata))
        self.parent = {"hash": prompt.hash, **where}

    def use_fidelity(self, fidelity: Fidelity | None) -> None:
        """Train the next proposals on ``fidelity.train`` of the train split for
        ``fidelity.epochs`` epochs (``auto``'s first rung), or as configured (None)."""
        self.fidelity = fidelity

    # --- the training schedule ----------------------------------------------------------
    def train_size(self) -> int:
        """How many train examples a run learns from: the train split without the
        template's demonstrations, at most ``max_train_examples``."""
        shown = set(self.template.demo_ids)
        n = sum(1 for ex in self.context.task.train if ex.id not in shown)
        return min(n, self.config.max_train_examples) if self.config.max_train_examples else n

    def epochs_for(self, sampled: int) -> int:
        """``sampled`` epochs, raised (up to ``max_epochs``) so that the run takes at least
        ``min_steps`` optimisation steps: on a small train split a few epochs are a few
        dozen steps, too few for an adapter to learn what the split teaches; early stopping
        on dev ends the run when it stops improving."""
        c = self.config
        per_epoch = -(-max(1, self.train_size()) // c.batch_size)
        needed = -(-c.min_steps // per_epoch)
        return max(sampled, min(needed, c.max_epochs))

    # --- budget, sampler, pruner -----------------------------------------------------
    def budget(self) -> Budget:
        trials = self.config.trials
        return Budget(trials=trials, dev_scorings=1 + (trials - 1) * self.epochs_for(self.config.epochs[1]))

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
        params["epochs"] = self.epochs_for(e_low if e_low == e_high else trial.suggest_int("epochs", e_low, e_high))
        fidelity = self.fidelity
        if fidelity is not None:  # a low-fidelity run: a part of train, few epochs, as asked
            params["epochs"] = min(params["epochs"], fidelity.epochs)
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
        if fidelity is not None and fidelity.train < 1:
            part = max(c.batch_size, math.ceil(fidelity.train * self.train_size()))
            params["max_train_examples"] = min(part, params.get("max_train_examples") or part)
        if self.parent is None:
            return SoftCandidate.create(self.template, method, params)
        return PromptAdapterCandidate.under(self.template, method, params, **self.parent)

    # --- reporting -------------------------------------------------------------------
    def summary(self, study: optuna.Study) -> dict[str, Any]:
        from optuna.trial import TrialState

        from optprompt.trials import TrialRecord

        by_method: dict[str, dict[str, Any]] = {}
        for t in study.get_trials(deepcopy=False):
            record = TrialRecord.from_frozen(t)
            cand = record.candidate or {}
            if "method" not in cand:  # the baseline prompt
                continue
            m = by_method.setdefault(cand["method"], {"trials": 0, "pruned": 0, "failed": 0, "best": None})
            m["trials"] += 1
            m["pruned"] += t.state == TrialState.PRUNED
            m["failed"] += t.state == TrialState.FAIL
            training = record.attr(TRAINING_ATTR)
            if t.state == TrialState.COMPLETE and training and (m["best"] is None or t.values[0] > m["best"]["dev"]):
                m["best"] = {
                    "trial": t.number,
                    "dev": t.values[0],
                    "params": cand.get("params"),
                    "trainable_parameters": training["trainable_parameters"],
                    "steps_per_second": training["steps_per_second"],
                    "artifact": record.artifact,
                }
        return {"methods": by_method}
