"""Run pytest again and again, each time against a new, empty PostgreSQL database.

Usage (from the repository root, with a PostgreSQL server you may create databases on)::

    nice .venv/bin/python tools/fresh_postgres_loop.py --runs 50 \\
        tests/study/test_resilience.py::test_two_workers_on_postgresql_share_one_budget
    nice .venv/bin/python tools/fresh_postgres_loop.py --runs 20 tests/study/test_resilience.py

Each run creates a database ``optprompt_loop_<random>`` on the server of ``--server``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``, the project machines'
server), points the test suite at it through ``OPTPROMPT_TEST_POSTGRES``, runs pytest on
the given tests, and drops the database. A fresh database is what races: the first workers
on it create Optuna's schema. Prints one line per run and a summary; exits 1 when any run
failed, after printing the end of its output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _with_database(url: str, database: str) -> str:
    import sqlalchemy

    return sqlalchemy.make_url(url).set(database=database).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", nargs="+", help="pytest node ids or files")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--stop-on-failure", action="store_true")
    args = parser.parse_args(argv)

    import sqlalchemy

    admin = sqlalchemy.create_engine(args.server, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    failed: list[int] = []
    started = time.perf_counter()
    for run in range(1, args.runs + 1):
        database = f"optprompt_loop_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args.tests],
                cwd=ROOT,
                env={**os.environ, "OPTPROMPT_TEST_POSTGRES": _with_database(args.server, database)},
                capture_output=True,
                text=True,
            )
        finally:
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(
            f"run {run}/{args.runs}: {'ok' if proc.returncode == 0 else 'FAILED'} "
            f"in {time.perf_counter() - t0:.0f}s ({summary})",
            flush=True,
        )
        if proc.returncode != 0:
            failed.append(run)
            print(proc.stdout[-6000:], proc.stderr[-2000:], sep="\n", flush=True)
            if args.stop_on_failure:
                break
    total = time.perf_counter() - started
    print(f"{args.runs - len(failed)} of {args.runs} runs passed ({total:.0f}s); failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
