"""The evaluation suite: does the exported winner beat the baseline prompt on test?

Five tasks written for this project (``suite_data.py``: intent, topic, emotion, spam,
category multiple choice), SmolLM2-135M-Instruct on the CPU, given splits (train 60, dev
60 or 200, test 120 by default), several seeds (each seed draws its own rows and seeds the
study). Per task, dev size and seed, the arms run the same search budget and differ in how
the winner is picked:

- ``dev``: the best on dev (``selection.holdout: 0``, no do no harm, no ensemble).
- ``holdout``: the rule before fresh evidence: search on 70% of dev, finalists and their
  ensemble re-scored on the held-out 30% alone, do no harm with the picked finalist's own
  one-sided test (``selection: {train: 0, adjust: false}``).
- ``fresh``: the default: finalists re-scored on the held-out 30% plus the train rows that
  did not choose them, do no harm paying for the pick (max-T permutation).
- ``random``: random search with the default selection (not run unless asked for).

The arms of one task, size and seed share a score cache, so the ``holdout`` and ``fresh``
arms (the same search) score each candidate once. Prints a table per dev size and writes
``benchmarks/results/selection_suite.json``: per run the baseline's and the winner's test
score, the gain, the paired p-value on test, whether do no harm kept the baseline, wall
time; per dev size and arm the mean test gain, how often the winner is significantly better
or worse than the baseline on test (p < 0.05), and how often the baseline was kept.

    .venv/bin/python benchmarks/selection_suite.py                       # everything
    .venv/bin/python benchmarks/selection_suite.py --tasks spam --dev-sizes 60 --seeds 0 --trials 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine_data import write_jsonl  # noqa: E402
from suite_data import TASKS, rows  # noqa: E402

ARMS = {
    "dev": ({}, {"holdout": 0, "do_no_harm": False, "ensemble": 0}),
    "holdout": ({}, {"train": 0, "adjust": False}),
    "fresh": ({}, {}),
    "random": ({"sampler": "random"}, {}),
}


def _study(run: str, arm: str, where: Path, data: dict, task: str, trials: int, model: str, seed: int) -> Path:
    strategy_extra, selection = ARMS[arm]
    spec = {
        "name": f"suite-{run}-{arm}",
        "model": model,
        "seed": seed,
        "output": str(where / arm),
        "task": {"data": data, "id": "id", **TASKS[task][1]},
        "strategy": {"name": "template_search", "trials": trials, "max_demos": 3, **strategy_extra},
        "scoring": {"cache_path": str(where / "scores.sqlite")},
        **({"selection": selection} if selection else {}),
    }
    path = where / f"{arm}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--arms", nargs="+", default=["dev", "holdout", "fresh"], choices=list(ARMS))
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--train", type=int, default=60)
    p.add_argument("--test", type=int, default=120)
    p.add_argument("--dev-sizes", type=int, nargs="+", default=[60, 200])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument(
        "--work", type=Path, help="keep the studies here (default: a temporary directory); a rerun reuses finished arms"
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "selection_suite.json")
    args = p.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="selection-suite-"))
    exe = Path(sys.executable).with_name("optprompt")
    runs: list[dict] = []
    started = time.time()
    for n_dev in args.dev_sizes:
        for seed in args.seeds:
            for task in args.tasks:
                run = f"{task}-dev{n_dev}-s{seed}"
                where = work / run
                data_rows = rows(task, args.train + n_dev + args.test, seed=11 + 1000 * seed + n_dev)
                data = {
                    "train": str(write_jsonl(data_rows[: args.train], where / "train.jsonl")),
                    "dev": str(write_jsonl(data_rows[args.train : args.train + n_dev], where / "dev.jsonl")),
                    "test": str(write_jsonl(data_rows[args.train + n_dev :], where / "test.jsonl")),
                }
                for arm in args.arms:
                    path = _study(run, arm, where, data, task, args.trials, args.model, seed)
                    out = run_study_cli(exe, path, where / arm / "result.json", where / f"{arm}.wall.json")
                    out.update(task=task, dev=n_dev, seed=seed, arm=arm)
                    runs.append(out)
                    print(f"{run:>22} {arm:>8}: " + json.dumps(out)[:240], flush=True)
    summary = _summary(runs, args.dev_sizes, args.arms)
    payload = {
        "model": args.model,
        "trials": args.trials,
        "sizes": {"train": args.train, "dev": args.dev_sizes, "test": args.test},
        "seeds": args.seeds,
        "tasks": args.tasks,
        "wall_seconds": round(time.time() - started, 1),
        "load": _load(),
        "runs": runs,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    for n_dev in args.dev_sizes:
        print(f"\ndev {n_dev}: mean test gain over {len(args.tasks)} tasks x {len(args.seeds)} seeds")
        print("| arm | mean gain | runs | winner significantly better / worse (test p < 0.05) | baseline kept |")
        print("|---|---|---|---|---|")
        for arm in args.arms:
            d = summary[str(n_dev)].get(arm)
            if d:
                print(
                    f"| {arm} | {d['mean_gain']:+.3f} | {d['runs']} | {d['significantly_better']} / "
                    f"{d['significantly_worse']} | {d['kept_baseline']} |"
                )
    print(f"\nwrote {args.out}")
    return 0


def run_study_cli(exe: Path, path: Path, result: Path, timing: Path) -> dict:
    """One study (reused when an earlier run with the same --work finished it)."""
    if result.exists() and timing.exists():
        out = json.loads(timing.read_text())
    else:
        t = time.perf_counter()
        proc = subprocess.run([str(exe), "run", str(path), "-q"], capture_output=True, text=True)
        out = {"wall_seconds": round(time.perf_counter() - t, 1), "returncode": proc.returncode}
        if proc.returncode == 0:
            timing.write_text(json.dumps(out))
        else:
            out["error"] = proc.stderr[-2000:]
    if "error" not in out and result.exists():
        r = json.loads(result.read_text())
        base, best = r["baseline"]["test"]["value"], r["best"]["test"]["value"]
        out.update(
            baseline_test=base,
            winner_test=best,
            gain=round(best - base, 4),
            p_value=r["comparison"].get("p_value"),
            winner_trial=r["best"]["trial"],
            winner_dev=r["best"]["dev"]["value"],
            kept_baseline=(r.get("selection") or {}).get("kept_baseline"),
            selection_evidence=(r.get("selection") or {}).get("evidence"),
            n_trials=r["n_trials"],
        )
    return out


def _summary(runs: list[dict], sizes: list[int], arms: list[str]) -> dict:
    summary: dict[str, dict] = {}
    for n_dev in sizes:
        summary[str(n_dev)] = {}
        for arm in arms:
            done = [r for r in runs if r["dev"] == n_dev and r["arm"] == arm and "gain" in r]
            if not done:
                continue
            summary[str(n_dev)][arm] = {
                "runs": len(done),
                "mean_gain": round(sum(d["gain"] for d in done) / len(done), 4),
                "significantly_better": sum(d["gain"] > 0 and (d["p_value"] or 1) < 0.05 for d in done),
                "significantly_worse": sum(d["gain"] < 0 and (d["p_value"] or 1) < 0.05 for d in done),
                "kept_baseline": sum(bool(d.get("kept_baseline")) for d in done),
                "wall_seconds": round(sum(d["wall_seconds"] for d in done), 1),
            }
    return summary


def _load() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs at the end"


if __name__ == "__main__":
    raise SystemExit(main())
