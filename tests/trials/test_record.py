"""The typed trial record: every stored attribute read in one place, and the budget rules."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from optprompt.trials import FailureKind, Role, TrialRecord, encode, is_void, records, uses_budget

ROOT = Path(__file__).resolve().parents[2]


def _trial(state: TrialState = TrialState.COMPLETE, value: float | None = 0.5, **fields):  # type: ignore[no-untyped-def]
    return create_trial(state=state, value=value if state == TrialState.COMPLETE else None, user_attrs=encode(**fields))


@pytest.mark.parametrize(
    ("state", "fields", "void", "budgeted"),
    [
        (TrialState.COMPLETE, {}, False, True),
        (TrialState.COMPLETE, {"cached_from": 3}, False, False),  # a repeat costs nothing
        (TrialState.COMPLETE, {"role": Role.COMBINED}, False, False),  # built at the end
        (TrialState.PRUNED, {"fail_reason": "pruned: after 4 of 12"}, False, True),
        (TrialState.PRUNED, {"fail_reason": "rejected: two labels share a word"}, False, False),
        (TrialState.FAIL, {"fail_reason": "RuntimeError: boom"}, False, True),
        (TrialState.FAIL, {"fail_reason": "TrialTimeout: over 5 s"}, False, True),
        (TrialState.FAIL, {}, True, False),  # its worker died
        (TrialState.FAIL, {"fail_reason": "interrupted by the user"}, True, False),
        (TrialState.FAIL, {"fail_reason": "connection lost: dropped while reserving"}, True, False),
        (TrialState.FAIL, {"fail_reason": "pruned: after 4 of 12"}, True, False),  # died while recording it
    ],
)
def test_budget_rules(state, fields, void, budgeted) -> None:  # type: ignore[no-untyped-def]
    t = _trial(state, **fields)
    record = TrialRecord.from_frozen(t)
    assert (record.is_void, record.uses_budget) == (void, budgeted)
    assert (is_void(t), uses_budget(t)) == (void, budgeted)


def test_every_field_round_trips_through_the_storage() -> None:
    study = optuna.create_study()
    fields = {
        "role": Role.BASELINE,
        "candidate": {"instruction": "Classify."},
        "hash": "abc",
        "metrics": {"accuracy": 0.75},
        "offsets": [0.1, -0.1],
        "format_failures": 2,
        "position": 4,
        "dev_scored": 12,
        "artifact": "artifacts/adapters/abc",
        "family": "template_search",
        "trained_examples": 40,
    }
    study.add_trial(create_trial(value=0.75, user_attrs={**encode(**fields), "plugin.own": 7}))
    (record,) = records(study)
    assert record.is_baseline and record.value == 0.75 and record.seconds is not None
    for name, value in fields.items():
        assert getattr(record, name) == value, name
    assert record.attr("plugin.own") == 7 and record.attr("plugin.missing", "x") == "x"


def test_failure_kinds() -> None:
    assert TrialRecord.from_frozen(_trial(TrialState.FAIL)).failure.kind is FailureKind.WORKER_DIED
    err = TrialRecord.from_frozen(_trial(TrialState.FAIL, fail_reason="ValueError: bad: value")).failure
    assert (err.kind, err.label, err.text) == (FailureKind.ERROR, "ValueError", "ValueError: bad: value")
    assert TrialRecord.from_frozen(_trial()).failure is None
    assert {k for k in FailureKind if k.void} == {
        FailureKind.INTERRUPTED,
        FailureKind.CONNECTION_LOST,
        FailureKind.WORKER_DIED,
        FailureKind.SERVER_LOST,
    }
    lost = TrialRecord.from_frozen(_trial(TrialState.FAIL, fail_reason="server lost: model server x did not answer"))
    assert lost.failure.kind is FailureKind.SERVER_LOST and lost.is_void


def test_unknown_field_is_an_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'score' is not a stored field"):
        encode(score=1.0)


def test_no_trial_attributes_are_read_outside_the_record() -> None:
    """Plugins and the core read stored trials only through TrialRecord (optprompt/trials/)."""
    bad = []
    for base in ("optprompt", "plugins"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if path.is_relative_to(ROOT / "optprompt" / "trials"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr == "user_attrs":
                    owner = node.value
                    # Study-level attributes (the spec key) are not trial attributes.
                    if isinstance(owner, ast.Name) and owner.id == "study":
                        continue
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "user_attrs read outside optprompt/trials: " + ", ".join(bad)
