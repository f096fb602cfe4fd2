"""Template search: Optuna explores instruction, demonstrations, format and verbalizer."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any, Literal

from optprompt_plugins.template_search.induce import Induced, induce_instructions
from pydantic import BaseModel, ConfigDict, Field, field_validator

from optprompt.config import ServedModelSpec, served_model_field
from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import (
    CALIBRATIONS,
    CASINGS,
    CHOICE_FORMATS,
    DEMO_ORDERS,
    PromptCandidate,
    Retrieval,
    apply_casing,
    extend_instruction,
    fits_answers,
)
from optprompt.strategies import BaseStrategy, Budget, Family, StrategyConfig, StrategyContext
from optprompt.tasks import ScoringPath, balanced_sample, resolve_task_type

if TYPE_CHECKING:
    import optuna

    from optprompt.tasks import Task

__all__ = ["KnnOptions", "TemplateSearch", "TemplateSearchConfig"]


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
        description="How hidden states become a text's vector: mean over its tokens, or its last token's "
        "(embedding and hybrid similarity; a lexical candidate draws none).",
    )
    similarity: list[Literal["embedding", "lexical", "hybrid"]] | None = Field(
        None,
        min_length=1,
        description="How an input is compared with the pool: the cosine of embedding vectors, of TF-IDF word vectors "
        "over the pool (lexical: no embedding model needed), or the mean of the two (hybrid). Default: "
        "[embedding, hybrid]; [lexical] for a served task model without an embedder.",
    )
    pool: int = Field(256, ge=1, description="Train examples demonstrations are retrieved from (a balanced sample).")
    embedder: str | ServedModelSpec | None = Field(
        None,
        description="Embedding model: any model reference, or a served embeddings endpoint (http://HOST:PORT/v1 or "
        "{url, name, api_key_env}; vLLM with --runner pooling --convert embed); default: the task model's own hidden "
        "states.",
    )

    @field_validator("embedder", mode="before")
    @classmethod
    def _served_embedder(cls, v: object) -> object:
        return served_model_field(v)


#: The budget from which per-input (kNN) demonstrations join the default search: each kNN
#: candidate costs about three fixed ones, so a small budget is better spent on the rest.
KNN_MIN_TRIALS = 24
KNN_MIN_MINUTES = 4.0


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
        description="Label-bias calibrations to try (classification; multiple choice with options of its own: "
        "none and content_free, per question).",
    )
    generic: bool = Field(True, description="Add optprompt's generic instruction and format variants.")
    output_formats: list[Literal["lines", "json", "inline", "spans"]] = Field(
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
    demos: list[Literal["fixed", "knn"]] | None = Field(
        None,
        min_length=1,
        description="Demonstration modes to search: fixed (chosen per candidate) and/or knn (retrieved per input). "
        "Default: fixed, plus knn when the budget is large enough for it (docs/strategies.md).",
    )
    knn: KnnOptions = Field(default_factory=KnnOptions, description="Settings searched for knn demonstrations.")


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i is not None))


class TemplateSearch(BaseStrategy):
    """Searches instruction, demonstrations (number, choice, order), format and verbalizer."""

    name = "template_search"
    config_class = TemplateSearchConfig
    config: TemplateSearchConfig
    family = Family(cost=1, share=1)  # scores candidates only: the cheapest

    def __init__(self, config: TemplateSearchConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        task = context.task
        base = context.baseline
        generic = config.generic
        self.instructions = _dedupe(
            [base.instruction]
            + (
                [extend_instruction(base.instruction, t) for t in task.task_type.instruction_variants]
                if generic
                else []
            )
            + config.instructions
        )
        for t in config.templates:
            if t.count("{input}") != 1:
                raise ConfigError(f"strategy.templates: {t!r} needs the {{input}} placeholder exactly once")
        self.templates = _dedupe(
            [base.template]
            + (list(task.task_type.template_variants) + self._given_form_templates(task) if generic else [])
            + config.templates
        )
        self.words: dict[str, list[str]] = {}
        self.formats = _dedupe([base.output_format, *config.output_formats]) if task.extracts_entities else []
        if task.task_type.has_label_words:
            for key in config.verbalizers:
                if key not in task.labels:
                    raise ConfigError(f"strategy.verbalizers.{key}: not a label; labels are {list(task.labels)}")
            for label in task.labels:
                variants = [task.verbalizer[label]] + config.verbalizers.get(label, [])
                self.words[label] = _dedupe([v for v in variants if v.strip()])
            # An instruction never contradicts the answers ("answer with one word" for phrases).
            words = [w for ws in self.words.values() for w in ws]
            self.instructions = [i for i in self.instructions if fits_answers(i, words)] or self.instructions[:1]
        self.pool = balanced_sample(
            task.train, config.demo_pool, random.Random(context.seed), by_label=task.has_fixed_labels
        )
        self.max_demos = min(config.max_demos, len(self.pool))
        self.demo_modes = _dedupe(list(config.demos or self._default_demo_modes(task)))
        self.knn_pool: tuple[str, ...] = ()
        if "knn" in self.demo_modes:
            if not task.train:
                raise ConfigError("strategy.demos: knn retrieves demonstrations from the train split, which is empty")
            rng = random.Random(f"{context.seed}:knn")
            sample = balanced_sample(task.train, config.knn.pool, rng, by_label=task.has_fixed_labels)
            order = {ex.id: i for i, ex in enumerate(task.train)}
            self.knn_pool = tuple(sorted((ex.id for ex in sample), key=order.__getitem__))
        embeds = context.can_embed or config.knn.embedder is not None
        default = ["embedding", "hybrid"] if embeds else ["lexical"]  # a served model has no hidden states
        self.similarities: list[str] = list(config.knn.similarity or default)
        self.induced: Induced | None = None  # induced on the first proposal (the model is loaded by then)

    @staticmethod
    def _given_form_templates(task: Task) -> list[str]:
        """A task searched in another form than its file's (multiple choice with one set of
        options, searched as classification) also tries the given form's templates: the
        search picks the form on dev."""
        if not task.given_type:
            return []
        return [
            t for t in resolve_task_type(task.given_type).template_variants if t not in task.task_type.template_variants
        ]

    def _default_demo_modes(self, task: Task) -> list[str]:
        """fixed; and knn when the budget allows it and train holds more rows than the largest k."""
        c = self.config
        roomy = (c.minutes or 0) >= KNN_MIN_MINUTES if c.minutes is not None else c.trials >= KNN_MIN_TRIALS
        return ["fixed", "knn"] if roomy and len(task.train) > max(c.knn.k) and self.max_demos > 0 else ["fixed"]

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
            words = [w for ws in self.words.values() for w in ws]
            induced = [i for i in self.induced.instructions if fits_answers(i, words)]
            self.instructions = _dedupe(self.instructions + induced)
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
        if task.has_fixed_labels:
            calibration = trial.suggest_categorical("calibration", list(self.config.calibrations))
            # One casing convention across the answer words, as a careful engineer writes them.
            casing = trial.suggest_categorical("casing", list(CASINGS))
            verbalizer = tuple((label, apply_casing(self._word(trial, label), casing)) for label in task.labels)
            words = [w for _, w in verbalizer]
            if len(set(words)) != len(words):
                raise CandidateRejected(f"two labels share a word: {dict(verbalizer)}")
        elif task.extracts_entities:
            output_format = trial.suggest_categorical("output_format", self.formats)
            casing = trial.suggest_categorical("casing", list(CASINGS))
            verbalizer = tuple((label, apply_casing(self._word(trial, label), casing)) for label in task.labels)
            words = [w.lower() for _, w in verbalizer]
            if len(set(words)) != len(words):
                raise CandidateRejected(f"two entity types share a word: {dict(verbalizer)}")
        elif task.has_options:
            choice_format = trial.suggest_categorical("choice_format", list(CHOICE_FORMATS))
            if choice_format == "letters" and "{options}" not in template:
                raise CandidateRejected("letter answers need a template that lists the {options}")
            per_question = [c for c in self.config.calibrations if c != "mean"]  # "mean" needs shared answers
            if len(per_question) > 1:
                calibration = trial.suggest_categorical("calibration", per_question)
            elif per_question:
                calibration = per_question[0]
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

    def _word(self, trial: optuna.Trial, label: str) -> str:
        """The label's answer word: searched when the study file gives it variants."""
        words = self.words[label]
        return trial.suggest_categorical(f"word[{label}]", words) if len(words) > 1 else words[0]

    def _retrieval(self, trial: optuna.Trial) -> Retrieval:
        """The kNN settings of a trial: each option with more than one value is searched."""
        knn = self.config.knn

        def pick(name: str, values: list):  # type: ignore[no-untyped-def,type-arg]
            values = list(dict.fromkeys(values))
            return trial.suggest_categorical(name, values) if len(values) > 1 else values[0]

        # Drawn in the order of before: with one pooling (the default) a seeded study draws what it drew.
        k = int(pick("knn_k", knn.k))
        mmr = float(pick("knn_mmr", knn.mmr))
        # Free-text answers have nothing to balance (entity lists are searched all the same).
        balance = (
            bool(pick("knn_balance", knn.balance))
            if self.context.task.task_type.scoring is not ScoringPath.GENERATE
            else False
        )
        order = pick("knn_order", knn.order)
        similarity = pick("knn_similarity", self.similarities)
        # Words compared by TF-IDF have no hidden states to pool: no search dimension spent on
        # it, and no two lexical candidates that differ in nothing else.
        pooling = knn.pooling[0] if similarity == "lexical" else pick("knn_pooling", knn.pooling)
        return Retrieval(
            pool=self.knn_pool,
            k=k,
            mmr=mmr,
            balance=balance,
            order=order,
            embedder=knn.embedder,
            pooling=pooling,
            similarity=similarity,
        )
