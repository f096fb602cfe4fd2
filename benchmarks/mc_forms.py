"""Multiple choice with shared options, searched as classification: does the form still matter?

The same rows written two ways (``suite_data.py``'s classification tasks, written for this
project): as classification (an input, a label) and as multiple choice whose options are the
task's label set, listed in every example (a question, options, the answer's index). Three
arms, each a ``template_search`` study with the same budget on the same given splits:

- ``classification``: the classification form;
- ``mc``: the multiple-choice form with the default ``task.options_as_labels: true`` (the
  shared options become labels, so answer words, calibration and demonstrations by label are
  searched, and templates listing ``{options}`` stay in the search);
- ``mc_plain``: the multiple-choice form with ``options_as_labels: false`` (the search before).

Reported per task and seed: the best dev accuracy of any trial (the searched part of dev), the
exported winner's test accuracy, the baseline's, and McNemar's p of winner vs baseline on test.
Target (issue 22, item 3): the ``mc`` arm's best dev within 30 points of ``classification``'s.
Writes ``benchmarks/results/mc_forms.json``.

    .venv/bin/python benchmarks/mc_forms.py --work /tmp/mc-forms                 # intent, topic; seed 0
    .venv/bin/python benchmarks/mc_forms.py --tasks intent --seeds 0 1 --trials 12
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine_data import write_jsonl  # noqa: E402
from selection_suite import run_study_cli  # noqa: E402
from suite_data import TASKS, rows  # noqa: E402

ARMS = ("classification", "mc", "mc_plain")
MC_TEMPLATE = "Question: {input}\nOptions:\n{options}\nAnswer:"


def as_multiple_choice(data: list[dict], labels: list[str]) -> list[dict]:
    """Each row as a multiple-choice question whose options are ``labels`` (one order for all)."""
    return [{"id": r["id"], "question": r["text"], "options": labels, "answer": labels.index(r["label"])} for r in data]


def _task_keys(task: str, arm: str) -> dict:
    keys = dict(TASKS[task][1])
    if arm == "classification":
        return keys
    return {
        "type": "multiple_choice",
        "input": "question",
        "options": "options",
        "label": "answer",
        "prompt": "Answer the question with one of the options.",
        "template": MC_TEMPLATE,
        **({"options_as_labels": False} if arm == "mc_plain" else {}),
    }


def best_dev(output: Path) -> float | None:
    """The highest dev value of any complete trial in the study's storage."""
    from optprompt.study.storage import STUDY_DB, open_study

    spec = yaml.safe_load((output.parent / f"{output.name}.yaml").read_text())
    study = open_study(f"sqlite:///{output / STUDY_DB}", spec["name"], create=False)
    values = [t.value for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
    return max(values) if values else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    classification = [t for t, (_, keys) in TASKS.items() if keys["type"] == "classification"]
    p.add_argument("--tasks", nargs="+", default=["intent", "topic"], choices=classification)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--train", type=int, default=60)
    p.add_argument("--dev", type=int, default=60)
    p.add_argument("--test", type=int, default=120)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--work", type=Path, help="folder for the studies (reused: finished studies are not re-run)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "mc_forms.json")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mc-forms-"))
    exe = Path(sys.executable).with_name("optprompt")
    runs: list[dict] = []
    started = time.time()
    for seed in args.seeds:
        for task in args.tasks:
            data_rows = rows(task, args.train + args.dev + args.test, seed=11 + 1000 * seed + args.dev)
            labels = sorted({r["label"] for r in data_rows})
            for arm in args.arms:
                where = work / f"{task}-s{seed}"
                form = data_rows if arm == "classification" else as_multiple_choice(data_rows, labels)
                kind = "cls" if arm == "classification" else "mc"
                cut = (args.train, args.train + args.dev)
                data = {
                    "train": str(write_jsonl(form[: cut[0]], where / f"{kind}-train.jsonl")),
                    "dev": str(write_jsonl(form[cut[0] : cut[1]], where / f"{kind}-dev.jsonl")),
                    "test": str(write_jsonl(form[cut[1] :], where / f"{kind}-test.jsonl")),
                }
                spec = {
                    "name": f"mc-forms-{task}-s{seed}-{arm}",
                    "model": args.model,
                    "seed": seed,
                    "output": str(where / arm),
                    "task": {"data": data, "id": "id", **_task_keys(task, arm)},
                    "strategy": {"name": "template_search", "trials": args.trials, "max_demos": 3},
                }
                path = where / f"{arm}.yaml"
                path.write_text(yaml.safe_dump(spec, sort_keys=False))
                out = run_study_cli(exe, path, where / arm / "result.json", where / f"{arm}.wall.json")
                if "error" not in out:
                    out["best_dev"] = best_dev(where / arm)
                out.update(task=task, seed=seed, arm=arm, labels=len(labels))
                runs.append(out)
                print(f"{task}-s{seed} {arm:>14}: " + json.dumps(out)[:240], flush=True)
    payload = {
        "model": args.model,
        "trials": args.trials,
        "sizes": {"train": args.train, "dev": args.dev, "test": args.test},
        "seeds": args.seeds,
        "wall_seconds": round(time.time() - started, 1),
        "load": _load(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("\n| task | seed | arm | best dev | baseline test | winner test | p (test) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        if "error" in r:
            print(f"| {r['task']} | {r['seed']} | {r['arm']} | failed: {r['error'][-120:]!r} | | | | |")
            continue
        print(
            f"| {r['task']} ({r['labels']} labels) | {r['seed']} | {r['arm']} | {r['best_dev']:.3f} | "
            f"{r['baseline_test']:.3f} | {r['winner_test']:.3f} | {r['p_value']:.2g} | {r['wall_seconds']:.0f} |"
        )
    print(f"\n{payload['load']}; wrote {args.out}")
    return 0


def _load() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs at the end"


if __name__ == "__main__":
    raise SystemExit(main())
