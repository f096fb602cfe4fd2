"""Prompt + adapter vs the best discrete prompt, on tasks whose answers are facts from train.

Tasks (``facts_data.py``, written for this project): ``codes`` (invented product codes ->
store department) and ``teams`` (invented people -> team), 4 labels each, every entity seen
several times in train. Per task and seed, two studies on the same given splits
(SmolLM2-135M-Instruct, CPU):

1. ``discrete``: ``template_search`` (instruction, template, up to 3 demonstrations, answer
   words, calibration), the default held-out selection; its exported winner is the best
   discrete prompt.
2. ``prompt_adapter``: ``soft_prompt`` with ``template:`` the discrete study's output, so each
   trial trains a LoRA adapter *under* that winner's prompt (kind ``prompt_adapter``); the
   default selection again.

The test split is scored once per study, on its exported winner only. Reported per task
and seed: the baseline's, the discrete winner's and the prompt + adapter winner's test
accuracy, and McNemar's exact p-value of prompt + adapter against the discrete winner on
the same test examples (from each study's ``predictions.jsonl``). Writes
``benchmarks/results/prompt_adapter_suite.json``.

    .venv/bin/python benchmarks/prompt_adapter_suite.py --work /tmp/pa-suite          # 2 tasks x seeds 0 1
    .venv/bin/python benchmarks/prompt_adapter_suite.py --tasks codes --seeds 0 --trials 8
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

from facts_data import FACT_TASKS, rows  # noqa: E402
from optprompt_plugins.soft_prompt.config import SoftPromptConfig  # noqa: E402

from optprompt.stats.paired import mcnemar  # noqa: E402


def _write(rows_: list[dict], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_))
    return str(path)


def _studies(task: str, seed: int, work: Path, sizes: tuple[int, int, int], args: argparse.Namespace) -> list[Path]:
    n_train, n_dev, n_test = sizes
    data_rows = rows(task, n_train + n_dev + n_test, seed=seed)
    root = work / f"{task}-{seed}"
    data = {
        "train": _write(data_rows[:n_train], root / "train.jsonl"),
        "dev": _write(data_rows[n_train : n_train + n_dev], root / "dev.jsonl"),
        "test": _write(data_rows[n_train + n_dev :], root / "test.jsonl"),
    }
    base = {
        "model": args.model,
        "seed": seed,
        "task": {
            "data": data,
            "id": "id",
            "type": "classification",
            "input": "text",
            "label": "label",
            "prompt": FACT_TASKS[task]["prompt"],
        },
        "scoring": {"cache_path": str(root / "scores.sqlite")},
    }
    discrete = {
        **base,
        "name": f"{task}-{seed}-discrete",
        "output": str(root / "discrete"),
        "strategy": {"name": "template_search", "trials": args.trials, "max_demos": 3},
    }
    adapter = {
        **base,
        "name": f"{task}-{seed}-prompt-adapter",
        "output": str(root / "prompt_adapter"),
        "pruning": {"pruner": "none"},
        "strategy": {
            "name": "soft_prompt",
            "trials": args.adapter_trials,
            "methods": ["lora"],
            "lora_r": [8],
            "lr": {"lora": list(args.lr)},
            "epochs": [args.epochs, args.epochs],
            "batch_size": args.batch_size,
            **({"lora_targets": list(args.lora_targets)} if args.lora_targets else {}),
            "template": str(root / "discrete"),
        },
    }
    paths = []
    for spec in (discrete, adapter):
        path = root / f"{spec['output'].rsplit('/', 1)[1]}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        paths.append(path)
    return paths


def _run(path: Path, exe: Path) -> dict:
    out_dir = Path(yaml.safe_load(path.read_text())["output"])
    timing = out_dir.with_suffix(".wall.json")
    if (out_dir / "result.json").exists() and timing.exists():  # finished by an earlier run with the same --work
        return json.loads(timing.read_text())
    load = os.getloadavg()[0]
    t = time.perf_counter()
    log = out_dir.with_suffix(".log")  # the study's own log (-v), to follow a long run
    with log.open("w") as f:
        proc = subprocess.run([str(exe), "-v", "run", str(path), "-q"], stdout=f, stderr=subprocess.STDOUT)
    out = {"wall_seconds": round(time.perf_counter() - t, 1), "load_start": round(load, 2)}
    out["load_end"] = round(os.getloadavg()[0], 2)
    if proc.returncode != 0:
        out["error"] = log.read_text()[-2000:]
        return out
    timing.write_text(json.dumps(out))
    return out


def _test_scores(out_dir: Path) -> dict[str, float]:
    lines = (out_dir / "predictions.jsonl").read_text().splitlines()
    return {p["id"]: p["score"] for p in map(json.loads, lines) if p["role"] == "best" and p["split"] == "test"}


def _training(out_dir: Path) -> list[dict]:
    """Each trained adapter's schedule and learning curve (from its manifest)."""
    out = []
    for manifest in sorted((out_dir / "artifacts" / "adapters").glob("*/optprompt_adapter.json")):
        t = json.loads(manifest.read_text()).get("training") or {}
        keep = ("train_examples", "steps", "train_seconds", "steps_per_second", "best_epoch", "epochs_run")
        out.append({**{k: t.get(k) for k in keep}, "history": t.get("history")})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(FACT_TASKS), choices=list(FACT_TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--trials", type=int, default=8, help="template_search trials (baseline included)")
    p.add_argument("--adapter-trials", type=int, default=2, help="soft_prompt trials (baseline included)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, nargs=2, default=(2e-3, 2e-3), metavar=("LOW", "HIGH"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lora-targets", nargs="+", help="modules LoRA adapts (default: PEFT's for the model)")
    p.add_argument("--sizes", type=int, nargs=3, default=(96, 48, 96), metavar=("TRAIN", "DEV", "TEST"))
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--work", type=Path, help="keep the studies here; a rerun reuses finished studies")
    p.add_argument("--out", type=Path, default=HERE / "results" / "prompt_adapter_suite.json")
    args = p.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="prompt-adapter-suite-"))
    exe = Path(sys.executable).with_name("optprompt")
    cases: list[dict] = []
    payload = {
        "model": args.model,
        "sizes": dict(zip(("train", "dev", "test"), args.sizes)),
        "discrete_trials": args.trials,
        "adapter_trials": args.adapter_trials,
        "epochs": args.epochs,
        "min_steps": SoftPromptConfig.model_fields["min_steps"].default,
        "lr": list(args.lr),
        "batch_size": args.batch_size,
        "lora_targets": args.lora_targets,
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:  # every task once before the next seed
        for task in args.tasks:
            discrete_yaml, adapter_yaml = _studies(task, seed, work, tuple(args.sizes), args)
            case: dict = {"task": task, "seed": seed}
            for arm, path in (("discrete", discrete_yaml), ("prompt_adapter", adapter_yaml)):
                case[arm] = _run(path, exe)
                if "error" in case[arm]:
                    break
                out_dir = Path(yaml.safe_load(path.read_text())["output"])
                r = json.loads((out_dir / "result.json").read_text())
                case[arm].update(
                    baseline_test=r["baseline"]["test"]["value"],
                    winner_test=r["best"]["test"]["value"],
                    winner_kind=r["best"]["candidate"].get("kind", "prompt"),
                    winner_trial=r["best"]["trial"],
                    p_vs_baseline=r["comparison"].get("p_value"),
                )
                case[arm]["_scores"] = _test_scores(out_dir)
                sel = r.get("selection") or {}
                case[arm]["selection"] = {k: sel.get(k) for k in ("evidence", "p_value", "kept_baseline", "finalists")}
                if arm == "prompt_adapter":
                    case[arm]["training"] = _training(out_dir)
            if all(arm in case and "error" not in case[arm] for arm in ("discrete", "prompt_adapter")):
                a, b = case["discrete"].pop("_scores"), case["prompt_adapter"].pop("_scores")
                ids = sorted(a)
                test = mcnemar([a[i] for i in ids], [b[i] for i in ids])
                gain = case["prompt_adapter"]["winner_test"] - case["discrete"]["winner_test"]
                case["gain_over_discrete"] = round(gain, 4)
                case["p_vs_discrete"] = float(test.p_value)
            cases.append(case)
            print(json.dumps(case)[:600], flush=True)
            args.out.write_text(json.dumps(payload, indent=2) + "\n")  # after every case
    print(
        "\n| task | seed | baseline test | best discrete prompt test | prompt + adapter test | p (vs discrete) |",
        end="",
    )
    print(" wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for c in cases:
        if "p_vs_discrete" not in c:
            print(f"| {c['task']} | {c['seed']} | error | | | | |")
            continue
        d, a = c["discrete"], c["prompt_adapter"]
        print(
            f"| {c['task']} | {c['seed']} | {d['baseline_test']:.3f} | {d['winner_test']:.3f} | "
            f"{a['winner_test']:.3f} ({a['winner_kind']}) | {c['p_vs_discrete']:.2g} | "
            f"{d['wall_seconds']:.0f} + {a['wall_seconds']:.0f} |"
        )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
