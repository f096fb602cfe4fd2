"""The evaluation suite: does the exported winner beat the baseline prompt on test?

Five tasks written for this project (``suite_data.py``: intent, topic, emotion, spam,
category multiple choice), each as given splits (train 60, dev 90, test 90 by default),
SmolLM2-135M-Instruct on the CPU. Per task, three arms at the same budget and seed:

- ``today``: template search (TPE), the winner = the best on dev (``selection.holdout: 0``,
  no do-no-harm, no ensemble): how optprompt picked winners before held-out selection.
- ``new``: template search (TPE) with the default selection: search on 70% of dev, the
  finalists and their ensemble re-scored on the held-out 30%, do no harm.
- ``random``: random search (``sampler: random``) with the default selection.

Each arm is one ``optprompt run``; the arms of a task share a score cache (a candidate
scored once is not scored again; the trial budget is the same). Prints a table and writes
``benchmarks/results/selection_suite.json``: per task and arm the baseline's and the
winner's test score, the gain, the paired p-value, whether do-no-harm kept the baseline,
and the wall time.

    .venv/bin/python benchmarks/selection_suite.py                  # all tasks, all arms
    .venv/bin/python benchmarks/selection_suite.py --tasks spam --arms today new --trials 8
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
    "today": ({}, {"holdout": 0, "do_no_harm": False, "ensemble": 0}),
    "new": ({}, {}),
    "random": ({"sampler": "random"}, {}),
}


def _study(task: str, arm: str, work: Path, data: dict, trials: int, model: str) -> Path:
    strategy_extra, selection = ARMS[arm]
    spec = {
        "name": f"suite-{task}-{arm}",
        "model": model,
        "seed": 0,
        "output": str(work / task / arm),
        "task": {"data": data, "id": "id", **TASKS[task][1]},
        "strategy": {"name": "template_search", "trials": trials, "max_demos": 3, **strategy_extra},
        "scoring": {"cache_path": str(work / task / "scores.sqlite")},
        **({"selection": selection} if selection else {}),
    }
    path = work / task / f"{arm}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--sizes", type=int, nargs=3, default=(60, 90, 90), metavar=("TRAIN", "DEV", "TEST"))
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument(
        "--work", type=Path, help="keep the studies here (default: a temporary directory); a rerun reuses finished arms"
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "selection_suite.json")
    args = p.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="selection-suite-"))
    exe = Path(sys.executable).with_name("optprompt")
    n_train, n_dev, n_test = args.sizes
    results: dict[str, dict] = {}
    for task in args.tasks:
        data_rows = rows(task, n_train + n_dev + n_test, seed=11)
        data = {
            "train": str(write_jsonl(data_rows[:n_train], work / task / "train.jsonl")),
            "dev": str(write_jsonl(data_rows[n_train : n_train + n_dev], work / task / "dev.jsonl")),
            "test": str(write_jsonl(data_rows[n_train + n_dev :], work / task / "test.jsonl")),
        }
        results[task] = {}
        for arm in args.arms:
            path = _study(task, arm, work, data, args.trials, args.model)
            result = work / task / arm / "result.json"
            timing = work / task / f"{arm}.wall.json"
            if result.exists() and timing.exists():  # finished by an earlier run with the same --work
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
                    winner_kind=r["best"]["candidate"].get("kind", "prompt"),
                    winner_dev=r["best"]["dev"]["value"],
                    kept_baseline=(r.get("selection") or {}).get("kept_baseline"),
                    n_trials=r["n_trials"],
                )
            results[task][arm] = out
            print(f"{task:>9} {arm:>7}: " + json.dumps(out)[:300], flush=True)
    summary = {}
    for arm in args.arms:
        done = [results[t][arm] for t in args.tasks if "gain" in results[t][arm]]
        if done:
            summary[arm] = {
                "tasks": len(done),
                "mean_gain": round(sum(d["gain"] for d in done) / len(done), 4),
                "significantly_worse": sum(d["gain"] < 0 and (d["p_value"] or 1) < 0.05 for d in done),
                "significantly_better": sum(d["gain"] > 0 and (d["p_value"] or 1) < 0.05 for d in done),
                "kept_baseline": sum(bool(d.get("kept_baseline")) for d in done),
                "wall_seconds": round(sum(d["wall_seconds"] for d in done), 1),
            }
    payload = {
        "model": args.model,
        "trials": args.trials,
        "sizes": {"train": n_train, "dev": n_dev, "test": n_test},
        "tasks": results,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("\n| task | " + " | ".join(f"{a}: base → winner (p)" for a in args.arms) + " |")
    print("|---|" + "---|" * len(args.arms))
    for task in args.tasks:
        cells = []
        for arm in args.arms:
            d = results[task][arm]
            cells.append(
                f"{d['baseline_test']:.3f} → {d['winner_test']:.3f} ({d['p_value']:.2g})" if "gain" in d else "error"
            )
        print(f"| {task} | " + " | ".join(cells) + " |")
    for arm, s in summary.items():
        print(
            f"{arm}: mean test gain {s['mean_gain']:+.3f} over {s['tasks']} tasks; "
            f"significantly better {s['significantly_better']}, worse {s['significantly_worse']}; "
            f"baseline kept {s['kept_baseline']}; {s['wall_seconds']:.0f} s"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
