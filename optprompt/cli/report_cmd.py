"""``optprompt report OUTPUT_DIR [--to FILE]``: write a study's HTML report.

Only argparse is imported here; matplotlib and Optuna load when the command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_report_parser"]


def _cmd_report(args: argparse.Namespace) -> int:
    from optprompt.report import write_report

    path = write_report(args.output_dir, to=args.to)
    print(f"wrote {path}")
    return 0


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` command to the CLI's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report with plots (works while a study runs too)",
    )
    p.add_argument("output_dir", help="the study's output directory")
    p.add_argument(
        "--to",
        metavar="FILE",
        help="HTML file to write (default OUTPUT_DIR/report.html); the PNGs go next to it, in FILE's stem + _files/",
    )
    p.set_defaults(func=_cmd_report)
    return p
