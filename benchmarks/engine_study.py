"""A whole study on the scoring engine's hard workload, from a cold score cache, timed.

Writes the 7-intent data set of ``engine_data.py`` (labels of 3-6 tokens) as given
splits (train 100, dev 120, test 70), then runs ``optprompt run`` on a 16-trial
``template_search`` study (up to 4 demonstrations, chat template, SmolLM2) in a fresh
output directory with a fresh score cache, and prints the wall time. ``--engine legacy``
runs the same study on the previous engine for comparison.

    .venv/bin/python benchmarks/engine_study.py                 # target: <= 10 minutes on 2 cores
    .venv/bin/python benchmarks/engine_study.py --engine legacy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine_data import intent_rows, write_jsonl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=("packed", "padded"), default="packed")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--dev", type=int, default=120)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--keep", type=Path, help="write the study here instead of a temporary directory")
    args = p.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="engine-study-"))
    rows = intent_rows(100 + args.dev + 70, seed=7)
    data = {
        "train": str(write_jsonl(rows[:100], work / "data" / "train.jsonl")),
        "dev": str(write_jsonl(rows[100 : 100 + args.dev], work / "data" / "dev.jsonl")),
        "test": str(write_jsonl(rows[100 + args.dev :], work / "data" / "test.jsonl")),
    }
    spec = {
        "name": f"intent-engine-{args.engine}",
        "model": args.model,
        "seed": 0,
        "output": str(work / f"run-{args.engine}"),
        "task": {
            "data": data,
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "prompt": "Classify the user's request into one of these intents: {labels}.",
        },
        "strategy": {"name": "template_search", "trials": args.trials, "max_demos": 4},
        "scoring": {"cache_path": str(work / f"scores-{args.engine}.sqlite")},
    }
    path = work / f"study-{args.engine}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, "OPTPROMPT_SCORING_ENGINE": args.engine}
    exe = Path(sys.executable).with_name("optprompt")
    print(f"running {path} ({args.trials} trials, {args.dev} dev examples, engine {args.engine})", flush=True)
    t = time.perf_counter()
    proc = subprocess.run([str(exe), "run", str(path), "-q"], env=env)
    wall = time.perf_counter() - t
    result = Path(spec["output"]) / "result.json"
    summary = {"engine": args.engine, "wall_seconds": round(wall, 1), "returncode": proc.returncode}
    if result.exists():
        r = json.loads(result.read_text())
        summary.update(
            n_trials=r.get("n_trials"),
            baseline_test=(r.get("baseline") or {}).get("test", {}).get("value"),
            best_test=(r.get("best") or {}).get("test", {}).get("value"),
            best_dev=(r.get("best") or {}).get("dev", {}).get("value"),
        )
    print(json.dumps(summary, indent=2))
    print(f"wall time: {wall / 60:.1f} min ({args.engine} engine)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
