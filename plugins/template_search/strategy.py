"""Template search: Optuna explores instruction, demonstrations, format and verbalizer."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from optprompt_plugins.template_search.induce import Induced, induce_instructions
from pydantic import BaseModel, ConfigDict, Field

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import CALIBRATIONS, CHOICE_FORMATS, DEMO_ORDERS, PromptCandidate, Retrieval
from optprompt.strategies import BaseStrategy, Budget, StrategyConfig, StrategyContext
from optprompt.tasks import balanced_sample

if TYPE_CHECKING:
    import optuna

__all__ = ["KnnOptions", "TemplateSearch", "TemplateSearchConfig"]

_GENERIC_INSTRUCTIONS = {
    "classification": [
        "Classify the text into one of these categories: {labels}.",
        "Read the input and answer with one word: {labels}.",
        "{base} Answer with one of: {labels}.",
    ],
    "multiple_choice": [
        "Choose the correct answer.",
        "Read the question and pick the best option.",
        "{base} Reply with the correct option only.",
    ],
    "generation": [
        "Answer the question.",
        "Give a short answer.",
        "{base} Reply with the answer only.",
    ],
    "extraction": [
        "List the named entities in the text. Types: {types}.\n{format}",
        "Extract every name of a {labels} from the text.\n{format}",
        "{base}",
    ],
}
_GENERIC_TEMPLATES = {
    "classification": [
        "Input: {input}\nAnswer:",
        "Text: {input}\nLabel:",
        "{input}\nCategory:",
        "Q: {input}\nA:",
    ],
    "multiple_choice": [
        "Question: {input}\nAnswer:",
        "Question: {input}\nOptions:\n{options}\nAnswer:",
        "Q: {input}\n{options}\nA:",
    ],
    "generation": [
        "Question: {input}\nAnswer:",
        "Input: {input}\nOutput:",
        "Q: {input}\nA:",
    ],
    "extraction": [
        "Text: {input}\nEntities:",
        "Sentence: {input}\nNamed entities:",
        "Input: {input}\nOutput:",
    ],
}


class KnnOptions(BaseModel):
    """How ``demos: knn`` candidates retrieve their demonstrations per input: each list
    is a search dimension (a single value fixes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: list[Annotated[int, Field(ge=1, le=32)]] = Field(
        default_factory=lambda: [2, 4, 8], min_length=1, description="Demonstrations per input."
    )
    mmr: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: [1.0, 0.7, 0.4],
        min_length=1,
        description="MMR lambda: 1 = most similar; lower trades similarity for diversity.",
    )
    balance: list[bool] = Field(
        default_factory=lambda: [False, True], min_length=1, description="Cap demonstrations per label."
    )
    order: list[Literal["closest_last", "as_retrieved"]] = Field(
        default_factory=lambda: ["closest_last", "as_retrieved"],
        min_length=1,
        description="closest_last: the most similar demonstration next to the input; as_retrieved: most similar first.",
    )
    pooling: list[Literal["mean", "last"]] = Field(
        default_factory=lambda: ["mean"],
        min_length=1,
        description="How hidden states become a text's vector: mean over its tokens, or its last token's.",
    )
    pool: int = Field(256, ge=1, description="Train examples demonstrations are retrieved from (a balanced sample).")
    embedder: str | None = Field(
        None, description="Embedding model (any model reference); default: the task model's own hidden states."
    )


class TemplateSearchConfig(StrategyConfig):
    """Options of ``template_search`` (all optional)."""

    instructions: list[str] = Field(default_factory=list, description="Extra instruction variants.")
    templates: list[str] = Field(default_factory=list, description="Extra input templates ({input}).")
    verbalizers: dict[str, list[str]] = Field(default_factory=dict, description="Extra words per label.")
    max_demos: int = Field(4, ge=0, le=32, description="Most demonstrations in one prompt.")
    demo_pool: int = Field(16, ge=1, description="Train examples the demonstrations are drawn from.")
    calibrations: list[Literal["none", "content_free", "mean"]] = Field(
        default_factory=lambda: list(CALIBRATIONS),
        min_length=1,
        description="Label-bias calibrations to try (classification).",
    )
    generic: bool = Field(True, description="Add optprompt's generic instruction and format variants.")
    output_formats: list[Literal["lines", "json", "inline"]] = Field(
        default_factory=lambda: ["lines", "json", "inline"],
        min_length=1,
        description="Extraction: the answer formats to try (the baseline's is always one).",
    )
    induce: int = Field(
        0,
        ge=0,
        le=64,
        description="Instructions to induce from train demonstrations with the rewriter model (APE-style) "
        "and add to the choices; 0: off. Junk is filtered out as evolution filters it.",
    )
    induce_demos: int = Field(5, ge=1, le=32, description="Train examples shown for each induced instruction.")
    induce_model: str | None = Field(None, description="The rewriter model for induction (default: the task model).")
    demos: list[Literal["fixed", "knn"]] = Field(
        default_factory=lambda: ["fixed"],
        min_length=1,
        description="Demonstration modes to search: fixed (chosen per candidate) and/or knn (retrieved per input).",
    )
    knn: KnnOptions = Field(default_factory=KnnOptions, description="Settings searched for knn demonstrations.")


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))


class TemplateSearch(BaseStrategy):
    """Searches instruction, demonstrations (number, choice, order), format and verbalizer."""

    name = "template_search"
    config_class = TemplateSearchConfig
    config: TemplateSearchConfig

    def __init__(self, config: TemplateSearchConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        task = context.task
        base = context.baseline
        generic = config.generic
        self.instructions = _dedupe(
            [base.instruction]
            + (
                [t.replace("{base}", base.instruction.rstrip()) for t in _GENERIC_INSTRUCTIONS[task.type]]
                if generic
                else []
            )
            + config.instructions
        )
        for t in config.templates:
            if t.count("{input}") != 1:
                raise ConfigError(f"strategy.templates: {t!r} needs the {{input}} placeholder exactly once")
        # A task searched in another form than its file's (multiple choice with one set of options,
        # searched as classification) also tries the given form's templates: the search picks on dev.
        given = [t for t in _GENERIC_TEMPLATES.get(task.given_type, []) if t not in _GENERIC_TEMPLATES[task.type]]
        self.templates = _dedupe(
            [base.template] + (_GENERIC_TEMPLATES[task.type] + given if generic else []) + config.templates
        )
        self.words: dict[str, list[str]] = {}
        self.formats = _dedupe([base.output_format, *config.output_formats]) if task.type == "extraction" else []
        if task.type in ("classification", "extraction"):
            for key in config.verbalizers:
                if key not in task.labels:
                    raise ConfigError(f"strategy.verbalizers.{key}: not a label; labels are {list(task.labels)}")
            for label in task.labels:
                word = task.verbalizer[label]
                variants = [word, word.capitalize(), word.lower()] + config.verbalizers.get(label, [])
                self.words[label] = _dedupe([v for v in variants if v.strip()])
        self.pool = balanced_sample(
            task.train, config.demo_pool, random.Random(context.seed), by_label=task.type == "classification"
        )
        self.max_demos = min(config.max_demos, len(self.pool))
        self.demo_modes = _dedupe(list(config.demos))
        self.knn_pool: tuple[str, ...] = ()
        if "knn" in self.demo_modes:
            if not task.train:
                raise ConfigError("strategy.demos: knn retrieves demonstrations from the train split, which is empty")
            rng = random.Random(f"{context.seed}:knn")
            sample = balanced_sample(task.train, config.knn.pool, rng, by_label=task.type == "classification")
            order = {ex.id: i for i, ex in enumerate(task.train)}
            self.knn_pool = tuple(sorted((ex.id for ex in sample), key=order.__getitem__))
        self.induced: Induced | None = None  # induced on the first proposal (the model is loaded by then)

    def budget(self) -> Budget:
        return Budget(trials=self.config.trials, dev_scorings=self.config.trials, rewriter_calls=self.config.induce)

    def _instruction_choices(self) -> list[str]:
        """The instructions to choose from: the configured ones, plus induced ones when asked for."""
        if self.config.induce and self.induced is None:
            task, base = self.context.task, self.context.baseline
            self.induced = induce_instructions(
                task,
                self.context.generator(self.config.induce_model),
                count=self.config.induce,
                demos=self.config.induce_demos,
                seed=self.context.seed,
                words=dict(base.verbalizer) or dict(task.verbalizer),
                known=self.instructions,
            )
            self.instructions = _dedupe(self.instructions + self.induced.instructions)
        return self.instructions

    def summary(self, study: optuna.Study) -> dict[str, Any]:
        return {"induced": self.induced.to_dict()} if self.induced is not None else {}

    def propose(self, trial: optuna.Trial) -> PromptCandidate:
        task = self.context.task
        instruction = trial.suggest_categorical("instruction", self._instruction_choices())
        template = trial.suggest_categorical("template", self.templates)
        verbalizer: tuple[tuple[str, str], ...] = ()
        choice_format = "text"
        calibration = "none"
        output_format = ""
        if task.type == "classification":
            calibration = trial.suggest_categorical("calibration", list(self.config.calibrations))
            verbalizer = tuple(
                (label, trial.suggest_categorical(f"word[{label}]", self.words[label])) for label in task.labels
            )
            words = [w for _, w in verbalizer]
            if len(set(words)) != len(words):
                raise CandidateRejected(f"two labels share a word: {dict(verbalizer)}")
        elif task.type == "extraction":
            output_format = trial.suggest_categorical("output_format", self.formats)
            verbalizer = tuple(
                (label, trial.suggest_categorical(f"word[{label}]", self.words[label])) for label in task.labels
            )
            words = [w.lower() for _, w in verbalizer]
            if len(set(words)) != len(words):
                raise CandidateRejected(f"two entity types share a word: {dict(verbalizer)}")
        elif task.type == "multiple_choice":
            choice_format = trial.suggest_categorical("choice_format", list(CHOICE_FORMATS))
            if choice_format == "letters" and "{options}" not in template:
                raise CandidateRejected("letter answers need a template that lists the {options}")
        mode = trial.suggest_categorical("demos", self.demo_modes) if len(self.demo_modes) > 1 else self.demo_modes[0]
        if mode == "knn":
            return PromptCandidate(
                instruction=instruction,
                template=template,
                verbalizer=verbalizer,
                choice_format=choice_format,
                calibration=calibration,
                retrieval=self._retrieval(trial),
            )
        n_demos = trial.suggest_int("n_demos", 0, self.max_demos) if self.max_demos else 0
        pool_ids = [ex.id for ex in self.pool]
        chosen = _dedupe([trial.suggest_categorical(f"demo_{i}", pool_ids) for i in range(n_demos)])
        demo_ids: tuple[str, ...] = tuple(chosen)
        if len(chosen) > 1:
            order = trial.suggest_categorical("demo_order", list(DEMO_ORDERS))
            if order == "reversed":
                demo_ids = tuple(reversed(chosen))
            elif order == "by_label":
                target = {ex.id: ex.target for ex in self.pool}
                demo_ids = tuple(sorted(chosen, key=lambda i: (target[i], chosen.index(i))))
        return PromptCandidate(
            instruction=instruction,
            template=template,
            demo_ids=demo_ids,
            verbalizer=verbalizer,
            choice_format=choice_format,
            calibration=calibration,
            output_format=output_format,
        )

    def _retrieval(self, trial: optuna.Trial) -> Retrieval:
        """The kNN settings of a trial: each option with more than one value is searched."""
        knn = self.config.knn

        def pick(name: str, values: list):  # type: ignore[no-untyped-def,type-arg]
            values = list(dict.fromkeys(values))
            return trial.suggest_categorical(name, values) if len(values) > 1 else values[0]

        return Retrieval(
            pool=self.knn_pool,
            k=int(pick("knn_k", knn.k)),
            mmr=float(pick("knn_mmr", knn.mmr)),
            balance=bool(pick("knn_balance", knn.balance)) if self.context.task.type != "generation" else False,
            order=pick("knn_order", knn.order),
            embedder=knn.embedder,
            pooling=pick("knn_pooling", knn.pooling),
        )
