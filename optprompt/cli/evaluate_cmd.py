"""``optprompt evaluate TARGET --data FILE [--model REF] [--against OTHER]``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optprompt.evaluation import EvaluationReport

__all__ = ["add_evaluate_parser", "print_evaluation"]


def print_evaluation(report: EvaluationReport, *, width: int | None = None) -> None:
    """A short table: each target's metric with its 95% interval, then the paired test."""
    from optprompt.cli.fit import format_table, terminal_width

    width = terminal_width() if width is None else width
    rows = []
    for s in [report.target, *([report.against] if report.against else [])]:
        rows.append(
            {
                "trial": "",  # keeps the fixed-width columns' rules: nothing here
                report.metric: f"{s.value:.3f}",
                "95% CI": f"[{s.interval.low:.3f}, {s.interval.high:.3f}]",
                **(
                    {
                        "constrained gen.": f"{s.constrained.value:.3f} [{s.constrained.interval.low:.3f}, "
                        f"{s.constrained.interval.high:.3f}]"
                    }
                    if s.constrained is not None
                    else {}
                ),
                "what": s.what,
                "model": s.model,
                **({"format failures": s.format_failures} if report.task_type and s.format_failures else {}),
            }
        )
    for r in rows:
        r.pop("trial")
    print(f"{report.data}: {report.n} examples ({report.task_type}), {report.metric}")
    lines, _ = format_table(rows, width, fixed=(report.metric, "95% CI", "constrained gen."))
    print("\n".join(lines))
    c = report.comparison
    if c is not None:
        d = c.difference
        print(
            f"difference {d.estimate:+.3f} (95% CI [{d.low:+.3f}, {d.high:+.3f}]), {c.test} p = {c.p_value:.3g}, "
            f"n = {c.n}"
        )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from optprompt.evaluation import evaluate

    columns: dict[str, Any] = {
        k: getattr(args, k) for k in ("input", "label", "options", "id", "format", "label_separator")
    }
    columns = {k: v for k, v in columns.items() if v is not None}
    model: Any = args.model
    served = {k: v for k, v in (("api_key_env", args.api_key_env), ("adapter", args.adapter)) if v is not None}
    if served:
        from optprompt.errors import ConfigError
        from optprompt.models.served import is_served_ref

        if not is_served_ref(model):
            flags = " and ".join("--" + k.replace("_", "-") for k in served)
            raise ConfigError(f"{flags} go(es) with a served --model (an http(s) URL)")
        model = {"url": model, **served}
    report = evaluate(
        args.target,
        args.data,
        model=model,
        against=args.against,
        columns=columns,
        constrained=args.constrained,
        plain=args.plain,
        device=args.device,
        output=args.output,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_evaluation(report)
        print(f"wrote {args.output}")
    return 0


def add_evaluate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score an export or a study's winner on new data, on its model or another (--model), against another",
    )
    p.add_argument("target", help="an export directory (card, adapter, ensemble), a prompt card, or a study directory")
    p.add_argument("--data", required=True, help="labelled data file (JSONL, CSV, Parquet...), read as a study reads")
    p.add_argument(
        "--model",
        help="score on this model instead (registered name, model directory, .gguf file, or a served model's URL "
        "such as http://127.0.0.1:8000/v1)",
    )
    p.add_argument(
        "--api-key-env",
        dest="api_key_env",
        metavar="VAR",
        help="a served --model: the environment variable holding its API key (the key is never written anywhere)",
    )
    p.add_argument(
        "--adapter",
        metavar="NAME",
        help="a served --model: the LoRA adapter to score through, by its served name (vLLM --lora-modules "
        "NAME=DIR); an exported LoRA adapter is otherwise found by its directory",
    )
    p.add_argument("--against", help="another export or study directory, or 'baseline' (the study's baseline prompt)")
    p.add_argument("--output", default="evaluation.json", help="where to write evaluation.json (default: here)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda... (default auto)")
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    p.add_argument(
        "--constrained",
        action="store_true",
        help="also measure greedy generation constrained to the answer set (what a serving stack does)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="score a card made with a chat template as a plain prompt (for a --model without one)",
    )
    for col in ("input", "label", "options", "id", "format"):
        p.add_argument(
            f"--{col}",
            help=f"the data's {col} column (as task.{col}; by default the study's, as its export or study holds it)",
        )
    p.add_argument(
        "--label-separator",
        dest="label_separator",
        help="multi-label: what separates labels in a string label cell (as task.label_separator)",
    )
    p.set_defaults(func=_cmd_evaluate)
