"""Log a finished study to MLflow: one run per study, a child run per trial.

The parent run holds the study's settings as params (model, task, strategy options), the
final comparison as metrics (baseline and winner on test with their intervals, the
difference, the p-value, constrained generation) and, as artifacts, the winner's export
and the HTML report. Each trial is a child run (tag ``mlflow.parentRunId``) with its
sampled parameters and candidate fields as params, its dev metrics, its state and its
failure reason. Everything goes through an explicit ``MlflowClient`` (no global MLflow
state). Logging the same study again creates a new parent run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from optprompt.errors import ConfigError

__all__ = ["check_available", "log_study"]

_PARAM_MAX = 500  # MLflow's limit on a param value is larger (6000); keep them readable


def check_available() -> None:
    """Raise :class:`ConfigError` (naming the extra) when MLflow is not installed."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError("tracking.mlflow needs MLflow: pip install 'optprompt[mlflow]' (or remove tracking.mlflow)")


def _client(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(
            "tracking.mlflow needs MLflow: pip install 'optprompt[mlflow]' (or remove tracking.mlflow)"
        ) from None
    return MlflowClient(tracking_uri=uri)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _PARAM_MAX else text[: _PARAM_MAX - 1] + "…"


def _key(name: str) -> str:
    """``name`` as an MLflow key (alphanumerics, ``_ - . / :`` and spaces; others become ``_``)."""
    return re.sub(r"[^\w\-. /:]", "_", name)


def _flat(prefix: str, data: dict[str, Any]) -> dict[str, str]:
    return {_key(f"{prefix}{k}"): _param(v) for k, v in data.items()}


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _metrics(prefix: str, data: dict[str, Any]) -> dict[str, float]:
    return {
        _key(f"{prefix}{k}"): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def log_study(
    output_dir: str | os.PathLike[str], uri: str, *, experiment: str | None = None, report: bool = True
) -> str:
    """Log the finished study in ``output_dir`` to the MLflow tracking server ``uri``.

    Returns the parent run's id.

    Raises:
        ConfigError: MLflow is not installed.
        OptpromptError: ``output_dir`` holds no finished study.
    """
    from mlflow.entities import Metric, Param, RunTag

    from optprompt.export import export_card
    from optprompt.report.source import load_source
    from optprompt.trials import TrialRecord

    client = _client(uri)
    source = load_source(output_dir)
    result = source.result
    if result is None:
        from optprompt.errors import OptpromptError

        raise OptpromptError(f"{output_dir}: the study has not finished (no result.json); nothing to log yet")
    exp_id = _experiment(client, experiment or result.name)
    now = int(time.time() * 1000)
    parent = client.create_run(exp_id, run_name=result.name, tags={"optprompt.study": result.name})
    parent_id = parent.info.run_id
    strategy = result.strategy
    params = {
        "model": result.model.ref,
        "model_fingerprint": result.model.fingerprint,
        "task_source": result.task.source,
        "task_type": result.task.type,
        "metric": result.metric,
        "seed": result.seed,
        "strategy": strategy.name if strategy else None,
        **(_flat("strategy.", dict(strategy.options)) if strategy else {}),
    }
    metrics = {
        "test_baseline": result.baseline.test.value if result.baseline.test else None,
        "test_winner": result.best.test.value if result.best.test else None,
        "dev_baseline": result.baseline.dev.value,
        "dev_winner": result.best.dev.value,
        "winner_trial": result.best.trial,
        "n_trials": result.n_trials,
        "n_scored": result.n_scored,
        "wall_seconds": result.wall_seconds,
    }
    cmp_ = result.comparison
    if cmp_ is not None:
        metrics |= {
            "p_value": cmp_.p_value,
            "difference": cmp_.difference.estimate,
            "difference_low": cmp_.difference.low,
            "difference_high": cmp_.difference.high,
            "test_winner_low": cmp_.winner.low,
            "test_winner_high": cmp_.winner.high,
        }
    served = result.constrained_generation
    if served:
        metrics |= {"test_winner_constrained_generation": served["value"], "constrained_agreement": served["agreement"]}
    client.log_batch(
        parent_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
        params=[Param(k, _param(v)) for k, v in params.items() if v is not None],
        tags=[RunTag("optprompt.warnings", _param(result.warnings))] if result.warnings else [],
    )
    for t in source.study.get_trials(deepcopy=False):
        if not t.state.is_finished():
            continue
        record = TrialRecord.from_frozen(t)
        reason = getattr(record.failure, "text", "")
        tags = {"mlflow.parentRunId": parent_id, "optprompt.state": t.state.name.lower()}
        if reason:
            tags["optprompt.failure_reason"] = reason[:5000]
        if record.is_repeat:
            tags["optprompt.repeat_of"] = str(record.cached_from)
        child = client.create_run(exp_id, run_name=f"trial {t.number}", tags=tags)
        candidate = record.candidate or {}
        child_params = {**_flat("param.", t.params), **_flat("candidate.", candidate)}
        child_metrics = _metrics("dev_", record.metrics)
        if t.values:
            child_metrics["dev_value"] = float(t.values[0])
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in child_metrics.items()],
            params=[Param(k, v) for k, v in child_params.items()],
        )
        client.set_terminated(child.info.run_id, "FINISHED" if t.state.name == "COMPLETE" else "FAILED")
    with tempfile.TemporaryDirectory(prefix="optprompt-mlflow-") as tmp:
        export = Path(tmp) / "winner"
        export_card(output_dir, export)
        client.log_artifacts(parent_id, str(export), "winner")
        client.log_artifact(parent_id, str(Path(output_dir) / "result.json"))
        if report:
            from optprompt.report import write_report

            path = write_report(output_dir, to=Path(tmp) / "report" / "report.html")
            client.log_artifacts(parent_id, str(path.parent), "report")  # the page and its plot files
    client.set_terminated(parent_id, "FINISHED")
    return parent_id
