"""A normal study prints no FutureWarning or DeprecationWarning (no deprecated library calls)."""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

from optprompt_testdata import soft_study_dict, write_sentiment_jsonl

from optprompt.config import spec_from_dict
from optprompt.study.runner import run_study

DEPRECATIONS = (FutureWarning, DeprecationWarning, PendingDeprecationWarning)
OPTPROMPT_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def recorded_deprecations() -> Iterator[list[tuple[str, str]]]:
    """Every deprecation warning raised inside, as (message, innermost optprompt frame)."""
    found: list[tuple[str, str]] = []

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        frames = [
            f"{Path(f.filename).relative_to(OPTPROMPT_ROOT)}:{f.lineno}"
            for f in traceback.extract_stack()
            if any(Path(f.filename).is_relative_to(OPTPROMPT_ROOT / d) for d in ("optprompt", "plugins"))
        ]
        found.append((f"{category.__name__}: {message}", frames[-1] if frames else f"{filename}:{lineno}"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for category in DEPRECATIONS:
            warnings.simplefilter("always", category)
        warnings.showwarning = show
        yield found


def _template_study(study_dict: dict) -> dict:
    return {
        **study_dict,
        "strategy": {"name": "template_search", "trials": 4, "max_demos": 2, "demo_pool": 4},
        "pruning": {"pruner": "median", "warmup_trials": 0, "slices": 2},
    }


def test_no_deprecated_call_is_left(study_dict: dict, tmp_path: Path) -> None:
    """Template search (with pruning) and soft prompts (prompt tuning, prefix tuning, LoRA):
    no deprecated transformers / PEFT / Optuna call anywhere in optprompt's own code."""
    data = write_sentiment_jsonl(tmp_path / "soft.jsonl", n=48)
    soft = soft_study_dict(
        data,
        Path(study_dict["model"]),
        tmp_path / "soft-out",
        trials=4,
        methods=["prompt_tuning", "prefix_tuning", "lora"],
        epochs=[1, 1],
        virtual_tokens=[2, 2],
        batch_size=8,
    )
    with recorded_deprecations() as found:
        run_study(spec_from_dict(_template_study(study_dict)), progress=False)
        run_study(spec_from_dict(soft), progress=False)
    assert sorted({(msg[:200], where) for msg, where in found}) == []


def test_a_study_runs_with_deprecation_warnings_as_errors(study_dict: dict) -> None:
    with warnings.catch_warnings():
        for category in DEPRECATIONS:
            warnings.simplefilter("error", category)
        result = run_study(spec_from_dict(_template_study(study_dict)), progress=False).to_dict()
    assert set(result["trial_states"]) <= {"complete", "pruned"}
    assert not any(reason.startswith(("FutureWarning", "DeprecationWarning")) for reason in result["failure_reasons"])
