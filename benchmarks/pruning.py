"""Pruning benchmark: dev scorings saved by multi-fidelity pruning, at what test score.

For each seed, the demo study (template search on SmolLM2) runs once per pruner
(`none`, `median`, `successive_halving`, `wilcoxon`) with the same trial budget, in one
process with one loaded model and the score cache off, so every dev example counted was
really scored. Reported per pruner: dev examples scored (and the saving against `none`),
the winner's test score, and wall time, averaged over seeds.

    python benchmarks/pruning.py --seeds 0 1 2 --trials 20 --max-examples 240
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRUNERS = ("none", "median", "successive_halving", "wilcoxon")


def run(args: argparse.Namespace) -> dict:
    from optprompt.config import load_spec
    from optprompt.models import load_model
    from optprompt.plugins import load_plugins
    from optprompt.study import run_study

    base = load_spec(ROOT / "studies" / "sentiment.yaml").model_dump()
    model = load_model(args.model, load_plugins(), progress=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for pruner in args.pruners:
                spec = dict(base)
                spec.update(
                    name=f"prune-{pruner}-{seed}",
                    seed=seed,
                    output=str(Path(tmp) / f"{pruner}-{seed}"),
                    base_dir=str(ROOT / "studies"),
                )
                spec["task"] = {**spec["task"], "max_examples": args.max_examples}
                spec["strategy"] = {**{k: v for k, v in spec["strategy"].items()}, "trials": args.trials}
                spec["scoring"] = {**spec["scoring"], "cache": False}
                spec["pruning"] = {"pruner": pruner, "slices": 4, "min_fraction": 0.25, "warmup_trials": 3}
                from optprompt.config import spec_from_dict

                started = time.perf_counter()
                result = run_study(spec_from_dict(spec), model=model, progress=False).to_dict()
                rows.append(
                    {
                        "seed": seed,
                        "pruner": pruner,
                        "dev_examples_scored": result["dev_examples_scored"],
                        "pruned": result["trial_states"].get("pruned", 0),
                        "best_dev": result["best"]["dev"]["value"],
                        "best_test": result["best"]["test"]["value"],
                        "baseline_test": result["baseline"]["test"]["value"],
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    summary = []
    for pruner in args.pruners:
        mine = [r for r in rows if r["pruner"] == pruner]
        ref = [r for r in rows if r["pruner"] == "none"]
        scored = statistics.mean(r["dev_examples_scored"] for r in mine)
        ref_scored = statistics.mean(r["dev_examples_scored"] for r in ref) if ref else None
        summary.append(
            {
                "pruner": pruner,
                "seeds": len(mine),
                "dev_examples_scored": scored,
                "saved_vs_none": None if not ref_scored else round(1 - scored / ref_scored, 3),
                "best_test_mean": round(statistics.mean(r["best_test"] for r in mine), 4),
                "best_test_per_seed": [r["best_test"] for r in mine],
                "seconds_mean": round(statistics.mean(r["seconds"] for r in mine), 1),
            }
        )
    return {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": vars(args),
        "runs": rows,
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--max-examples", type=int, default=240)
    p.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=PRUNERS)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pruning.json"))
    args = p.parse_args(argv)
    report = run(args)
    print(f"\n{'pruner':<20} {'seeds':>5} {'dev scored':>11} {'saved':>7} {'test (mean)':>12}  per seed")
    for s in report["summary"]:
        saved = "-" if s["saved_vs_none"] is None else f"{100 * s['saved_vs_none']:.0f}%"
        print(
            f"{s['pruner']:<20} {s['seeds']:>5} {s['dev_examples_scored']:>11.0f} {saved:>7} "
            f"{s['best_test_mean']:>12.3f}  {s['best_test_per_seed']}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
