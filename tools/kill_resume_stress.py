"""Kill a study with SIGKILL at random moments, resume it, and compare with an uninterrupted run.

Usage (from the repository root; the tiny model and data are made in a temporary folder)::

    flock /tmp/optprompt-heavy.lock .venv/bin/python tools/kill_resume_stress.py --runs 50
    .venv/bin/python tools/kill_resume_stress.py --runs 5 --kills 2 --json out.json

One reference run of an 8-trial ``template_search`` study on a tiny random model, never
interrupted. Then, ``--runs`` times: the same study in a fresh output directory (and a fresh
score cache), SIGKILLed after a random delay drawn from the reference run's wall time
(start-up, mid-trial, between trials, while finishing: anywhere), ``--kills`` times in a row,
then resumed to the end. Each resumed study is compared with the reference on

- the full candidate sequence: (parameters, candidate hash) of every finished trial that
  is not void (void: killed, interrupted; those are re-run), in trial order;
- the winner's hash;
- the winner's test metrics.

Prints one line per run and a summary; exits 1 when any run differs. ``--json`` writes
the figures (and, for a mismatch, both sequences).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

STUDY = "stress"


def study_dict(root: Path, model_dir: Path, data: Path, out: Path) -> dict[str, Any]:
    return {
        "name": STUDY,
        "model": str(model_dir),
        "seed": 3,
        "output": str(out),
        "task": {
            "data": str(data),
            "input": "text",
            "label": "label",
            "id": "id",
            "split": {"train": 0.25, "dev": 0.5, "test": 0.25},
        },
        "strategy": {"name": "template_search", "trials": 8, "max_demos": 3, "demo_pool": 6},
        "scoring": {"device": "cpu", "batch_tokens": 64},
        "workers": {"heartbeat_interval": 1, "grace_period": 3},
    }


def start(study_yaml: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "OPTPROMPT_SCORE_CACHE": str(cache)}
    log = study_yaml.with_name(f"run-{time.time_ns()}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "optprompt.cli.main", "-v", "run", str(study_yaml), "-q"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    return proc


def finish(proc: subprocess.Popen, what: str) -> None:
    proc.wait(timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{what} exited {proc.returncode} (logs: {Path(proc.args[-2]).parent})")


def outcome(out: Path) -> dict[str, Any]:
    """What the study chose: its candidate sequence, winner and test metrics."""
    import optuna

    from optprompt.trials import is_void
    from optprompt.trials import keys as attrs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{out / 'study.db'}").get_trials(deepcopy=False)
    kept = [t for t in trials if t.state.is_finished() and not is_void(t)]
    sequence = [[t.params, t.user_attrs.get(attrs.HASH)] for t in kept]
    result = json.loads((out / "result.json").read_text())
    return {
        "sequence": json.loads(json.dumps(sequence, sort_keys=True)),
        "values": [t.values for t in kept],  # not compared: shown when the sequence differs
        "best": result["best"]["hash"],
        "test": result["best"]["test"]["metrics"],
        "void": sum(is_void(t) for t in trials),
        "running": sum(t.state == optuna.trial.TrialState.RUNNING for t in trials),
    }


def _utc_today(hhmm: str) -> float:
    """Seconds since the epoch of today's ``HH:MM`` UTC."""
    import datetime as dt

    hour, minute = (int(x) for x in hhmm.split(":"))
    now = dt.datetime.now(dt.UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--until", type=_utc_today, help="HH:MM (UTC): start no run after then (a shared machine's time slot)"
    )
    parser.add_argument("--parallel", type=int, default=1, help="runs side by side (default 1)")
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs before the final resume (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temporary one")
    parser.add_argument("--keep-failures", type=Path, help="copy the folders of runs that differ here")
    args = parser.parse_args(argv)

    from optprompt.testing.fixtures import make_tiny_model_dir, write_labelled_jsonl

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="optprompt-stress-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        model_dir = make_tiny_model_dir(root / "models", chat=True)
        data = write_labelled_jsonl(root / "data.jsonl", n=96)

        def prepare(name: str) -> tuple[Path, Path, Path]:
            folder = root / name
            folder.mkdir()
            study_yaml = folder / "study.yaml"
            study_yaml.write_text(yaml.safe_dump(study_dict(folder, model_dir, data, folder / "out")))
            return study_yaml, folder / "out", folder / "score-cache.sqlite"

        ref_yaml, ref_out, ref_cache = prepare("ref")
        began = time.perf_counter()
        finish(start(ref_yaml, ref_cache), "the reference run")
        ref_seconds = time.perf_counter() - began
        ref = outcome(ref_out)
        print(f"reference: {len(ref['sequence'])} trials in {ref_seconds:.1f} s, best {ref['best'][:12]}", flush=True)

        runs: list[dict[str, Any]] = []
        summary = _summary(runs, ref_seconds)
        delays_of = [[round(rng.uniform(0.0, ref_seconds), 2) for _ in range(args.kills)] for _ in range(args.runs)]
        done_lock = threading.Lock()

        def one_run(i: int) -> None:
            nonlocal summary
            if args.until and time.time() > args.until:
                return  # out of time: not started
            study_yaml, out, cache = prepare(f"run{i}")
            killed = 0
            for delay in delays_of[i]:
                proc = start(study_yaml, cache)
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed += 1
            finish(start(study_yaml, cache), f"run {i}: the resumed study")
            got = outcome(out)
            differs = [k for k in ("sequence", "best", "test") if got[k] != ref[k]]
            if got["running"]:
                differs.append("running")
            row = {"run": i, "delays": delays_of[i], "killed": killed, "void": got["void"], "differs": differs}
            if differs:
                row["got"], row["want"] = got, ref
                row["first_difference"] = next(
                    (j for j, (a, b) in enumerate(zip(got["sequence"], ref["sequence"])) if a != b),
                    min(len(got["sequence"]), len(ref["sequence"])),
                )
                if args.keep_failures:  # the storage and logs of the run, to look at
                    shutil.copytree(root / f"run{i}", args.keep_failures / f"run{i}", dirs_exist_ok=True)
                    shutil.copytree(root / "ref", args.keep_failures / "ref", dirs_exist_ok=True)
            with done_lock:
                runs.append(row)
                print(
                    f"run {i}: kill after {delays_of[i]} s ({killed} landed), {got['void']} void trial(s): "
                    + ("MISMATCH " + ", ".join(differs) if differs else "same"),
                    flush=True,
                )
                summary = _summary(runs, ref_seconds)
                if args.json:  # after every run: a long stress stopped early still leaves its figures
                    args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))

        # Runs side by side (--parallel) share the CPU; each kill still lands anywhere in its own run.
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
            for future in [pool.submit(one_run, i) for i in range(args.runs)]:
                future.result()
    print(json.dumps(summary))
    return 1 if summary["mismatches"] else 0


def _summary(runs: list[dict[str, Any]], ref_seconds: float) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "kills_landed": sum(r["killed"] for r in runs),
        "runs_with_void_trial": sum(r["void"] > 0 for r in runs),
        "mismatches": sum(bool(r["differs"]) for r in runs),
        "reference_seconds": round(ref_seconds, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
