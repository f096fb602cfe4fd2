"""One wording per failure reason: result.json, `optprompt show` and the HTML report agree."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from optprompt.cli.main import main
from optprompt.trials import FailureKind, failure_reason
from optprompt.trials import keys as attrs

WORKER_DIED = FailureKind.WORKER_DIED.value


def _trial(state: TrialState, reason: str | None = None):  # type: ignore[no-untyped-def]
    user_attrs = {} if reason is None else {attrs.FAIL_REASON: reason}
    return create_trial(state=state, user_attrs=user_attrs, value=1.0 if state == TrialState.COMPLETE else None)


@pytest.mark.parametrize(
    ("state", "stored", "kind", "text"),
    [
        (TrialState.FAIL, None, WORKER_DIED, "worker died: its process stopped before recording a result"),
        (TrialState.FAIL, "RuntimeError: boom: again", "RuntimeError", "RuntimeError: boom: again"),
        (TrialState.FAIL, "TrialTimeout: trial exceeded trial_timeout of 5 s", "TrialTimeout", "TrialTimeout: trial"),
        (TrialState.FAIL, "interrupted by the user", "interrupted", "interrupted by the user"),
        (TrialState.PRUNED, "pruned: pruned after 3 of 12 dev examples", "pruned", "pruned: pruned after 3"),
        (TrialState.PRUNED, "rejected: two labels share the word 'a'", "rejected", "rejected: two labels"),
        (TrialState.PRUNED, None, "pruned", "pruned"),
    ],
)
def test_each_stored_reason_has_one_kind_and_text(state, stored, kind, text) -> None:  # type: ignore[no-untyped-def]
    reason = failure_reason(_trial(state, stored))
    assert reason is not None and reason.label == kind and reason.text.startswith(text)


def test_complete_trials_have_no_reason() -> None:
    assert failure_reason(_trial(TrialState.COMPLETE)) is None


def test_killed_trial_reads_the_same_in_result_show_and_report(study_dict: dict, tmp_path: Path, capsys) -> None:
    from optprompt.config import spec_from_dict
    from optprompt.study.runner import SPEC_FILE, run_study

    spec = spec_from_dict({**study_dict, "strategy": {"name": "template_search", "trials": 3}})
    run_study(spec, progress=False)
    out = Path(study_dict["output"])
    meta = json.loads((out / SPEC_FILE).read_text())
    # What a killed worker leaves behind once the heartbeat check has failed its trial.
    optuna.load_study(study_name=meta["study_name"], storage=meta["storage"]).add_trial(_trial(TrialState.FAIL))
    result = run_study(spec, progress=False).to_dict()  # resume: re-writes result.json with the dead trial counted
    assert result["failure_reasons"] == {WORKER_DIED: 1}
    assert json.loads((out / "result.json").read_text())["failure_reasons"] == {WORKER_DIED: 1}

    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "worker died: its process" in shown and "failed or pruned trials: 1 worker died" in shown
    assert "stale" not in shown

    report = tmp_path / "report.html"
    assert main(["report", str(out), "--to", str(report)]) == 0
    html = report.read_text()
    assert "worker died: its process stopped before recording a result" in html
    assert "no reason recorded" not in html
