"""Evolution against random search, side by side in one run, with the same dev scorings.

Runs, in one process and on one loaded model (SmolLM2-135M-Instruct by default):

1. ``studies/sentiment-evolution.yaml``: the experimental ``evolution`` strategy, the
   task model also rewriting;
2. ``template_search`` with ``sampler: random`` on the same task, with the search space
   of ``studies/sentiment.yaml`` and as many distinct dev scorings as the evolution used.

Each study gets its own fresh score cache, so neither reuses the other's scores and both
times are real. Prints baseline vs best (dev and test) of each, the head-to-head paired
test of the two winners on test, rejected rewrites, best and mean fitness per generation
and wall/CPU time; writes everything to ``benchmarks/results/evolution_vs_random.json``.

    .venv/bin/python benchmarks/evolution_vs_random.py        # the study file's settings
    .venv/bin/python benchmarks/evolution_vs_random.py --mode de --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "evolution_vs_random.json"


def _plugins():  # type: ignore[no-untyped-def]
    """Plugins from the entry points; the evolution plugin added in code if its entry
    point is not installed yet."""
    from optprompt.plugins import load_plugins
    from optprompt.plugins.manager import get_plugin_manager

    plugins = load_plugins()
    if "evolution" in plugins.strategies:
        return plugins
    import optprompt_plugins.evolution as evolution

    return load_plugins(get_plugin_manager(extra_plugins=[evolution]))


def _timed_run(spec, plugins, model) -> tuple[dict[str, Any], Any, float, float]:  # type: ignore[no-untyped-def]
    from optprompt.study import StudyRunner

    runner = StudyRunner(spec, plugins=plugins, model=model, progress=True)
    wall, cpu = time.perf_counter(), time.process_time()
    result = runner.run().to_dict()
    return result, runner, time.perf_counter() - wall, time.process_time() - cpu


def _test_scores(output: Path, role: str) -> dict[str, float]:
    scores = {}
    for line in (output / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["role"] == role:
            scores[row["id"]] = row["score"]
    return scores


def _summary(result: dict[str, Any], wall: float, cpu: float) -> dict[str, Any]:
    def side(role: str) -> dict[str, Any]:
        r = result[role]
        return {
            "trial": r["trial"],
            "dev": r["dev"]["value"],
            "test": r["test"]["value"],
            "candidate": r["candidate"],
        }

    return {
        "baseline": side("baseline"),
        "best": side("best"),
        "n_scored": result["n_scored"],
        "n_trials": result["n_trials"],
        "p_value_vs_baseline": result["comparison"].get("p_value"),
        "warnings": result.get("warnings", []),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default=str(ROOT / "studies" / "sentiment-evolution.yaml"))
    p.add_argument(
        "--random-space",
        default=str(ROOT / "studies" / "sentiment.yaml"),
        help="study file whose template_search options random search uses",
    )
    p.add_argument(
        "--out",
        default=str(ROOT / "runs" / "evolution-vs-random"),
        help="a fresh time-stamped folder is made in it",
    )
    p.add_argument("--mode", choices=["ga", "de"], help="override strategy.mode")
    p.add_argument("--population", type=int, help="override strategy.population")
    p.add_argument("--generations", type=int, help="override strategy.generations")
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (1 avoids oversubscription on a busy machine)",
    )
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)

    import warnings

    import optuna
    import torch

    from optprompt import load_spec
    from optprompt.config import spec_from_dict
    from optprompt.models import load_model
    from optprompt.stats import compare

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*experimental.*")
    out = Path(args.out) / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    evo = load_spec(args.study)
    options = {**evo.strategy.options(), "name": evo.strategy.name}
    for key in ("mode", "population", "generations"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    evo_dict = evo.model_dump(mode="json")
    evo_dict.update(
        output=str(out / "evolution"),
        strategy=options,
        scoring={**evo_dict["scoring"], "cache_path": str(out / "scores-evolution.sqlite")},
    )
    evo = spec_from_dict(evo_dict)

    plugins = _plugins()
    started = time.perf_counter()
    model = load_model(evo.model, plugins, device=evo.scoring.device, dtype=evo.scoring.dtype)
    load_seconds = time.perf_counter() - started

    print(f"[1/2] evolution ({options.get('mode', 'ga')}) -> {out / 'evolution'}", file=sys.stderr)
    evo_result, evo_runner, evo_wall, evo_cpu = _timed_run(evo, plugins, model)
    storage = f"sqlite:///{out / 'evolution' / 'study.db'}"
    summary = evo_result.get("strategy_summary") or evo_runner.strategy.summary(
        optuna.load_study(study_name=evo.name, storage=storage)
    )

    space = load_spec(args.random_space).strategy.options()
    space.pop("budget", None)  # the same number of scorings as the evolution, however long
    rnd_dict = {
        **evo.model_dump(mode="json"),
        "name": f"{evo.name}-random",
        "output": str(out / "random"),
        "strategy": {
            **space,
            "name": "template_search",
            "sampler": "random",
            "trials": evo_result["n_scored"],
        },
    }
    rnd_dict["scoring"] = {**rnd_dict["scoring"], "cache_path": str(out / "scores-random.sqlite")}
    rnd = spec_from_dict(rnd_dict)
    print(
        f"[2/2] random template search, {evo_result['n_scored']} scorings -> {out / 'random'}",
        file=sys.stderr,
    )
    rnd_result, _, rnd_wall, rnd_cpu = _timed_run(rnd, plugins, model)

    # Head to head on test: the two winners, paired per example.
    a, b = _test_scores(out / "random", "best"), _test_scores(out / "evolution", "best")
    ids = sorted(set(a) & set(b))
    h2h = compare([a[i] for i in ids], [b[i] for i in ids]).to_dict()

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "model": evo.model,
        "model_load_seconds": round(load_seconds, 1),
        "output": str(out),
        "evolution": {
            **_summary(evo_result, evo_wall, evo_cpu),
            "options": options,
            "summary": summary,
        },
        "random_search": {
            **_summary(rnd_result, rnd_wall, rnd_cpu),
            "options": rnd_dict["strategy"],
        },
        "head_to_head_test": {"a": "random_search best", "b": "evolution best", **h2h},
    }
    _print(report)
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {path}")
    return 0


def _print(r: dict[str, Any]) -> None:
    evo, rnd, s = r["evolution"], r["random_search"], r["evolution"]["summary"]

    def pct(x: float | None) -> str:
        return "   -  " if x is None else f"{100 * x:5.1f}%"

    print(f"\nmodel {r['model']}, {r['machine']['threads']} torch threads; same task, seed and split for both")
    print(f"{'':24}{'dev':>8}{'test':>8}  scorings  wall s   CPU s")
    print(f"{'baseline':24}{pct(evo['baseline']['dev']):>8}{pct(evo['baseline']['test']):>8}")
    for name, x in (("evolution best", evo), ("random search best", rnd)):
        print(
            f"{name:24}{pct(x['best']['dev']):>8}{pct(x['best']['test']):>8}  {x['n_scored']:8d}"
            f"  {x['wall_seconds']:6.0f}  {x['cpu_seconds']:6.0f}"
            f"   (p vs baseline {x['p_value_vs_baseline']:.3g})"
        )
    print(
        f"time ratio evolution / random: wall {evo['wall_seconds'] / rnd['wall_seconds']:.2f}, "
        f"CPU {evo['cpu_seconds'] / rnd['cpu_seconds']:.2f}"
    )
    h = r["head_to_head_test"]
    d = h["difference"]
    print(
        f"head to head on test, evolution - random: {100 * d['estimate']:+.1f} points "
        f"(95% CI {100 * d['low']:+.1f} to {100 * d['high']:+.1f}), "
        f"p = {h['p_value']:.3g} ({h['test']}, n={h['n']})"
    )
    print(
        f"\nevolution: {s['mode']}, population {s['population']}, "
        f"{s['generations_done']} generations; "
        f"rewriter calls {s['rewriter_calls']} (budget {s['rewriter_budget']})"
    )
    print(f"rejected rewrites: {s['rejected_rewrites']} {s['rejected_by_reason']}")
    print(f"repairs: {s['repairs']}; children made by edits instead of the LLM: {s['fallbacks_to_edits']}")
    print(f"{'generation':>10}{'best':>8}{'mean':>8}{'children best':>15}{'children mean':>15}")
    for row in s["fitness"]:
        print(
            f"{row['generation']:>10}{pct(row['best']):>8}{pct(row['mean']):>8}"
            f"{pct(row['children_best']):>15}{pct(row['children_mean']):>15}"
        )
    print(f"\nevolution best instruction: {evo['best']['candidate']['instruction']!r}")
    print(f"random search best: {json.dumps(rnd['best']['candidate'])}")


if __name__ == "__main__":
    sys.exit(main())
