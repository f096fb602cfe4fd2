"""``optprompt export --trial N``: any scored candidate of a finished study, in its kind's
format (a prompt card with the trial's dev scores; test scores are the winner's alone)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import OptpromptError
from optprompt.kinds.registry import candidate_kinds

if TYPE_CHECKING:
    from optprompt.kinds.base import KindContext
    from optprompt.plugins.manager import Plugins
    from optprompt.results import ResultEntry, StudyResult

__all__ = ["export_trial", "trial_entry"]


def _kind_context(output: Path, plugins: Plugins | None) -> tuple[Any, KindContext]:
    """The study's task and the context its kinds describe candidates with (the model is
    loaded, as the study loaded it: prompts render with its chat template)."""
    from optprompt.study.runner import StudyRunner, read_spec

    spec = read_spec(output)
    runner = StudyRunner(spec, plugins=plugins, progress=False)
    runner.setup()  # the session the study built: task, model, renderer (no trial runs)
    return runner.task, runner.kind_context


def trial_entry(result: StudyResult, output: Path, trial: int, plugins: Plugins | None = None) -> ResultEntry:
    """Trial ``trial`` of the study in ``output`` as result.json would show it (dev figures)."""
    from optuna.trial import TrialState

    from optprompt._io import read_json
    from optprompt.results import ResultEntry
    from optprompt.study.runner import SPEC_FILE
    from optprompt.study.storage import open_study
    from optprompt.trials import TrialRecord

    meta = read_json(output / SPEC_FILE, what=f"study directory file {SPEC_FILE}")
    study = open_study(meta["storage"], meta["study_name"], create=False)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    t = trials.get(trial)
    if t is None:
        raise OptpromptError(f"{output}: the study has no trial {trial} (trials 0 to {max(trials, default=-1)})")
    record = TrialRecord.from_frozen(t)
    if t.state != TrialState.COMPLETE or record.candidate is None:
        raise OptpromptError(
            f"{output}: trial {trial} is {t.state.name.lower()}, not a scored candidate; "
            "`optprompt show` lists the complete ones"
        )
    task, ctx = _kind_context(output, plugins)
    kinds = _kinds(plugins)
    cand = kinds.from_dict(record.candidate)
    return ResultEntry.model_validate(
        {
            "trial": t.number,
            "objectives": dict(zip(result.objectives, t.values, strict=False)),
            **kinds.of(cand).describe(cand, ctx),
            "dev": {
                "value": t.values[0],
                "metric": result.metric,
                "metrics": record.metrics,
                "n": len(task.dev),
            },
            "calibration": {
                "method": str(cand.to_dict().get("calibration", "none")),
                "offsets": record.offsets,
            },
        }
    )


def _kinds(plugins: Plugins | None):  # type: ignore[no-untyped-def]
    from optprompt.plugins.manager import load_plugins

    return candidate_kinds(plugins or load_plugins())


def export_trial(
    output_dir: str | os.PathLike[str], trial: int, to: str | os.PathLike[str], *, plugins: Plugins | None = None
) -> Path:
    """Export the candidate of trial ``trial`` of the finished study in ``output_dir``.

    The winner's trial exports exactly as plain ``optprompt export`` does; another trial
    exports through its kind with its dev scores (only the winner was scored on test).
    A kind that cannot export other trials (soft prompts: their adapters are under
    ``OUTPUT/artifacts``) says so.
    """
    from optprompt.export.winner import export_card
    from optprompt.results import load_result

    output, to = Path(output_dir), Path(to)
    result = load_result(output)
    if trial == result.best.trial:
        return export_card(output, to, plugins=plugins)
    from optprompt.export.serving import write_serving_files_under

    member = trial_entry(result, output, trial, plugins)
    path = _kinds(plugins).of_dict(member.candidate).export(result, output, to, member)
    write_serving_files_under(to)
    return path
