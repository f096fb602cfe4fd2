"""Runs the speed benchmarks one after another and writes their tables into README.md.

One entry point for CPU now and a GPU when one is lent: every benchmark takes the same
model options (``--random-config llama-1b --device cuda --dtype bfloat16`` measures a
randomly initialised model of realistic size, whose speed does not depend on its weights).
Each benchmark runs in its own process (a clean peak-memory reading, no shared caches) and
writes its JSON under ``benchmarks/results/``; this script then renders the tables from
those files between the ``<!-- bench:start -->`` and ``<!-- bench:end -->`` markers of
``benchmarks/README.md`` (``--no-readme`` leaves it alone; ``--tables-only`` renders from
the existing results without running anything).

    .venv/bin/python benchmarks/bench.py                    # = make bench (CPU, SmolLM2)
    .venv/bin/python benchmarks/bench.py --only adapters training
    python benchmarks/bench.py --random-config llama-1b --device cuda --dtype bfloat16 --no-readme
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

#: name -> (script, extra arguments, result file stem)
BENCHES: dict[str, tuple[str, list[str], str]] = {
    "engine": ("engine.py", [], "engine"),
    "adapters": ("adapters.py", [], "adapters"),
    "training": ("soft_prompt_speed.py", ["--methods", "lora", "prompt_tuning"], "soft_prompt_speed"),
    "decoding": ("decoding.py", [], "decoding"),
}


def _result(stem: str, random_config: str | None) -> Path:
    return RESULTS / (f"{stem}-{random_config}.json" if random_config else f"{stem}.json")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _load_note(machine: dict[str, Any]) -> str:
    a, b = machine.get("load_average_1min_at_start"), machine.get("load_average_1min_at_end")
    return f"load average {a:.1f} -> {b:.1f}" if a is not None and b is not None else ""


def adapters_table(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    lines = [
        f"**Adapter scoring** (`adapters.py`, workload (b): {data['workload']}, {data['examples']} examples, "
        f"{m['device']} {m['dtype'].replace('torch.', '')}, {_load_note(m)})",
        "",
        "| method | padded ex/s | packed ex/s | speed-up | tokens padded / packed | packed MFU | max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['method']} | {r['padded']['examples_per_s']} | {r['packed']['examples_per_s']} | "
            f"**{r['speedup_packed_vs_padded']}x** | {r['padded']['computed_tokens']:,} / "
            f"{r['packed']['computed_tokens']:,} | {r['packed']['mfu']:.1%} | {r['max_abs_diff']:.1e} |"
        )
    return lines


def training_table(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    rows = data["rows"]
    if any("mfu" not in r for r in rows):
        return []  # written by an earlier soft_prompt_speed.py, before MFU and the packed step: no table
    names = list(rows[0]["steps_per_second"]) if rows else []
    load = ""
    if "load_average_1min_at_start" in m:
        load = f", load average {m['load_average_1min_at_start']:.1f} -> {m['load_average_1min_at_end']:.1f}"
    lines = [
        f"**Training steps** (`soft_prompt_speed.py`, data `{rows[0].get('data', 'demo') if rows else ''}`, "
        f"batch {rows[0]['batch_size'] if rows else ''}, {m['device']}, matmul peak "
        f"{m.get('matmul_peak_flops', 0) / 1e9:.0f} GFLOP/s{load}; MFU = 6 x parameters x computed tokens/s / peak)",
        "",
        "| method | " + " | ".join(f"{n} steps/s (MFU)" for n in names) + " | packed vs plain | packed vs padded |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for r in rows:
        cells = " | ".join(f"{r['steps_per_second'][n]} ({r['mfu'][n]:.1%})" for n in names)
        ratios = r.get("ratio_packed_vs", {})
        lines.append(
            f"| {r['method']} | {cells} | **{ratios.get('full_logits', '-')}x** | {ratios.get('padded', '-')}x |"
        )
    return lines


def decoding_table(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    names = [n for n in ("compact", "continuous", "lookup") if all(n in r for r in data["rows"])]
    lines = [
        f"**Extraction decoding** (`decoding.py`, studies/ner.yaml test, lookup {data['lookup_tokens']} tokens, "
        f"{m['device']}, {_load_note(m)})",
        "",
        "| candidate | today ex/s | " + " | ".join(f"{n} ex/s" for n in names) + f" | speed-up ({', '.join(names)}) "
        "| passes today / lookup | same text |",
        "|---|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for r in data["rows"]:
        s = r["speedup_vs_today"]
        same = all(r[n]["same_text_as_today"] for n in names)
        rates = " | ".join(str(r[n]["examples_per_s"]) for n in names)
        ups = ", ".join(f"{s[n]}x" for n in names)
        lines.append(
            f"| {r['candidate']} | {r['today']['examples_per_s']} | {rates} | {ups} | "
            f"{r['today']['forward_passes']} / {r['lookup']['forward_passes']} | {'yes' if same else 'no'} |"
        )
    return lines


def engine_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "**Prompt scoring** (`engine.py`)",
        "",
        "| workload | method | examples/s | tokens | packed speed-up |",
        "|---|---|---|---|---|",
    ]
    for w in data["workloads"]:
        for m, row in w["methods"].items():
            if "skipped" in row:
                continue
            ups = ", ".join(f"{k.removeprefix('speedup_vs_')} {v}x" for k, v in row.items() if k.startswith("speedup"))
            lines.append(f"| {w['workload']} | {m} | {row['examples_per_s']} | {row['computed_tokens']:,} | {ups} |")
    return lines


TABLES = {"engine": engine_table, "adapters": adapters_table, "training": training_table, "decoding": decoding_table}


def render(names: Sequence[str], random_config: str | None) -> str:
    parts = []
    for name in names:
        data = _load(_result(BENCHES[name][2], random_config))
        if data is not None:
            parts.append("\n".join(TABLES[name](data)))
    return "\n\n".join(parts)


def write_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme or END not in readme:
        readme = readme.rstrip("\n") + f"\n\n## Latest `make bench` tables\n\n{START}\n{END}\n"
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(BENCHES), default=["adapters", "training", "decoding"])
    p.add_argument("--random-config")
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--no-readme", action="store_true")
    p.add_argument("--tables-only", action="store_true", help="render from the existing results, run nothing")
    args = p.parse_args(argv)
    shared = []
    for opt in ("random_config", "device", "dtype"):
        if getattr(args, opt):
            shared += [f"--{opt.replace('_', '-')}", getattr(args, opt)]
    failed = []
    if not args.tables_only:
        for name in args.only:
            script, extra, _ = BENCHES[name]
            print(f"== {name}: {script} {' '.join(extra + shared)}", flush=True)
            rc = subprocess.call([sys.executable, str(HERE / script), *extra, *shared])
            if rc:
                failed.append(name)
    text = render(args.only, args.random_config)
    print("\n" + text)
    if not args.no_readme and not args.random_config:
        write_readme(text)
        print(f"\ntables written into {README}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
