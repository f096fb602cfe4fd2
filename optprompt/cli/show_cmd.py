"""``optprompt show``: a study's leaderboard fitted to the terminal, one trial in full, or
JSON for scripts.

The table is as wide as the terminal (``COLUMNS`` when output is not a
terminal; 80 by default): long fields end in an ellipsis. ``--wide`` prints every field in
full, ``--trial N`` one trial's candidate field by field, ``--json`` the rows and the
result as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.cli.fit import fit_widths, format_table, print_wrapped, terminal_width

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["TrialCounts", "fit_widths", "format_table", "show_study", "terminal_width", "trial_counts"]


@dataclass(frozen=True)
class TrialCounts:
    """What the rows of a study's table are, against its budget."""

    counted: int
    budget: int | None
    repeats: int
    combined: int
    void: int
    running: int
    rows: int

    def header(self) -> str:
        """One line saying what counted and what else the table lists."""
        budget = f" against a budget of {self.budget}" if self.budget else ""
        parts = [f"{self.counted} trials counted{budget}"]
        also = []
        if self.repeats:
            also.append(f"{self.repeats} repeats of scored candidates (note 'same as trial N'; not counted)")
        if self.combined:
            also.append(f"{self.combined} ensemble(s) combined from the finalists (role 'combined'; not counted)")
        if self.void:
            also.append(f"{self.void} interrupted trial(s) (re-run on resume; not counted)")
        if self.running:
            also.append(f"{self.running} running")
        if also:
            parts.append("the table also lists " + ", ".join(also))
        return "; ".join(parts)


def trial_counts(trials: list[FrozenTrial], budget: int | None) -> TrialCounts:
    from optprompt.trials import records

    rs = records(trials)
    return TrialCounts(
        counted=sum(r.uses_budget for r in rs),
        budget=budget,
        repeats=sum(r.is_repeat for r in rs),
        combined=sum(r.is_combined for r in rs),
        void=sum(r.is_finished and r.is_void for r in rs),
        running=sum(r.is_running for r in rs),
        rows=len(rs),
    )


def _budget(output: Path, meta: dict[str, Any]) -> int | None:
    from optprompt.results import RESULT_FILE, load_result

    if (output / RESULT_FILE).is_file():
        strategy = load_result(output / RESULT_FILE).strategy
        if strategy is not None and strategy.budget.get("trials"):
            return int(strategy.budget["trials"])
    trials = ((meta.get("spec") or {}).get("strategy") or {}).get("trials")
    return int(trials) if trials else None


def _rows(df: Any) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def show_study(
    output_dir: str | Path, top: int = 10, *, wide: bool = False, trial: int | None = None, as_json: bool = False
) -> None:
    """Print a study's leaderboard (fitted to the terminal) and, when finished, its summary.

    Args:
        top: Rows of the leaderboard.
        wide: Print every field in full instead of cutting long ones with an ellipsis.
        trial: Print only this trial, every field of its candidate in full.
        as_json: Print ``{"header", "counts", "rows", "result"}`` as JSON instead.
    """
    from optprompt._io import read_json
    from optprompt.cli.output import leaderboard, print_result
    from optprompt.errors import OptpromptError
    from optprompt.results import RESULT_FILE, load_result
    from optprompt.study.runner import SPEC_FILE
    from optprompt.study.storage import open_study

    output = Path(output_dir)
    meta = read_json(output / SPEC_FILE, what=f"study directory file {SPEC_FILE}")
    study = open_study(meta["storage"], meta["study_name"], create=False)
    trials = study.get_trials(deepcopy=False)
    info = trial_counts(trials, _budget(output, meta))
    result = load_result(output / RESULT_FILE) if (output / RESULT_FILE).is_file() else None
    if trial is not None:
        _show_trial(trials, trial, output, as_json)
        return
    rows = _rows(leaderboard(output, top))
    if as_json:
        print(
            json.dumps(
                {
                    "header": info.header(),
                    "counts": info.__dict__,
                    "rows": rows,
                    "result": result.model_dump(mode="json") if result is not None else None,
                },
                indent=2,
                default=str,
            )
        )
        return
    width = None if wide else terminal_width()
    print_wrapped(f"study {meta['study_name']!r}: {info.header()}", width)
    if rows:
        lines, hidden = format_table(rows, width)
        shown = f"the best {len(rows)} by dev score" if len(rows) < info.rows else "all trials, best dev score first"
        cut = f"; columns hidden at this width: {', '.join(hidden)}" if hidden else ""
        print_wrapped(f"{shown}{cut}; --wide for full fields, --trial N for one trial", width)
        print("\n".join(lines))
        reasons = [r for r in rows if r.get("note") and not str(r["note"]).startswith("same as trial")]
        if reasons and not wide:  # why trials failed or were pruned: in full, below the table
            print("notes:")
            for r in reasons:
                print_wrapped(f"  trial {r['trial']}: {r['note']}", width)
    else:
        print("(no trials yet)")
    if result is not None:
        print_result(result, wide=wide)
    elif not rows:
        raise OptpromptError(f"{output}: the study has no trials yet")
    else:
        print(f"\n(no {RESULT_FILE} yet: the study has not finished; run it again to resume)")


def _show_trial(trials: list[FrozenTrial], number: int, output: Path, as_json: bool) -> None:
    from optprompt.cli.output import _kinds
    from optprompt.errors import OptpromptError
    from optprompt.trials import TrialRecord

    found = next((t for t in trials if t.number == number), None)
    if found is None:
        raise OptpromptError(f"{output}: the study has no trial {number} (trials 0 to {len(trials) - 1})")
    record = TrialRecord.from_frozen(found)
    cand = record.candidate or {}
    data = {
        "trial": found.number,
        "state": found.state.name.lower(),
        "values": found.values,
        "role": record.role.value if record.role else "",
        "hash": record.hash,
        "same_as_trial": record.cached_from,
        "dev_metrics": record.metrics,
        "note": getattr(record.failure, "text", ""),
        "params": found.params,
        "candidate": cand,
    }
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    print(f"trial {found.number}: {data['state']}" + (f", dev {found.values[0]:.4f}" if found.values else ""))
    for key in ("role", "hash", "same_as_trial", "note"):
        if data[key] not in (None, ""):
            print(f"  {key}: {data[key]}")
    if data["dev_metrics"]:
        print("  dev metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in data["dev_metrics"].items()))
    if cand:
        kind = _kinds().of_dict(cand)
        print(f"candidate ({kind.label}):")
        for key, value in cand.items():
            text = value if isinstance(value, str) and value.strip() else json.dumps(value, default=str)
            lines = str(text).splitlines() or [""]
            print(f"  {key}: {lines[0]}")
            for line in lines[1:]:
                print(f"  {'':<{len(key)}}  {line}")
        for what, text in kind.details(cand):
            print(f"  {what}: {text}")
    if found.params:
        print("sampled parameters: " + ", ".join(f"{k}={v!r}" for k, v in found.params.items()))
