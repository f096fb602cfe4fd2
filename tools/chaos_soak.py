"""Chaos soak: several ``optprompt worker`` processes on one PostgreSQL study while a killer
SIGKILLs a random worker every few seconds (and restarts it) and drops the workers'
database connections; then checks that nothing was lost or counted twice.

Usage (from the repository root)::

    flock /tmp/optprompt-heavy.lock .venv/bin/python tools/chaos_soak.py                 # 3 workers, 100 trials
    .venv/bin/python tools/chaos_soak.py --workers 3 --trials 100 --kill-every 5 20 --json soak.json
    .venv/bin/python tools/chaos_soak.py --storage postgresql://postgres@127.0.0.1:5432/test

Without ``--storage`` a throw-away PostgreSQL is started for the soak
(:mod:`optprompt.study.local_postgres`) and removed at the end. The study is
``template_search`` on a tiny random model (made here) with held-out selection off, so
the winner is the best trial on dev. Every ``--kill-every LOW HIGH`` seconds (uniform) one
worker is SIGKILLed and started again (the same command: it takes the first free
``OUTPUT/workers/HOST-N``); in between, at random moments, every connection of the
workers is terminated (``pg_terminate_backend``). When no worker is left running, checks:

- the budget counted exactly: ``n_scored`` == ``--trials``;
- every distinct candidate scored once (no two counted trials share a candidate hash);
- no trial left RUNNING;
- the winner each worker wrote equals the best complete trial (dev value, trial);
- ``optprompt show``'s leaderboard and ``result.json`` agree with the storage (states,
  dev values, counts).

Prints the figures (kills, connection drops, voided trials, wall time) as JSON; exits 1
when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml


def _study(root: Path, model_dir: Path, data: Path, name: str, trials: int) -> dict[str, Any]:
    return {
        "name": name,
        "model": str(model_dir),
        "seed": 5,
        "output": str(root / "out"),
        "task": {
            "data": str(data),
            "input": "text",
            "label": "label",
            "id": "id",
            "split": {"train": 0.3, "dev": 0.4, "test": 0.3},
        },
        "strategy": {"name": "template_search", "trials": trials, "max_demos": 4, "demo_pool": 8},
        "scoring": {"device": "cpu"},
        "selection": {"holdout": 0},
        "workers": {"heartbeat_interval": 1, "grace_period": 4},
    }


class Worker:
    def __init__(self, slot: int, study_yaml: Path, url: str, logs: Path) -> None:
        self.slot, self.study_yaml, self.url, self.logs = slot, study_yaml, url, logs
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"worker{self.slot}-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optprompt.cli.main", "worker", str(self.study_yaml), "--storage", self.url, "-q"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OPTPROMPT_SCORE_CACHE": str(self.logs / "scores.sqlite")},
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def check(url: str, name: str, out: Path, trials_budget: int) -> tuple[list[str], dict[str, Any]]:
    """The soak's checks: (what failed, figures)."""
    import optuna

    from optprompt.cli.output import leaderboard
    from optprompt.trials import is_void, uses_budget
    from optprompt.trials import keys as attrs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    failures = []
    n_scored = sum(uses_budget(t) for t in trials)
    if n_scored != trials_budget:
        failures.append(f"budget: {n_scored} trials counted, want {trials_budget}")
    counted_hashes = [t.user_attrs.get(attrs.HASH) for t in trials if uses_budget(t) and t.user_attrs.get(attrs.HASH)]
    dupes = sorted({h for h in counted_hashes if counted_hashes.count(h) > 1})
    if dupes:
        failures.append(f"{len(dupes)} candidates scored (and counted) more than once: {dupes[:3]}")
    running = [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    if running:
        failures.append(f"trials left running: {running}")
    complete = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get(attrs.ROLE) != "combined"
    ]
    best_value = max(t.values[0] for t in complete)
    results = sorted(out.glob("workers/*/result.json"))
    if not results:
        failures.append("no worker wrote result.json")
    for path in results:
        result = json.loads(path.read_text())
        if result["best"]["dev"]["value"] != best_value:
            failures.append(f"{path}: winner dev {result['best']['dev']['value']} != best complete {best_value}")
        winner = trials[result["best"]["trial"]]
        if winner.state != optuna.trial.TrialState.COMPLETE or winner.values[0] != best_value:
            failures.append(f"{path}: winner trial {winner.number} is not a best complete trial")
        if result["n_scored"] != n_scored or result["n_trials"] != len(trials):
            failures.append(
                f"{path}: result.json says {result['n_scored']} scored of {result['n_trials']} trials; "
                f"the storage holds {n_scored} of {len(trials)}"
            )
        board = leaderboard(path.parent, top=len(trials) + 1)  # what `optprompt show` prints
        shown = {
            int(r.trial): (r.state, None if r.dev is None or r.dev == "" or r.dev != r.dev else float(r.dev))
            for r in board.itertuples()
        }
        stored = {t.number: (t.state.name.lower(), t.values[0] if t.values else None) for t in trials}
        if shown != stored:
            differ = sorted(k for k in set(shown) | set(stored) if shown.get(k) != stored.get(k))
            failures.append(f"{path.parent}: `show` differs from the storage on trials {differ[:5]}")
    figures = {
        "trials_in_storage": len(trials),
        "n_scored": n_scored,
        "void_trials": sum(is_void(t) for t in trials),
        "failed_with_reason": sum(t.state == optuna.trial.TrialState.FAIL and not is_void(t) for t in trials),
        "cached_repeats": sum(attrs.CACHED_FROM in t.user_attrs for t in trials),
        "result_files": len(results),
    }
    return failures, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(5.0, 20.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--drop-every", type=float, nargs=2, default=(2.0, 10.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--storage", help="an existing PostgreSQL URL (default: start a throw-away server)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temporary one")
    args = parser.parse_args(argv)

    import optuna
    import sqlalchemy

    from optprompt.study.local_postgres import LocalPostgres, free_port
    from optprompt.testing.fixtures import make_tiny_model_dir, write_labelled_jsonl
    from optprompt.trials import uses_budget

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(args.seed)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))  # the loop ends; clean-up below
    tmp = Path(tempfile.mkdtemp(prefix="optprompt-soak-"))
    os.chmod(tmp, 0o711)  # as root the throw-away server runs as another user
    root = args.keep or tmp
    root.mkdir(parents=True, exist_ok=True)
    server = None
    workers: list[Worker] = []
    try:
        if args.storage:
            base_url = args.storage
        else:
            server = LocalPostgres(tmp / "pgdata", port=free_port())
            base_url = server.start()
        name = f"soak-{uuid.uuid4().hex[:8]}"
        url = f"{base_url}?application_name={name}"  # the workers' connections, to drop them alone
        model_dir = make_tiny_model_dir(root / "models", chat=True)
        data = write_labelled_jsonl(root / "data.jsonl", n=120)
        study_yaml = root / "study.yaml"
        study_yaml.write_text(yaml.safe_dump(_study(root, model_dir, data, name, args.trials)))
        logs = root / "logs"
        logs.mkdir(exist_ok=True)
        admin = sqlalchemy.create_engine(base_url, poolclass=sqlalchemy.pool.NullPool)
        drop = sqlalchemy.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"
        ).bindparams(app=name)

        workers = [Worker(i, study_yaml, url, logs) for i in range(args.workers)]
        began = time.monotonic()
        for w in workers:
            w.start()
        kills = drops = dropped_connections = 0
        spent, next_check, spent_after = False, began, None
        next_kill = began + rng.uniform(*args.kill_every)
        next_drop = began + rng.uniform(*args.drop_every)
        exits: list[int] = []
        while True:
            if stop:
                raise SystemExit(f"stopped by signal {stop[0]}")
            now = time.monotonic()
            alive = [w for w in workers if w.alive()]
            for w in workers:  # a worker that exited on its own (budget spent) is not restarted
                if w.proc is not None and w.proc.poll() is not None and w.proc.returncode is not None:
                    exits.append(w.proc.returncode)
                    if w.proc.returncode != 0:
                        print(f"worker {w.slot} exited {w.proc.returncode}: see {logs}", file=sys.stderr)
                    w.proc = None
            if not alive:
                break
            if now - began > args.timeout:
                for w in alive:
                    w.proc.kill()
                raise SystemExit(f"gave up after {args.timeout:.0f} s")
            if now >= next_check and not spent:  # once the budget is spent the killer stops: workers finish
                try:
                    trials = optuna.load_study(study_name=name, storage=base_url).get_trials(deepcopy=False)
                    spent = sum(uses_budget(t) for t in trials) >= args.trials
                except KeyError:
                    pass  # no study yet
                if spent:
                    spent_after = round(now - began, 1)
                next_check = now + 1.0
            if now >= next_kill and not spent:
                victim = rng.choice(alive)
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                victim.proc = None
                kills += 1
                victim.start()
                next_kill = now + rng.uniform(*args.kill_every)
            if now >= next_drop and not spent:
                with admin.connect() as conn:
                    n = conn.execute(drop).scalar() or 0
                drops += 1
                dropped_connections += n
                next_drop = now + rng.uniform(*args.drop_every)
            time.sleep(0.05)
        wall = time.monotonic() - began
        failures, figures = check(base_url, name, root / "out", args.trials)
        bad_exits = [c for c in exits if c != 0]
        if bad_exits:
            failures.append(f"workers exited with {bad_exits}")
        summary = {
            "workers": args.workers,
            "budget": args.trials,
            "kills": kills,
            "budget_spent_after_s": spent_after,
            "connection_drops": drops,
            "connections_dropped": dropped_connections,
            "worker_starts": sum(w.starts for w in workers),
            "wall_seconds": round(wall, 1),
            **figures,
            "failures": failures,
        }
        print(json.dumps(summary, indent=1))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1))
        try:
            optuna.delete_study(study_name=name, storage=base_url)
        except Exception:
            pass
        return 1 if failures else 0
    finally:
        for w in workers:
            if w.alive():
                w.proc.kill()
                w.proc.wait()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
