"""``optprompt postgres start | stop | url``: a local PostgreSQL for the workers of one machine."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_postgres_parser"]


def _cmd_postgres(args: argparse.Namespace) -> int:
    from optprompt.study.local_postgres import run_action

    run_action(args.action, args.dir, args.port)  # an OptpromptError becomes exit 2 with its message
    return 0


def add_postgres_parser(sub: Any) -> None:
    from optprompt.study.local_postgres import add_arguments

    p = sub.add_parser(
        "postgres",
        help="start or stop a local PostgreSQL server for the workers of a study on this machine",
        description=(
            "Start (initialising its data folder on first use), stop, or print the URL of a PostgreSQL server "
            "listening on 127.0.0.1 with trust authentication, for `optprompt worker --storage URL` on this "
            "machine. Binaries: the pgserver package (pip install 'optprompt[postgres]'), OPTPROMPT_PG_BIN, "
            "or pg_ctl on PATH."
        ),
    )
    add_arguments(p)
    p.set_defaults(func=_cmd_postgres)
