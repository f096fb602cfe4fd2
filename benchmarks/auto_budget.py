"""`auto` under a 5-minute budget with low-fidelity first rungs against `auto` as it was
(8 minutes, every trial at full fidelity): does the shorter budget keep the quality?

Per task (a shipped study file's data and splits) and seed, two arms run the same `auto`
strategy on the embedded SmolLM2-135M-Instruct:

- ``5min-low``: ``budget: {minutes: 5}``, the default ``low_fidelity`` (first rung of the
  training families on half of train, one epoch);
- ``8min-full``: ``budget: {minutes: 8}``, ``low_fidelity: false`` (auto before low-fidelity
  rungs).

Every run has its own cold score cache. Older rows in the results file, kept as measured:
``8min-full`` and ``5min-low-warm`` ran with the machine's shared cache (a run after another on
the same task reused its scores; ``5min-low-warm`` then ended on the 40-trial cap, its
discrete trials free); ``5min-low-before`` ran before halving kept a training family until one
of its runs was at full fidelity (low-fidelity runs had dropped the soft-prompt family on
intent); ``5min-low-kept`` had that rule but not the pruner that compares a run with runs of
its own fidelity (its full runs were pruned after epoch 1). docs/strategies.md ("auto at 5
minutes against 8") reads them.

Each study picks its winner on dev and fresh evidence alone; test is scored once, after.
Per run the table gives the baseline's and the winner's test score, the one-sided paired
p-value of the winner against the baseline, each family's best on test, trials, and wall
time; the load average is printed with every run (minutes of budget are wall-clock
minutes, so a loaded machine gets fewer trials into them). Raw rows go to
``benchmarks/results/auto_budget.json``.

    .venv/bin/python benchmarks/auto_budget.py                                  # everything
    .venv/bin/python benchmarks/auto_budget.py --tasks emotion --seeds 0 --arms 5min-low
    .venv/bin/python benchmarks/auto_budget.py --table                          # the tables
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STUDIES = ROOT / "studies"
OUT = HERE / "results" / "auto_budget.json"

#: Shipped single-label tasks (study file -> its data and splits are reused as they are).
TASKS = {"emotion": "emotion.yaml", "intent": "intent.yaml", "sentiment": "sentiment.yaml"}
ARMS = {
    "5min-low": {"budget": {"minutes": 5}},
    "8min-full": {"budget": {"minutes": 8}, "low_fidelity": False},
}


def _spec(task: str, arm: str, seed: int, where: Path) -> dict:
    spec = yaml.safe_load((STUDIES / TASKS[task]).read_text())
    data = spec["task"]["data"]
    spec["task"]["data"] = str((STUDIES / data).resolve())
    spec.update(name=f"auto-budget-{task}-{arm}-s{seed}", seed=seed, output=str(where))
    spec["strategy"] = {"name": "auto", **ARMS[arm]}
    return spec


def _row(task: str, arm: str, seed: int, result: dict, wall: float, load: tuple[float, ...]) -> dict:
    from optprompt.results import StudyResult

    r = StudyResult.from_dict(result)
    families = {
        name: {
            "trials": f.trials,
            "test": f.best.test.value if f.best and f.best.test else None,
            "p": f.comparison.p_value if f.comparison else None,
        }
        for name, f in (r.families or {}).items()
    }
    cmp = r.comparison
    retrieval = r.best.candidate.get("retrieval")
    return {
        "task": task,
        "arm": arm,
        "seed": seed,
        "metric": r.metric,
        "baseline_test": r.baseline.test.value if r.baseline.test else None,
        "winner_test": r.best.test.value if r.best.test else None,
        "winner_trial": r.best.trial,
        "winner_kind": r.best.candidate.get("kind"),
        # per-input demonstrations: how the winner compared inputs with its pool (None: fixed ones)
        "winner_similarity": retrieval.get("similarity", "embedding") if retrieval else None,
        "kept_baseline": r.selection.kept_baseline if r.selection else None,
        "difference": cmp.difference.estimate if cmp else None,
        "p_one_sided": _one_sided(cmp),
        "families": families,
        "trials": r.n_trials,
        "wall_s": round(wall, 1),
        "load_before": load,
        "warnings": r.warnings,
    }


def _one_sided(cmp) -> float | None:  # type: ignore[no-untyped-def]
    """The comparison's two-sided p halved in the direction of a gain (1 - p/2 for a loss)."""
    if cmp is None:
        return None
    return cmp.p_value / 2 if cmp.difference.estimate > 0 else 1 - cmp.p_value / 2


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict]) -> str:
    fams = sorted({f for r in rows for f in r["families"]})
    head = ["task", "seed", "arm", "baseline", "winner", "gain", "p (1-sided)", "trials", "wall s", "load"]
    head += [f"best {f}" for f in fams]
    demos = any("winner_similarity" in r for r in rows)  # template search rows: how the winner retrieved
    head += ["winner's demonstrations"] * demos
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        gain = None if r["winner_test"] is None or r["baseline_test"] is None else r["winner_test"] - r["baseline_test"]
        cells = [r["task"], str(r["seed"]), r["arm"], _fmt(r["baseline_test"]), _fmt(r["winner_test"])]
        cells += [
            _fmt(gain),
            _fmt(r["p_one_sided"], 4),
            str(r["trials"]),
            f"{r['wall_s']:.0f}",
            f"{r['load_before'][0]:.1f}",
        ]
        cells += [_fmt(r["families"].get(f, {}).get("test")) for f in fams]
        if demos:
            cells.append(f"knn, {r['winner_similarity']}" if r.get("winner_similarity") else "fixed")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _winner_scores(where: Path) -> dict[str, float]:
    """The winner's per-example test scores of a finished run, by example id."""
    rows = [json.loads(line) for line in (where / "predictions.jsonl").read_text().splitlines() if line]
    return {r["id"]: float(r["score"]) for r in rows if r["role"] == "best" and r["split"] == "test"}


def _trained(row: dict) -> int:
    """Trials of the families that train (soft prompts, LoRA)."""
    return sum(f["trials"] or 0 for name, f in row["families"].items() if name == "soft_prompt")


def arms_table(rows: list[dict], work: Path, reference: str = "8min-full") -> str:
    """Per task and seed, each arm's winner against the ``reference`` arm's on the same test
    examples (paired: McNemar for accuracy, the paired bootstrap otherwise), and per arm the
    mean difference over its pairs with a sign-flip p-value."""
    from optprompt.stats.paired import compare, permutation_test

    by = {(r["task"], r["seed"], r["arm"]): r for r in rows}
    lines = [
        f"| task | seed | arm | {reference} | arm's winner | arm - {reference} (95% CI) | "
        f"p (two-sided, paired on test) | trials ref / arm | trained ref / arm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in sorted({r["arm"] for r in rows} - {reference}):
        diffs = []
        for task, seed in sorted({(r["task"], r["seed"]) for r in rows}):
            ref, other = by.get((task, seed, reference)), by.get((task, seed, arm))
            if not ref or not other or ref["winner_test"] is None or other["winner_test"] is None:
                continue
            d = other["winner_test"] - ref["winner_test"]
            diffs.append(d)
            paths = [work / f"{task}-{name}-s{seed}" / "predictions.jsonl" for name in (reference, arm)]
            if not all(p.exists() for p in paths):  # runs recorded on another machine: no pairs here
                lines.append(
                    f"| {task} | {seed} | {arm} | {ref['winner_test']:.3f} | {other['winner_test']:.3f} | {d:+.3f} | "
                    f"not paired (a run's predictions are not under {work}) | "
                    f"{ref['trials']} / {other['trials']} | {_trained(ref)} / {_trained(other)} |"
                )
                continue
            a, b = (_winner_scores(p.parent) for p in paths)
            ids = sorted(set(a) & set(b))
            c = compare([a[i] for i in ids], [b[i] for i in ids])
            lines.append(
                f"| {task} | {seed} | {arm} | {ref['winner_test']:.3f} | {other['winner_test']:.3f} | {d:+.3f} "
                f"[{c.difference.low:+.3f}, {c.difference.high:+.3f}] | {c.p_value:.3g} ({c.test}) | "
                f"{ref['trials']} / {other['trials']} | {_trained(ref)} / {_trained(other)} |"
            )
        if diffs:
            mean = sum(diffs) / len(diffs)
            p = permutation_test([0.0] * len(diffs), diffs)
            lines.append(
                f"| mean over {len(diffs)} | | {arm} | | | {mean:+.3f} | {p:.3g} (sign flips over pairs) | | |"
            )
    return "\n".join(lines)


def run_arms(
    tasks: list[str],
    arms: list[str],
    seeds: list[int],
    work: Path,
    out: Path,
    spec: Callable[[str, str, int, Path], dict],
    reference: str,
) -> None:
    """Run each task x arm x seed not yet in ``out`` (the arms of one task and seed one after
    another, each with a cold score cache), append its row to ``out`` after every run, and
    print the tables (each arm paired with ``reference``)."""
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r["task"], r["arm"], r["seed"]) for r in rows}
    for seed in seeds:
        for task in tasks:
            for arm in arms:
                if (task, arm, seed) in done:
                    continue
                where = work / f"{task}-{arm}-s{seed}"
                where.mkdir(parents=True, exist_ok=True)
                study = where / "study.yaml"
                study.write_text(yaml.safe_dump(spec(task, arm, seed, where), sort_keys=False))
                load = os.getloadavg()
                start = time.perf_counter()
                cmd = [sys.executable, "-m", "optprompt.cli.main", "run", str(study), "-q"]
                # A cold score cache per run: minutes count trial time, and scores reused from an
                # earlier run (the other arm's discrete candidates) would make trials free.
                env = {**os.environ, "OPTPROMPT_SCORE_CACHE": str(where / "score-cache.sqlite")}
                (where / "score-cache.sqlite").unlink(missing_ok=True)
                subprocess.run(cmd, check=True, cwd=ROOT, env=env)
                wall = time.perf_counter() - start
                result = json.loads((where / "result.json").read_text())
                rows.append(_row(task, arm, seed, result, wall, tuple(round(x, 1) for x in load)))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(rows, indent=1))  # after every run: nothing lost
                print(table(rows[-1:]), flush=True)
    print(table(rows))
    print()
    print(arms_table(rows, work, reference))


def arms_main(
    doc: str, arms: list[str], work: Path, out: Path, spec: Callable[[str, str, int, Path], dict], reference: str
) -> None:
    """The command line of an arms benchmark: run the arms asked for, or (``--table``) print
    the tables of the runs recorded."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--arms", nargs="+", default=arms, choices=arms)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--work", type=Path, default=work)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--table", action="store_true", help="only print the tables of the runs recorded in --out")
    args = ap.parse_args()
    if args.table:
        rows = json.loads(args.out.read_text())
        print(table(rows))
        print()
        print(arms_table(rows, args.work, reference))
        return
    run_arms(args.tasks, args.arms, args.seeds, args.work, args.out, spec, reference)


if __name__ == "__main__":
    arms_main(__doc__, list(ARMS), ROOT / "runs" / "auto-budget", OUT, _spec, "8min-full")
