"""The ``soft_prompt`` strategy's options (YAML ``strategy:`` keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from optprompt.strategies import StrategyConfig

__all__ = ["SoftPromptConfig", "DEFAULT_LR", "Method"]

Method = Literal["prompt_tuning", "prefix_tuning", "p_tuning", "lora"]

#: Learning-rate ranges searched (log scale) per method, unless ``lr`` names others.
DEFAULT_LR: dict[str, tuple[float, float]] = {
    "prompt_tuning": (3e-3, 3e-1),
    "prefix_tuning": (1e-3, 3e-2),
    "p_tuning": (1e-4, 1e-2),
    "lora": (5e-4, 3e-3),  # below ~5e-4 a run of ~100 steps barely moves a LoRA adapter
}


class SoftPromptConfig(StrategyConfig):
    """Search space and training settings. A list is a set of choices Optuna picks from
    (one element fixes it); ``[low, high]`` pairs are ranges."""

    trials: int = Field(8, ge=1, description="Trials, the baseline (trial 0) included: one training run each.")
    methods: list[Method] = Field(
        default_factory=lambda: ["prompt_tuning", "lora"], min_length=1, description="PEFT methods to search over."
    )
    virtual_tokens: list[int] = Field(
        default_factory=lambda: [8, 16], min_length=1, description="Virtual-token counts (prompt learning methods)."
    )
    init: list[Literal["text", "random", "vocab"]] = Field(
        default_factory=lambda: ["text", "vocab"],
        min_length=1,
        description="Prompt-tuning initialisations: the template's instruction (or init_text), "
        "random, sampled vocabulary.",
    )
    init_text: str | None = Field(None, description="Text whose token embeddings initialise prompt tuning.")
    lr: dict[Method, tuple[float, float]] = Field(
        default_factory=dict, description="Learning-rate range [low, high] per method (log-uniform)."
    )
    epochs: tuple[int, int] = Field((2, 4), description="Range of training epochs [low, high].")
    min_steps: int = Field(
        100,
        ge=0,
        description="Optimisation steps a run takes at least: on a small train split the sampled epochs are "
        "raised until epochs x ceil(train examples / batch_size) reaches it (at most max_epochs); early stopping "
        "on dev ends a run that stops improving. 0: the sampled epochs as they are.",
    )
    max_epochs: int = Field(30, ge=1, description="The most epochs min_steps may raise a run to.")
    lora_r: list[int] = Field(default_factory=lambda: [4, 8], min_length=1, description="LoRA ranks.")
    lora_targets: list[str] | None = Field(None, description="Module names LoRA adapts (PEFT's default per model).")
    encoder_hidden_size: int = Field(128, ge=1, description="P-tuning prompt-encoder width.")
    prefix_projection: bool = Field(False, description="Prefix tuning: reparameterise through an MLP.")
    batch_size: int = Field(8, ge=1, description="Examples per optimisation step.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of steps with a linear warm-up.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    patience: int = Field(2, ge=1, description="Early stopping: epochs without a better dev score.")
    max_train_examples: int | None = Field(
        None, ge=1, description="Train on a label-balanced sample of this many train examples."
    )
    template: str | dict[str, Any] = Field(
        "baseline",
        description="The text around the input: 'baseline' (the task's prompt: trained adapters, kind 'soft'); "
        "a finished study's output directory or result.json (its winning prompt), or a prompt written here "
        "(instruction, template, demo_ids, verbalizer, choice_format, separator, output_format; the baseline's "
        "for the keys left out): prompt + adapter candidates (kind 'prompt_adapter'), trained under that prompt.",
    )
    prune: bool = Field(True, description="Stop weak runs after an epoch with Optuna's median pruner.")
    prune_after: int = Field(2, ge=0, description="Finished training runs before pruning may start.")

    @field_validator("virtual_tokens")
    @classmethod
    def _tokens(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if n < 1]
        if bad:
            raise ValueError(f"the number of virtual tokens must be at least 1, got {bad[0]}")
        return v

    @field_validator("lora_r")
    @classmethod
    def _rank(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if n < 1]
        if bad:
            raise ValueError(f"the LoRA rank must be at least 1, got {bad[0]}")
        return v

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        out = {}
        for method, rng in v.items():
            pair = [rng, rng] if isinstance(rng, (int, float)) else rng
            if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, (int, float)) for x in pair):
                low, high = pair
                if low <= 0 or high <= 0:
                    raise ValueError(f"learning rates must be positive; {method}: got {list(pair)}")
                if low > high:
                    raise ValueError(f"learning-rate range {method}: low {low} is above high {high}")
            out[method] = pair
        return out

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs(cls, v: object) -> object:
        pair = [v, v] if isinstance(v, int) else v
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, int) for x in pair):
            if pair[0] < 1:
                raise ValueError(f"epochs must be at least 1, got {pair[0]}")
            if pair[0] > pair[1]:
                raise ValueError(f"epochs range: low {pair[0]} is above high {pair[1]}")
        return pair

    def lr_range(self, method: str) -> tuple[float, float]:
        return tuple(self.lr.get(method, DEFAULT_LR[method]))  # type: ignore[return-value]
