"""Options of the ``evolution`` strategy, validated at the door."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optprompt.errors import ConfigError
from optprompt.strategies import StrategyConfig

__all__ = ["EvolutionConfig", "OperatorTemplates", "DEFAULT_TEMPLATES", "EDIT_OPS", "check_config"]

EDIT_OPS = ("delete", "swap", "add", "paraphrase")

# Short, plain operator prompts: small instruct models follow these better than
# EvoPrompt's multi-step ones. Placeholders are replaced literally (no str.format).
DEFAULT_TEMPLATES: dict[str, str] = {
    "paraphrase": (
        "Rewrite the following instruction in different words. Keep its meaning. "
        "Reply with the new instruction only.\n\nInstruction: {prompt}"
    ),
    "mutate": (
        "Improve the following instruction by changing a few words. "
        "Reply with the new instruction only.\n\nInstruction: {prompt}"
    ),
    "crossover": (
        "Combine the two instructions below into one new instruction. "
        "Reply with the new instruction only.\n\nInstruction 1: {prompt1}\nInstruction 2: {prompt2}"
    ),
    "de": (
        "Instruction A: {prompt1}\nInstruction B: {prompt2}\nBest instruction: {best}\n\n"
        "Rewrite the best instruction, changing the parts where A and B differ. "
        "Reply with the new instruction only."
    ),
}
_REQUIRED = {
    "paraphrase": ("{prompt}",),
    "mutate": ("{prompt}",),
    "crossover": ("{prompt1}", "{prompt2}"),
    "de": ("{best}", "{prompt1}", "{prompt2}"),
}


class OperatorTemplates(BaseModel):
    """The rewriter's prompts, one per LLM operator (each overridable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paraphrase: str = Field(DEFAULT_TEMPLATES["paraphrase"], description="Needs {prompt}.")
    mutate: str = Field(DEFAULT_TEMPLATES["mutate"], description="Needs {prompt}.")
    crossover: str = Field(DEFAULT_TEMPLATES["crossover"], description="Needs {prompt1} and {prompt2}.")
    de: str = Field(DEFAULT_TEMPLATES["de"], description="Needs {best}, {prompt1} and {prompt2}.")

    @field_validator("paraphrase", "mutate", "crossover", "de")
    @classmethod
    def _has_placeholders(cls, value: str, info) -> str:  # type: ignore[no-untyped-def]
        missing = [p for p in _REQUIRED[info.field_name] if p not in value]
        if missing:
            raise ValueError(f"the template must contain {' and '.join(missing)}")
        return value


#: ``generations`` when the budget is in minutes and none is given: an upper bound only.
MINUTES_GENERATIONS = 50


class EvolutionConfig(StrategyConfig):
    """Options of ``evolution`` (all optional).

    ``trials`` is derived: ``population * (generations + 1)`` (the baseline is the first
    individual of generation 0). A smaller ``trials`` (e.g. ``--trials``) stops the run
    early; running again with a larger one continues where it stopped. A larger one is
    an error: raise ``generations`` or ``population`` instead.

    With ``budget: {minutes: M}`` the evolution runs generation after generation until the
    minutes of trial time are spent; ``generations`` (default then
    :data:`MINUTES_GENERATIONS`) only bounds it.
    """

    trials: int | None = Field(None, ge=1, description="Default and maximum: population * (generations + 1).")
    sampler: Literal["random"] = Field("random", description="Unused: the evolution makes its own choices.")
    mode: Literal["ga", "de"] = Field("ga", description="Genetic algorithm or differential evolution (EvoPrompt).")
    population: int = Field(6, description="Individuals per generation (GA >= 2, DE >= 3).")
    generations: int = Field(
        3,
        description=f"Generations after the initial population (>= 1); with a budget in minutes, "
        f"as many as the minutes allow, at most this (default then {MINUTES_GENERATIONS}).",
    )
    operators: Literal["mixed", "llm", "edit"] = Field(
        "mixed", description="Variation operators: LLM rewrites, model-free edits (GrIPS), or both."
    )
    edit_rate: float = Field(0.3, ge=0.0, le=1.0, description="mixed: share of children made by edits.")
    rewriter: str | None = Field(None, description="Model that rewrites (default: the task model).")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Rewriter sampling temperature.")
    max_new_tokens: int = Field(64, ge=8, le=512, description="Longest rewrite, in tokens.")
    templates: OperatorTemplates = Field(default_factory=OperatorTemplates, description="Operator prompts.")
    retries: int = Field(2, ge=0, le=10, description="Extra tries when a rewrite is junk or a duplicate.")
    max_rewriter_calls: int | None = Field(
        None, ge=0, description="Cap on rewriter calls (default: the worst case of the settings)."
    )
    selection: Literal["roulette", "tournament", "random"] = Field("roulette", description="GA parent selection.")
    elitism: int | None = Field(
        None,
        ge=0,
        description="GA: parents kept unconditionally; default: all (best of parents + children).",
    )
    crossover_rate: float = Field(0.8, ge=0.0, le=1.0, description="Chance a child is a crossover.")
    edit_ops: list[Literal["delete", "swap", "add", "paraphrase"]] = Field(
        default_factory=lambda: list(EDIT_OPS), min_length=1, description="Model-free edits to use."
    )
    phrases: list[str] = Field(default_factory=list, description="Extra phrases the `add` edit may insert.")
    synonyms: list[list[str]] = Field(
        default_factory=list,
        description="Extra groups of interchangeable words for the `paraphrase` edit.",
    )
    instructions: list[str] = Field(default_factory=list, description="Extra seeds of the initial population.")
    max_demos: int = Field(0, ge=0, le=16, description="Evolve demonstration sets of up to N examples too.")
    demo_pool: int = Field(16, ge=1, description="Train examples the demonstrations are drawn from.")
    calibration: Literal["none", "content_free", "mean"] = Field(
        "none", description="Calibration of every individual but the baseline."
    )
    max_instruction_chars: int = Field(400, ge=40, description="Longer rewrites are cut or rejected.")

    @model_validator(mode="before")
    @classmethod
    def _budget_sets_trials(cls, data: Any) -> Any:
        """``budget: {trials: N}`` is ``trials: N``; with ``budget: {minutes: M}`` the trial
        count follows from the generations, which default to :data:`MINUTES_GENERATIONS`."""
        budget = data.get("budget") if isinstance(data, dict) else None
        if isinstance(budget, dict) and budget.get("minutes") is not None and budget.get("trials") is None:
            return data if "generations" in data else {**data, "generations": MINUTES_GENERATIONS}
        return super()._budget_sets_trials(data)

    @property
    def individuals(self) -> int:
        """Individuals scored when the run is complete: ``population * (generations + 1)``."""
        return self.population * (self.generations + 1)


def check_config(config: EvolutionConfig) -> None:
    """Checks that span several options; each error names ``strategy.<key>``."""

    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"strategy 'evolution': strategy.{key}: {msg}")

    min_pop = 3 if config.mode == "de" else 2
    if config.population < min_pop:
        fail(
            "population",
            f"{config.population} is too small; mode {config.mode!r} needs at least {min_pop}",
        )
    if config.generations < 1:
        fail("generations", f"{config.generations} is too small; at least 1 generation is needed")
    if config.trials is not None and config.trials > config.individuals:
        fail(
            "trials",
            f"{config.trials} is more than the {config.individuals} individuals of "
            f"population {config.population} x (generations {config.generations} + 1); "
            "raise strategy.generations or strategy.population instead",
        )
    if config.elitism is not None and config.elitism > config.population:
        fail("elitism", f"{config.elitism} is more than the population ({config.population})")
    if config.mode == "de" and config.elitism is not None:
        fail(
            "elitism",
            "applies to mode 'ga' only (DE keeps the better of parent and child per slot)",
        )
    for i, group in enumerate(config.synonyms):
        if len(group) < 2 or any(not w.strip() for w in group):
            fail(f"synonyms.{i}", "a group needs at least two non-empty words")
    for i, phrase in enumerate(config.phrases):
        if not phrase.strip() or "{input}" in phrase:
            fail(f"phrases.{i}", "a phrase must be non-empty text without {input}")
    for i, text in enumerate(config.instructions):
        if not text.strip() or "{input}" in text:
            fail(
                f"instructions.{i}",
                "a seed instruction must be non-empty and must not contain {input} (the template holds the input)",
            )
