"""Soft prompts and LoRA against the baseline and the best discrete prompt, on test.

Runs, in one process and on one loaded model (SmolLM2-135M-Instruct, CPU by default):

1. ``studies/sentiment-soft.yaml`` (the ``soft_prompt`` strategy: prompt tuning and LoRA),
   timed; a finished run in its output directory is reused (optprompt resumes studies);
2. optionally (``--discrete``) a finished template study's output (``make demo`` writes
   ``runs/sentiment-demo``): its winner is scored again on the same test split.

Then every method's best adapter (by dev) is scored on test through the strategy's own
scorer and compared with the baseline prompt on the same examples (paired McNemar).
Prints one table (dev, test, trainable parameters, training steps/s) and writes
``benchmarks/results/soft_prompt.json``.

    .venv/bin/python benchmarks/soft_prompt.py --discrete runs/sentiment-demo
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "soft_prompt.json"


#: One run per method: the middle of each default learning-rate range (log scale), 2 epochs.
EACH_METHOD = {
    "prompt_tuning": {"num_virtual_tokens": 16, "init": "text", "lr": 0.03},
    "prefix_tuning": {"num_virtual_tokens": 16, "lr": 0.005},
    "p_tuning": {"num_virtual_tokens": 16, "encoder_hidden_size": 128, "lr": 0.001},
    "lora": {"lora_r": 8, "lr": 0.0005},
}


def _each_method(runner, task, row) -> None:  # type: ignore[no-untyped-def]
    """Train each method once (fixed settings) through the strategy, score it on test."""
    import optuna

    from optprompt.adapters.candidate import SoftCandidate

    fixed = {"epochs": 2, "batch_size": 8, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "patience": 2}
    template = runner.strategy.template
    for method, params in EACH_METHOD.items():
        cand = SoftCandidate.create(template, method, {**params, **fixed})
        study = optuna.create_study(direction="maximize")
        trial = study.ask()
        started = time.perf_counter()
        dev = runner.kinds.of(cand).score(trial, cand, runner.kind_context)
        seconds = time.perf_counter() - started
        with runner.kinds.of(cand).scorer(cand, runner.kind_context) as evaluator:
            test = evaluator.evaluate(cand, task.test, "test")
        info = trial.user_attrs.get("soft.training", {})
        row(
            f"{method} (fixed settings)",
            dev.value,
            test,
            {
                "trainable_parameters": info.get("trainable_parameters"),
                "steps_per_second": info.get("steps_per_second"),
                "params": cand.param_map,
                "seconds": round(seconds, 1),
            },
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default=str(ROOT / "studies" / "sentiment-soft.yaml"))
    parser.add_argument("--discrete", help="a finished template study's output directory")
    parser.add_argument("--output", help="override the soft study's output directory")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--each-method",
        action="store_true",
        help="also train one run of every method (prompt, prefix, P-tuning, LoRA) with fixed mid-range settings",
    )
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.config import load_spec
    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.stats import compare
    from optprompt.study import StudyRunner
    from optprompt.trials import keys as attrs

    spec = load_spec(args.study)
    if args.output:
        spec = spec.model_copy(update={"output": args.output})
    runner = StudyRunner(spec, progress=True)
    started = time.perf_counter()
    result = runner.run().to_dict()
    wall = time.perf_counter() - started
    task = runner.task
    test_base = runner.evaluator.evaluate(runner.baseline, task.test, "test")

    rows: list[dict[str, Any]] = []

    def row(name: str, dev: float, test, extra: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
        c = compare(test_base.scores, test.scores)
        rows.append(
            {
                "prompt": name,
                "dev": round(dev, 4),
                "test": round(test.value, 4),
                "test_vs_baseline_p": None if not rows else float(f"{c.p_value:.3g}"),
                **extra,
            }
        )

    row("baseline prompt", result["baseline"]["dev"]["value"], test_base, {})
    if args.discrete:
        found = json.loads((Path(args.discrete) / "result.json").read_text())
        cand = PromptCandidate.from_dict(found["best"]["candidate"])
        ev = runner.evaluator.evaluate(cand, task.test, "test", offsets=found["best"]["calibration"].get("offsets"))
        row(f"best discrete ({found['name']}, trial {found['best']['trial']})", found["best"]["dev"]["value"], ev, {})
    import optuna

    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}")
    best_by_method: dict[str, optuna.trial.FrozenTrial] = {}
    for t in study.trials:
        cand = t.user_attrs.get(attrs.CANDIDATE) or {}
        if t.state != optuna.trial.TrialState.COMPLETE or cand.get("kind") != "soft":
            continue
        m = cand["method"]
        if m not in best_by_method or t.values[0] > best_by_method[m].values[0]:
            best_by_method[m] = t
    for method, t in sorted(best_by_method.items()):
        cand = SoftCandidate.from_dict(t.user_attrs[attrs.CANDIDATE])
        with runner.kinds.of(cand).scorer(cand, runner.kind_context) as evaluator:
            ev = evaluator.evaluate(cand, task.test, "test")
        training = t.user_attrs["soft.training"]
        row(
            f"best {method} (trial {t.number})",
            t.values[0],
            ev,
            {
                "trainable_parameters": training["trainable_parameters"],
                "steps_per_second": training["steps_per_second"],
                "params": cand.param_map,
            },
        )
    if args.each_method:
        _each_method(runner, task, row)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": str(runner.model.device),
        },
        "model": spec.model,
        "task": task.summary(),
        "study": {
            "file": args.study,
            "trials": result["n_trials"],
            "wall_seconds": round(wall, 1),
            "result_wall_seconds": result["wall_seconds"],
            "trial_states": result["trial_states"],
        },
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'prompt':<44} {'dev':>6} {'test':>6} {'p':>7} {'trainable':>10} {'steps/s':>8}")
    for r in rows:
        p = "" if r["test_vs_baseline_p"] is None else f"{r['test_vs_baseline_p']:.3g}"
        print(
            f"{r['prompt']:<44} {r['dev']:>6.3f} {r['test']:>6.3f} {p:>7} "
            f"{r.get('trainable_parameters', ''):>10} {r.get('steps_per_second', ''):>8}"
        )
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
