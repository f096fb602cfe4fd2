"""``keyword_instructions``: instructions that name each label's most telling words."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, Budget, StrategyConfig, StrategyContext
from optprompt.trials import records
from optprompt_example_strategy.keywords import DEFAULT_STOPWORDS, label_keywords

if TYPE_CHECKING:
    import optuna

__all__ = ["KeywordInstructions", "KeywordInstructionsConfig", "DEFAULT_PHRASINGS", "REWRITE_PROMPT"]

DEFAULT_PHRASINGS: tuple[str, ...] = (
    "Texts labelled {label} often mention {words}.",
    "Typical words for {label}: {words}.",
    "Answer {label} when the text says things like {words}.",
)
PLACEMENTS = ("after", "before", "replace")
REWRITE_PROMPT = (
    "Rewrite the instruction below so it is short and clear. Keep the answer words and the "
    "example words. Reply with the instruction only.\n\nInstruction: {instruction}"
)
# Trial attribute: the rewriter calls a trial made (read back to enforce the budget, also
# after a resume).
REWRITER_CALLS = "keyword_instructions.rewriter_calls"


class KeywordInstructionsConfig(StrategyConfig):
    """Options of ``keyword_instructions`` (all optional; unknown keys are errors)."""

    max_keywords: int = Field(4, ge=1, le=20, description="Most cue words shown per label.")
    min_count: int = Field(2, ge=1, description="Fewest train texts of a label a cue word must appear in.")
    min_length: int = Field(3, ge=1, description="Shortest word considered.")
    stopwords: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOPWORDS), description="Words never used as cue words."
    )
    phrasings: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PHRASINGS),
        min_length=1,
        description="Sentence per label; {label} is its answer word, {words} its cue words.",
    )
    placements: list[Literal["after", "before", "replace"]] = Field(
        default_factory=lambda: list(PLACEMENTS),
        min_length=1,
        description="Where the cue sentences go: after or before the baseline instruction, or instead of it.",
    )
    rewrite: bool = Field(False, description="Also try each instruction as rephrased by a model.")
    rewriter: str | None = Field(None, description="Model that rephrases (default: the task model).")
    max_new_tokens: int = Field(48, ge=1, le=512, description="Longest rephrasing, in tokens.")

    @field_validator("phrasings")
    @classmethod
    def _placeholders(cls, value: list[str]) -> list[str]:
        for p in value:
            if "{label}" not in p or "{words}" not in p:
                raise ValueError(f"{p!r} needs both {{label}} and {{words}}")
        return value


class KeywordInstructions(BaseStrategy):
    """Instructions naming each label's most telling words in the train split."""

    name = "keyword_instructions"
    config_class = KeywordInstructionsConfig
    config: KeywordInstructionsConfig

    def __init__(self, config: KeywordInstructionsConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        task = context.task
        if task.generates or not task.labels:  # cue words need a fixed label set
            raise ConfigError(
                f"strategy 'keyword_instructions' needs a task with a fixed label set (classification); "
                f"this one is {task.type}"
            )
        self.answer = dict(context.baseline.verbalizer)
        ranked = label_keywords(
            ((ex.input, ex.target) for ex in task.train),
            min_count=config.min_count,
            min_length=config.min_length,
            stopwords=config.stopwords,
            exclude=[*task.labels, *self.answer.values()],
        )
        self.keywords = {label: ranked.get(label, [])[: config.max_keywords] for label in task.labels}
        longest = max(len(k) for k in self.keywords.values())
        if longest == 0:
            raise ConfigError(
                "strategy 'keyword_instructions': no word is typical of any label in the train split "
                f"(seen in at least min_count={config.min_count} texts of a label); lower strategy.min_count"
            )
        self.max_k = longest
        self._rewrites: dict[str, str] = {}

    def budget(self) -> Budget:
        """One dev scoring per trial, and at most one rewriter call per trial when ``rewrite`` is on."""
        return dataclasses.replace(super().budget(), rewriter_calls=self.config.trials if self.config.rewrite else 0)

    def propose(self, trial: optuna.Trial) -> PromptCandidate:
        k = trial.suggest_int("keywords", 1, self.max_k)
        phrasing = trial.suggest_categorical("phrasing", self.config.phrasings)
        placement = trial.suggest_categorical("placement", list(self.config.placements))
        hints = [
            phrasing.replace("{label}", self.answer[label]).replace("{words}", ", ".join(words[:k]))
            for label, words in self.keywords.items()
            if words
        ]
        missing = [label for label, words in self.keywords.items() if not words]
        if placement == "replace" and missing:
            raise CandidateRejected(
                f"without the baseline instruction the prompt would not mention label(s) {missing}: "
                "they have no cue word"
            )
        base = self.context.baseline.instruction.strip()
        parts = {"after": [base, *hints], "before": [*hints, base], "replace": hints}[placement]
        instruction = " ".join(p for p in parts if p)
        if self.config.rewrite and trial.suggest_categorical("rewrite", [False, True]):
            instruction = self._rewrite(trial, instruction)
        return dataclasses.replace(self.context.baseline, instruction=instruction)

    def _rewrite(self, trial: optuna.Trial, instruction: str) -> str:
        """The instruction rephrased by the rewriter model.

        Decoding is greedy, so the same instruction always gives the same rephrasing and
        a resumed or repeated run replays it. The calls made are stored on the trials and
        counted from ``trial.study``, so the budget holds across resumes too; once it is
        spent, the instruction is used as it is.
        """
        if instruction not in self._rewrites:
            used = sum(r.attr(REWRITER_CALLS, 0) for r in records(trial.study))
            if used >= self.budget().rewriter_calls:
                return instruction  # the budget is spent: no more rephrasing
            generator = self.context.generator(self.config.rewriter)
            trial.set_user_attr(REWRITER_CALLS, 1)
            reply = generator.generate(
                [REWRITE_PROMPT.replace("{instruction}", instruction)],
                max_new_tokens=self.config.max_new_tokens,
                temperature=0.0,
            )[0]
            self._rewrites[instruction] = next((line.strip() for line in reply.splitlines() if line.strip()), "")
        rewritten = self._rewrites[instruction]
        if not rewritten:
            raise CandidateRejected("the rewriter returned an empty instruction")
        return rewritten

    def summary(self, study: optuna.Study) -> dict[str, Any]:
        """The cue words per label and the rewriter calls made, for result.json."""
        calls = sum(r.attr(REWRITER_CALLS, 0) for r in records(study))
        return {"keywords": self.keywords, "rewriter_calls": calls}
