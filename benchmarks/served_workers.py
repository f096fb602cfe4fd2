"""Trials per minute of 1, 2 and 4 ``optprompt worker`` processes sharing one study through
PostgreSQL, all scoring through one vLLM server.

For each worker count a fresh study (its own name in the database) on the intent data (7
intents, 32 rows: 8 on dev, template search with at most one fixed demonstration, the score
cache off so every trial is scored by the server) gets a budget of ``--trials`` trials; the
workers are started together and the figure is the trials completed per minute between the
first trial's start and the last one's end (from Optuna's records: worker start-up, model
connection and the end of the study are not counted). The wall time from start to the last
worker's exit is printed too.

    python benchmarks/served_workers.py --url http://127.0.0.1:8000/v1 \\
        --storage postgresql://postgres@127.0.0.1:5432/test [--workers 1 2 4] [--trials 6]

Without ``--url`` a server is started from ``.venv-serve`` (``make serve-env``) and stopped.
Without ``--storage`` a throw-away PostgreSQL is started (``optprompt postgres``'s machinery).
On a small CPU the server is the bottleneck: the workers only send requests and wait.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tools"))


def _study(path: Path, url: str, name: str, trials: int, storage: str, key_env: str | None) -> Path:
    spec = {
        "name": name,
        "model": {"url": url, "max_concurrency": 8, **({"api_key_env": key_env} if key_env else {})},
        "seed": 0,
        "output": str(path.parent / name),
        "storage": storage,
        "task": {
            "data": str(REPO / "studies" / "data" / "intent.jsonl"),
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "split": {"train": 0.5, "dev": 0.25, "test": 0.25},
            "max_examples": 32,
            "prompt": "Which intent is this assistant request? Answer with one of: {labels}.",
        },
        "strategy": {"name": "template_search", "trials": trials, "max_demos": 1, "demo_pool": 4},
        "scoring": {"cache": False},
        "selection": {"holdout": 0},
    }
    path.write_text(json.dumps(spec))
    return path


def _rate(storage: str, name: str) -> tuple[int, float]:
    """Completed trials and trials per minute between the first start and the last end."""
    import optuna

    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.datetime_complete]
    if not done:
        return 0, 0.0
    start = min(t.datetime_start for t in done if t.datetime_start)
    end = max(t.datetime_complete for t in done)  # type: ignore[type-var]
    minutes = (end - start).total_seconds() / 60
    return len(done), len(done) / minutes if minutes > 0 else 0.0


def run(
    url: str, storage: str, counts: list[int], trials: int, work: Path, key_env: str | None = None
) -> list[dict[str, float]]:
    rows = []
    stamp = int(time.time())
    for n in counts:
        name = f"bench-workers-{n}-{stamp}"
        study = _study(work / f"{name}.json", url, name, trials, storage, key_env)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("optprompt")),
                    "worker",
                    str(study),
                    "--quiet",
                    "--output",
                    str(work / name / f"w{i}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(work / f"{name}-w{i}.log", "wb"),  # noqa: SIM115
                env={**os.environ},
            )
            for i in range(n)
        ]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - started
        failed = sum(1 for c in codes if c)
        if failed:
            print(f"{failed} of {n} workers failed; see {work}/{name}-w*.log", flush=True)
        done, per_minute = _rate(storage, name)
        load = os.getloadavg()[0]
        row = {"workers": n, "trials": done, "trials_per_min": per_minute, "wall_s": wall, "load1": load}
        rows.append({**row, "failed": failed})
        print(
            f"{n} worker(s): {done} trials, {per_minute:.2f} trials/min, wall {wall:.0f}s, load {load:.1f}", flush=True
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server (default: start one from .venv-serve)")
    p.add_argument("--storage", help="a PostgreSQL URL (default: a throw-away local server)")
    p.add_argument("--api-key-env", metavar="VAR", help="the variable holding the server's API key, if it wants one")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--trials", type=int, default=6, help="the budget of each study, in trials")
    p.add_argument("--output", type=Path, default=HERE / "results" / "served_workers.json")
    args = p.parse_args(argv)

    import serve_vllm

    work = Path(tempfile.mkdtemp(prefix="optprompt-bench-workers-"))
    server = postgres = None
    try:
        url = args.url
        if url is None:
            from optprompt.study.local_postgres import free_port

            port = free_port()
            server = serve_vllm.start(serve_vllm.smollm2_dir(), port, work / "vllm.log")
            url = f"http://127.0.0.1:{port}/v1"
            print(f"vLLM ready after {serve_vllm.wait_ready(server, url, work / 'vllm.log'):.0f}s", flush=True)
        storage = args.storage
        if storage is None:
            from optprompt.study.local_postgres import LocalPostgres

            postgres = LocalPostgres(work / "pg")
            storage = postgres.start()
        rows = run(url, storage, args.workers, args.trials, work, args.api_key_env)
    finally:
        if server is not None:
            serve_vllm.stop(server)
        if postgres is not None:
            postgres.stop()
    base = rows[0]["trials_per_min"] or 1.0
    for r in rows:
        r["speedup"] = r["trials_per_min"] / base
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"url": url, "trials": args.trials, "rows": rows, "cpus": os.cpu_count()}, indent=2)
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
