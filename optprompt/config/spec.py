"""Typed, validated description of a study (what a study YAML file loads into)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from optprompt.config.served import ServedModelSpec, served_model_field

__all__ = [
    "StudySpec",
    "TrackingSpec",
    "TaskSpec",
    "SplitSpec",
    "StrategySpec",
    "ScoringSpec",
    "PruningSpec",
    "WorkersSpec",
    "SelectionSpec",
    "DistillSpec",
    "DISTILL_METHODS",
]


def _task_types(info: ValidationInfo) -> Any:
    """The registry of task types to validate against: ``context={"task_types": ...}`` when
    the caller passes it (:func:`~optprompt.config.spec_from_dict` with ``plugins``), else
    the task types of the installed plugins (the built-in ones among them)."""
    types = (info.context or {}).get("task_types") if isinstance(info.context, dict) else None
    if types is None:
        from optprompt.plugins.manager import load_task_types

        types = load_task_types()
    return types


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(_Strict):
    """Fractions of the data that go to train, dev and test (a deterministic split by seed)."""

    train: float = Field(0.5, ge=0.0, lt=1.0)
    dev: float = Field(0.25, gt=0.0, lt=1.0)
    test: float = Field(0.25, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.dev + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + dev + test must add up to 1, got {total:g}")
        return self


class TaskSpec(_Strict):
    """Where the data comes from and how its columns map onto a task."""

    data: str | dict[str, str] = Field(
        description="A JSONL/CSV/Parquet file, a BIG-bench task.json, a datasets hub name, "
        "or a mapping {train: ..., dev: ..., test: ...} of given splits."
    )
    format: str | None = Field(None, description="Loader name; guessed from the file when unset.")
    subset: str | None = Field(None, description="Configuration name of a hub data set.")
    type: str = Field(
        None,  # type: ignore[assignment]  # the registered default type (classification)
        validate_default=True,
        description="The task type: classification (the default), multiple_choice, generation, extraction, "
        "multi_label, or one a plugin registers (`optprompt plugins` lists them).",
    )
    input: str = "input"
    label: str = "label"
    options: str | None = None
    id: str | None = Field(None, description="Column with a stable example id (default: row number).")
    labels: list[str] | None = Field(
        None, description="Label set (extraction: the entity types); taken from the data when unset."
    )
    descriptions: dict[str, str] | None = Field(
        None, description="Extraction: entity type -> what it covers, shown to the model through {types}."
    )
    output_format: Literal["lines", "json", "inline", "spans"] = Field(
        "lines",
        description="Extraction: the baseline's output format (TYPE: text lines, a JSON list, inline tags, "
        "text (TYPE) lines).",
    )
    verbalizer: dict[str, str] | None = Field(None, description="Label -> word the model should say.")
    label_separator: str | None = Field(
        None, description="Multi-label: what separates labels in a string label cell (a list cell needs none)."
    )
    split: SplitSpec = SplitSpec()
    prompt: str | None = Field(None, description="The baseline instruction.")
    template: str | None = Field(None, description="Input template with an {input} placeholder.")
    metric: str | None = Field(
        None, description="Default: accuracy (classification, multiple choice) or exact_match (generation)."
    )
    extract: str | None = Field(None, description="Generation: regex whose group 1 (or whole match) is the answer.")
    max_new_tokens: int = Field(32, gt=0, description="Generation: token budget per answer (extraction: 64).")
    stop: list[str] = Field(
        default_factory=lambda: ["\n"], description="Generation: stop strings (extraction: a blank line)."
    )
    max_examples: int | None = Field(None, gt=0, description="Use at most this many rows.")
    unlabeled: str | None = Field(
        None,
        description="Distillation: a file of unlabelled inputs (the input column) that the study's "
        "teacher labels and adds to the train split.",
    )
    options_as_labels: bool = Field(
        True,
        description="Multiple choice whose examples all offer the same options: searched as classification "
        "(the options are the labels: answer words, calibration and demonstrations are searched; a template's "
        "{options} still lists them). false: keep the multiple-choice form. Options that differ per example "
        "always keep it.",
    )
    bad_rows: Literal["error", "skip"] = Field(
        "error",
        description="Rows with an empty input, a missing or unknown label or unreadable options: error (the "
        "first one stops the study, named) or skip (dropped; result.json's task counts them per reason).",
    )
    truncate: Literal["error", "left", "right"] = Field(
        "error",
        description="Prompt + input longer than the model's context: error (naming the example and the "
        "lengths), left (cut the input's start) or right (cut its end).",
    )

    @field_validator("template")
    @classmethod
    def _template_has_input(cls, v: str | None) -> str | None:
        if v is not None and "{input}" not in v:
            raise ValueError("the template has no {input} placeholder")
        return v

    @field_validator("type", mode="before")
    @classmethod
    def _registered_type(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and not isinstance(v, str):
            return v  # the string check reports it
        types = _task_types(info)
        if v is None:
            defaults = [e.name for e in types if e.obj.is_default]
            if len(defaults) != 1:
                raise ValueError(f"no single default task type (candidates: {defaults}): set task.type")
            return defaults[0]
        if v not in types:
            from optprompt._suggest import did_you_mean

            known = types.names()
            raise ValueError(f"unknown task type {v!r}{did_you_mean(v, known)}; known: {', '.join(known)}")
        return v

    @model_validator(mode="after")
    def _fits_the_task_type(self, info: ValidationInfo) -> TaskSpec:
        types = _task_types(info)
        if self.type not in types:  # already reported under task.type
            return self
        task_type = types.get(self.type).obj
        task_type.check_spec(self)
        if self.descriptions and not task_type.extracts_entities:
            takers = " or ".join(e.name for e in types if e.obj.extracts_entities)
            raise ValueError(f"descriptions describe entity types: they need type: {takers}")
        if self.label_separator is not None and not task_type.answers_label_lists:
            takers = " or ".join(e.name for e in types if e.obj.answers_label_lists)
            raise ValueError(f"label_separator splits a cell into several labels: it needs type: {takers}")
        for key, value in task_type.spec_defaults.items():
            if key not in self.model_fields_set:
                object.__setattr__(self, key, copy.deepcopy(value))
        return self


class ScoringSpec(_Strict):
    """How candidates are scored: device, dtype, batching and chat formatting."""

    backend: str = Field("auto", description="Model family backend: auto (from the config), causal, seq2seq, masked.")
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_tokens: int = Field(4096, gt=0, description="Upper bound on tokens per forward batch.")
    cache: bool = Field(True, description="Keep scores in the persistent score cache.")
    cache_path: str | None = Field(None, description="Score cache file (default $OPTPROMPT_HOME/cache/scores.sqlite).")
    chat: Literal["auto", "on", "off"] = Field(
        "auto", description="Wrap prompts in the model's chat template (auto: when it has one)."
    )


class PruningSpec(_Strict):
    """Multi-fidelity evaluation: dev is scored in growing slices and Optuna's pruner may
    stop a clearly worse candidate early. Pruned candidates never win."""

    pruner: Literal["none", "median", "successive_halving", "wilcoxon"] = "none"
    slices: int = Field(4, ge=2, le=64, description="Number of growing dev slices (median, successive_halving).")
    min_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="Size of the first slice, as a fraction of dev.")
    warmup_trials: int = Field(5, ge=0, description="Completed trials before the median pruner prunes.")
    p_threshold: float = Field(0.1, gt=0.0, lt=1.0, description="Wilcoxon pruner: p-value to prune at.")


class SelectionSpec(_Strict):
    """How the winner is picked without overfitting dev: the search sees only part of dev;
    the best ``finalists`` there are scored again on fresh evidence (the held-out rest of
    dev, and the train rows that did not choose them: not their demonstrations, not what
    they were trained on), and the finalist with the largest paired gain over the baseline
    there is the candidate. With ``do_no_harm`` it wins only if that gain is significant
    after accounting for having picked the best of the finalists (a max-T sign-flip
    permutation test; Bonferroni for corpus-level metrics)."""

    holdout: float = Field(
        0.3,
        ge=0.0,
        lt=1.0,
        description="Fraction of dev held out from the search for picking the winner (stratified by label); "
        "0: the winner is the best on dev, as the search saw it.",
    )
    finalists: int = Field(5, ge=1, description="How many of the best distinct candidates on dev are re-scored.")
    train: int = Field(
        200,
        ge=0,
        description="Train rows re-scored as fresh evidence for each finalist they did not choose (a seeded "
        "sample when train is larger); 0: the held-out part of dev alone.",
    )
    do_no_harm: bool = Field(
        True,
        description="Keep the baseline as the winner unless the picked finalist beats it significantly on its fresh "
        "evidence (adjusted for picking the best of the finalists).",
    )
    alpha: float = Field(0.1, gt=0.0, lt=1.0, description="do_no_harm: the one-sided significance level.")
    adjust: bool = Field(
        True,
        description="do_no_harm: pay for picking the best of the finalists (max-T permutation; Bonferroni for "
        "corpus metrics); false: the picked finalist's own one-sided paired test, as optprompt did before.",
    )
    ensemble: int = Field(
        3,
        ge=0,
        description="Classification and multiple choice: the best N discrete finalists also compete as one "
        "ensemble (averaged calibrated answer probabilities); 0 or 1: no ensemble.",
    )

    def used(self, objectives: Sequence[str]) -> bool:
        """Whether held-out selection applies (single-objective studies; Pareto fronts use ``select``)."""
        return self.holdout > 0 and len(objectives) == 1


#: The adapter methods a winner can be distilled into: the adapters' own list
#: (``optprompt.adapters.METHODS``, which the config layer may not import; a test keeps them equal).
DISTILL_METHODS = ("prompt_tuning", "prefix_tuning", "p_tuning", "lora")


class DistillSpec(_Strict):
    """``distill``: at the end of the study, distil the winner (a prompt with demonstrations,
    a kNN prompt, an ensemble) into an adapter under a short prompt (the winner's text without
    demonstrations, retrieval or calibration; an ensemble's first member's), trained on the
    winner's answer distributions over the train and ``task.unlabeled`` inputs (tasks that
    generate their answer, such as multi-label or extraction: on the winner's written
    answers). Both are
    scored on test after the winner is chosen and compared (paired test); ``optprompt
    export`` writes the distilled adapter into ``distilled/``. ``distill: winner`` takes
    every default."""

    into: Literal["prompt_tuning", "prefix_tuning", "p_tuning", "lora"] = Field(
        "prompt_tuning", description="The student's adapter method."
    )
    virtual_tokens: int = Field(16, ge=1, le=512, description="Prompt learning methods: virtual tokens.")
    init: Literal["text", "random", "vocab"] = Field(
        "text",
        description="Prompt tuning: initialise the virtual tokens from the short prompt's text, at random "
        "or from sampled vocabulary.",
    )
    lora_r: int = Field(8, ge=1, le=256, description="LoRA: the rank.")
    encoder_hidden_size: int = Field(128, ge=1, description="P-tuning: the prompt encoder's width.")
    epochs: int = Field(4, ge=1, le=100, description="Training epochs (dev, gold labels, picks the best one).")
    lr: float | None = Field(
        None, gt=0.0, description="Learning rate; default 0.01 for prompt learning, 0.001 for LoRA."
    )
    batch_size: int = Field(8, ge=1, le=1024, description="Training batch size.")
    instruction: str | None = Field(
        None,
        description="The student's instruction: unset keeps the winner's; a text of your own replaces it; "
        "'' drops it (the adapter learns the task from the winner's answers alone: fewer tokens per prediction).",
    )
    gold: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="On train inputs, the weight of the gold label in the student's target: (1 - gold) x the "
        "winner's distribution + gold x the gold label (unlabelled inputs keep the winner's); tasks that generate "
        "their answer keep the gold answer instead of the winner's on that share of the train inputs (the same "
        "ones every run). 0: pure distillation.",
    )

    def student_params(self) -> dict[str, Any]:
        """The student's hyperparameters, as a soft candidate takes them (its method's own only)."""
        prompt_learning = self.into != "lora"
        out: dict[str, Any] = {
            "lr": self.lr if self.lr is not None else (0.01 if prompt_learning else 0.001),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
        }
        if self.gold:
            out["gold"] = self.gold
        if prompt_learning:
            out["num_virtual_tokens"] = self.virtual_tokens
        if self.into == "prompt_tuning":
            out["init"] = self.init
        if self.into == "p_tuning":
            out["encoder_hidden_size"] = self.encoder_hidden_size
        if self.into == "lora":
            out["lora_r"] = self.lora_r
        return out


class WorkersSpec(_Strict):
    """Crash detection for one or many workers sharing a study's storage."""

    heartbeat_interval: int = Field(5, ge=1, description="Seconds between a running trial's heartbeats.")
    grace_period: int = Field(
        20, ge=2, description="Seconds without a heartbeat before a running trial is declared dead, failed, and re-run."
    )


class StrategySpec(BaseModel):
    """The strategy's name plus its own options, validated later by the strategy's config."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    def options(self) -> dict[str, Any]:
        """The strategy-specific keys (everything but ``name``)."""
        return dict(self.model_extra or {})


class TrackingSpec(_Strict):
    """Experiment tracking: where a finished study is logged (optional extras)."""

    mlflow: str | None = Field(
        None,
        description="MLflow tracking URI (http://host:port, sqlite:///file.db, a directory): one run per study, "
        "a child run per trial, the final comparison, the card and the HTML report. Needs optprompt[mlflow].",
    )
    experiment: str | None = Field(None, description="MLflow experiment name; default: the study's name.")


class StudySpec(_Strict):
    """A whole study: model, task, strategy, seed and where results go."""

    name: str = Field(min_length=1)
    model: str | ServedModelSpec = Field(
        description="Short name, local path, hub id, or a served model: http://HOST:PORT/v1 or "
        "{url, name, api_key_env, max_concurrency, timeout, retries, tokenizer, weights}."
    )
    seed: int = 0
    output: str
    task: TaskSpec
    strategy: StrategySpec
    scoring: ScoringSpec = ScoringSpec()
    storage: str | None = Field(None, description="Optuna storage URL; default: SQLite file in the output directory.")
    objectives: list[Literal["score", "prompt_tokens", "latency"]] = Field(
        default_factory=lambda: ["score"],
        min_length=1,
        description="score (maximised), prompt_tokens and latency (minimised); more than one "
        "makes the study multi-objective (NSGA-II by default) with a Pareto front.",
    )
    select: str | None = Field(
        None,
        description="Multi-objective: constraints picking the winner from the "
        "Pareto front, e.g. 'prompt_tokens<=200' (the best score that fits).",
    )
    selection: SelectionSpec = SelectionSpec()
    tracking: TrackingSpec = TrackingSpec()
    pruning: PruningSpec = PruningSpec()
    workers: WorkersSpec = WorkersSpec()
    trial_timeout: float | None = Field(
        None, gt=0, description="Seconds one trial may take; a slower trial is failed with reason 'timeout'."
    )
    teacher: str | None = Field(
        None,
        description="Distillation: a model reference (answering with the task's baseline prompt) or an "
        "exported prompt card / adapter directory whose answers replace the train labels (and label "
        "task.unlabeled); the study's model is the student.",
    )
    teacher_labels: Literal["auto", "hard"] = Field(
        "auto",
        description="Distillation: auto = the teacher's answer distribution for classification and multiple "
        "choice (students are trained towards it, KL), its answers otherwise; hard = its answers only.",
    )
    distill: DistillSpec | None = Field(
        None,
        description="Distil the study's winner into an adapter under a short prompt at the end of the study: "
        "`winner` (defaults) or a mapping {into: prompt_tuning|lora|..., epochs, lr, ...}; classification "
        "and multiple choice only.",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _served_model(cls, v: Any) -> Any:
        if isinstance(v, str) and not v:
            raise ValueError("model is empty: give a short name, a local path, a hub id or a server URL")
        return served_model_field(v)

    @field_validator("distill", mode="before")
    @classmethod
    def _distill_shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v != "winner":
                raise ValueError(
                    f"distill: {v!r} is not known; write `distill: winner` (the defaults) or a mapping such as "
                    "`distill: {into: lora}`"
                )
            return {}
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @model_validator(mode="after")
    def _objectives(self) -> StudySpec:
        if self.objectives[0] != "score" or len(set(self.objectives)) != len(self.objectives):
            raise ValueError("objectives must start with score and name each objective once")
        if len(self.objectives) > 1 and self.pruning.pruner != "none":
            raise ValueError("pruning works with a single objective only (Optuna cannot prune multi-objective trials)")
        if self.select and len(self.objectives) == 1:
            raise ValueError("select picks from a Pareto front: add objectives such as prompt_tokens")
        if self.task.unlabeled and not self.teacher and self.distill is None:
            raise ValueError(
                "task.unlabeled inputs are labelled by a teacher or by the winner being distilled: set teacher "
                "(a model or an export) or distill"
            )
        if len(self.objectives) > 1 and "selection" in self.model_fields_set and self.selection.holdout > 0:
            raise ValueError(
                "selection.holdout applies to single-objective studies; a Pareto front's winner is picked by select"
            )
        return self

    base_dir: str | None = Field(
        None,
        description="Directory that relative data paths are looked up in first "
        "(set to the study file's folder when loaded from YAML).",
    )
