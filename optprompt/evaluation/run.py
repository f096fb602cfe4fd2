"""``optprompt.evaluate``: score an export (or a study's winner) on new data, on its own
model or another one, optionally against a second target, with the study's metric, 95%
intervals and paired test."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import ConfigError, OptpromptError
from optprompt.evaluation.report import Comparison, Constrained, EvaluationReport, Scored
from optprompt.kinds.registry import candidate_kinds

if TYPE_CHECKING:
    from optprompt.config.served import ServedModelSpec
    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks import Task


__all__ = ["evaluate", "BASELINE"]

#: ``against=BASELINE`` compares a study's winner with that study's baseline prompt.
BASELINE = "baseline"
#: Column options (as in a study's ``task:`` block) that ``columns=`` may set.
COLUMN_KEYS = ("input", "label", "options", "id", "format", "label_separator")


@dataclass
class _Target:
    """Something to score: the export to load, what it is and the columns of its study."""

    given: str
    export: Path
    what: str
    card: PromptCard
    columns: dict[str, Any]


def _find_card(path: Path) -> PromptCard:
    from optprompt.kinds.prompt.card import CARD_FILE, load_card

    if path.is_file():
        return load_card(path)
    if (path / CARD_FILE).is_file():
        return load_card(path / CARD_FILE)
    members = sorted(path.glob(f"*/{CARD_FILE}"))  # an ensemble: its members' cards
    if members:
        return load_card(members[0])
    raise OptpromptError(f"{path}: no {CARD_FILE} here or in a member directory; is it an optprompt export?")


def _is_study(path: Path) -> bool:
    from optprompt.study.runner import SPEC_FILE

    return path.is_dir() and (path / SPEC_FILE).is_file()


def _study_columns(path: Path) -> dict[str, Any]:
    from optprompt._io import read_json
    from optprompt.study.runner import SPEC_FILE

    task = (read_json(path / SPEC_FILE, what=f"study directory file {SPEC_FILE}").get("spec") or {}).get("task") or {}
    # not the id column: new data need not have one (rows are then numbered)
    return {k: task[k] for k in COLUMN_KEYS if k != "id" and task.get(k) is not None}


def _merged_columns(study: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The study's columns overridden by the given ones. The study's label separator goes
    with its label column: a label column given without a separator has none."""
    if "label" in given and "label_separator" not in given:
        study = {k: v for k, v in study.items() if k != "label_separator"}
    return {**study, **given}


def _card_columns(card: PromptCard, source: Path) -> dict[str, Any]:
    """The column mapping an export carries from its study (``task.columns`` of its card):
    the defaults for new data, as a study directory's are. Cards written before exports
    carried it have none (the columns are then ``input`` and ``label`` unless given)."""
    from optprompt.tasks.build import EXPORTED_COLUMNS

    columns = (card.task or {}).get("columns")
    if columns is None:
        return {}
    if not isinstance(columns, dict) or not all(
        k in EXPORTED_COLUMNS and isinstance(v, str) and v for k, v in columns.items()
    ):
        raise OptpromptError(
            f"{source}: the card's task.columns must map {', '.join(EXPORTED_COLUMNS)} to column names, got {columns!r}"
        )
    return dict(columns)


def _resolve(given: str | os.PathLike[str], scratch: Path, plugins: Plugins, *, baseline_of: Path | None) -> _Target:
    """An export directory (or card file), or a study directory's winner; with
    ``baseline_of``, that study's baseline."""
    from optprompt.export import export_card
    from optprompt.results import RESULT_FILE, load_result

    if baseline_of is not None:
        result = load_result(baseline_of / RESULT_FILE)
        to = scratch / "baseline"
        candidate_kinds(plugins).of_dict(result.baseline.candidate).export(result, baseline_of, to, result.baseline)
        return _Target(
            f"{baseline_of} (baseline)",
            to,
            f"the baseline of study {result.name!r} (trial {result.baseline.trial})",
            _find_card(to),
            _study_columns(baseline_of),
        )
    path = Path(given)
    if not path.exists():
        raise OptpromptError(f"{path}: not found (give an export directory, a prompt card or a study directory)")
    if _is_study(path):
        if not (path / RESULT_FILE).is_file():
            raise OptpromptError(f"{path}: the study has not finished (no {RESULT_FILE}); resume it first")
        result = load_result(path / RESULT_FILE)
        to = scratch / f"winner-{len(list(scratch.iterdir()))}"
        export_card(path, to, plugins=plugins)
        what = f"the winner of study {result.name!r} (trial {result.best.trial})"
        return _Target(str(path), to, what, _find_card(to), _study_columns(path))
    card = _find_card(path)
    return _Target(str(path), path, f"export {path.name}", card, _card_columns(card, path))


def _task(data: str | os.PathLike[str], card: PromptCard, columns: dict[str, Any], plugins: Plugins) -> Task:
    """The data as a task with one split (test), read like a study reads its data."""
    from optprompt.config.spec import TaskSpec
    from optprompt.tasks.build import build_task

    task = dict(card.task or {})
    labels = list(task.get("labels") or []) or None
    spec = TaskSpec.model_validate(
        {
            "data": {"test": str(data)},
            "type": card.task_type,
            "labels": labels,
            "verbalizer": dict(card.verbalizer) if labels else None,
            "metric": task.get("metric"),
            **columns,
        }
    )
    return build_task(spec, plugins=plugins, name=str(task.get("name") or "evaluation"), required=("test",))


def _model_for(ref: Any, loaded: dict[Any, LoadedModel], plugins: Plugins, device: str) -> LoadedModel:
    from optprompt.models.loading import load_model

    if ref not in loaded:
        loaded[ref] = load_model(ref, plugins, device=device, progress=False)
    return loaded[ref]


def _score(
    target: _Target, task: Task, model: LoadedModel, plugins: Plugins, *, constrained: bool, plain: bool = False
) -> tuple[Evaluation, str, Constrained | None]:
    """The target's predictions on the task's test split, measured as the study measures;
    with ``constrained``, also its answers under greedy generation constrained to its
    answer set (prompt cards on causal models, tasks with answers to choose from)."""
    from optprompt.kinds.ensemble import EnsembleCandidate
    from optprompt.kinds.loading import export_kind, load
    from optprompt.kinds.prompt.constrained import constrained_predict, supports_constrained
    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.scoring.evaluate import Evaluator
    from optprompt.stats import compare_evaluations

    kind = export_kind(target.export, plugins)
    if plain and kind not in (PromptCandidate.kind, EnsembleCandidate.kind):
        raise OptpromptError(f"{target.given}: --plain scores prompt cards and ensembles; this export is {kind!r}")
    predictor = load(target.export, model, plugins=plugins, **({"plain": True} if plain else {}))
    examples = task.test
    texts = [ex.input for ex in examples]
    options = [list(ex.options) for ex in examples] if any(ex.options for ex in examples) else None
    answers = predictor.predict(texts, options)
    evaluator = Evaluator(task, None, None, plugins.metrics)  # type: ignore[arg-type]  # measures only
    ranked = evaluator.evaluate_answers(examples, answers, "test", name=target.given)
    extra = None
    if constrained and supports_constrained(predictor) and task.closed_answers:
        generated = constrained_predict(predictor, texts, options)
        ev = evaluator.evaluate_answers(examples, generated, "test", name=f"{target.given} (constrained)")
        extra = Constrained(
            value=ev.value,
            interval=compare_evaluations(ev, ev).winner,
            metrics=dict(ev.metrics),
            agreement=sum(a == b for a, b in zip(answers, generated, strict=True)) / max(1, len(examples)),
        )
    return ranked, kind, extra


def _scored(
    target: _Target, kind: str, model: str, ev: Evaluation, constrained: Constrained | None, *, plain: bool = False
) -> Scored:
    from optprompt.stats import compare_evaluations

    alone = compare_evaluations(ev, ev)  # the paired test's marginal interval of one evaluation
    return Scored(
        target=target.given,
        what=target.what + (" as a plain prompt (no chat template)" if plain else ""),
        kind=kind,
        model=model,
        value=ev.value,
        interval=alone.winner,
        metrics=dict(ev.metrics),
        format_failures=ev.format_failures,
        constrained=constrained,
    )


def evaluate(
    target: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    model: str | ServedModelSpec | dict[str, Any] | None = None,
    against: str | os.PathLike[str] | None = None,
    columns: dict[str, Any] | None = None,
    constrained: bool = False,
    plain: bool = False,
    device: str = "auto",
    output: str | os.PathLike[str] | None = None,
    plugins: Plugins | None = None,
) -> EvaluationReport:
    """Score ``target`` on the labelled ``data`` with its study's metric and a 95% interval.

    Args:
        target: An export (``optprompt export`` output: a prompt card, an adapter, an
            ensemble) or a study directory (its winner).
        data: A labelled data file, read with the study's loaders (JSONL, CSV, Parquet...).
        model: Score on this model instead of the one the export names (a registered name,
            a local model directory, a ``.gguf`` file, or a served model: an http(s) URL or
            a :class:`~optprompt.config.ServedModelSpec` / mapping); ``against`` is scored on it too.
        against: A second target scored on the same examples, with a paired test of
            ``target`` against it; ``"baseline"`` is the baseline of the study ``target``.
        columns: Column options as in a study's ``task:`` block (``input``, ``label``,
            ``options``, ``id``, ``format``, ``label_separator``); they override the
            target's study's own, which are the default: a study directory's ``task:``
            block, or the columns an export carries (``task.columns`` of its card).
        constrained: Also measure each target answering by greedy generation constrained
            to its answer set, as a serving stack with guided decoding does (prompt cards on
            causal models; classification, multiple choice and multi-label).
        plain: Score prompt cards scored with a chat template as plain prompts (their text
            without the template), for a ``model`` that has none; their ``what`` says so.
        device: Where the model runs (``auto``, ``cpu``, ``cuda``...).
        output: Write ``evaluation.json`` there (a file, or a directory to hold it).
        plugins: Loaded plugins; discovered when None.

    Returns:
        The :class:`EvaluationReport` also written to ``output``.
    """
    from optprompt._version import __version__
    from optprompt.models.served import is_served_ref, served_spec
    from optprompt.plugins.manager import load_plugins
    from optprompt.stats import compare_evaluations

    started = time.perf_counter()
    plugins = plugins or load_plugins()
    if is_served_ref(model):
        model = served_spec(model)  # one hashable reference; its key stays in the environment
    unknown = set(columns or {}) - set(COLUMN_KEYS)
    if unknown:
        raise ConfigError(f"columns: unknown key(s) {sorted(unknown)}; known: {', '.join(COLUMN_KEYS)}")
    if not Path(data).is_file():
        raise OptpromptError(f"{data}: no such data file")
    with tempfile.TemporaryDirectory(prefix="optprompt-evaluate-") as tmp:
        scratch = Path(tmp)
        first = _resolve(target, scratch, plugins, baseline_of=None)
        second = None
        if against is not None:
            if str(against) == BASELINE:
                if not _is_study(Path(target)):
                    raise OptpromptError(
                        f"--against baseline compares a study's winner with its baseline; {target} is not a study "
                        "directory (give the baseline's export instead)"
                    )
                second = _resolve(target, scratch, plugins, baseline_of=Path(target))
            else:
                second = _resolve(against, scratch, plugins, baseline_of=None)
        task = _task(data, first.card, _merged_columns(first.columns, columns or {}), plugins)
        loaded: dict[Any, LoadedModel] = {}
        scored, evaluations = [], []
        for t in [first, second] if second is not None else [first]:
            ref = model or str(t.card.model.get("ref") or "")  # type: ignore[assignment]
            if not ref:
                raise OptpromptError(f"{t.given}: the export names no model; give --model")
            ev, kind, extra = _score(
                t, task, _model_for(ref, loaded, plugins, device), plugins, constrained=constrained, plain=plain
            )
            evaluations.append(ev)
            scored.append(_scored(t, kind, str(ref), ev, extra, plain=plain))
    comparison = None
    if len(evaluations) == 2:
        c = compare_evaluations(evaluations[1], evaluations[0])  # target as the "winner" side
        comparison = Comparison(difference=c.difference, p_value=c.p_value, test=c.test, n=c.n)
    report = EvaluationReport(
        optprompt_version=__version__,
        data=str(data),
        n=len(task.test),
        task_type=str(task.type),
        metric=task.metric,
        target=scored[0],
        against=scored[1] if len(scored) == 2 else None,
        comparison=comparison,
        seconds=round(time.perf_counter() - started, 3),
    )
    if output is not None:
        report.save(output)
    return report
