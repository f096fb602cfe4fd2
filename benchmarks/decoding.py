"""Extraction decoding benchmark: today's decoding loop against its fast paths, on NER test.

``studies/ner.yaml``'s task (its own data, its split), the test examples, two candidates
(the study's baseline prompt, ``lines`` format; and 3 demonstrations with the ``inline``
format, whose answer copies the input), scored by the study's evaluator (rendering,
batched generation with the shared prefix cached, parsing, entity F1) through the causal
backend with three decoding settings, in rounds with the order rotating:

- ``today``: every row stays in the batch until the last one ends (the loop at the
  issue's filing);
- ``compact``: finished rows leave the batch and its cache at once, batches one after
  another;
- ``continuous``: ``compact``, and waiting rows join the running batch as rows finish
  (continuous batching, the default);
- ``lookup``: ``continuous`` plus prompt-lookup drafts (``--lookup`` tokens) verified in
  the same pass.

``--chunk 0`` (the default) hands each setting the whole test set at once, as a study's
evaluation does; a chunk of 8 measures rounds of 8 rows with the settings' order rotating.

With ``--adapter RUN`` (a finished run of ``studies/ner.yaml``, e.g. ``runs/ner-demo``) its
trained winner (the prompt + LoRA adapter the study exports) is measured too, through the
adapter backend with the same three settings: the generation the study itself runs.

Reported: examples/s, the ratios, forward passes, tokens through the model, and whether
the generated texts (and entity F1) are identical. Writes
``benchmarks/results/decoding.json``.

    .venv/bin/python benchmarks/decoding.py
    .venv/bin/python benchmarks/decoding.py --examples 0 --adapter runs/ner-demo
    python benchmarks/decoding.py --random-config llama-1b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from scoring import DEFAULT_MODEL, RANDOM_CONFIGS, load  # noqa: E402

#: name -> (lookup tokens (None: --lookup), compact, continuous)
SETTINGS = {
    "today": (0, False, False),
    "compact": (0, True, False),
    "continuous": (0, True, True),
    "lookup": (None, True, True),
}


def measure(runner, cname: str, cand, backends: dict, test, chunk: int, passes: dict) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One candidate through each decoding setting, in rounds of ``chunk`` examples with
    the settings' order rotating."""
    evaluators = {n: runner.evaluator.with_backend(b) for n, b in backends.items()}
    for ev in evaluators.values():  # warm-up: the shared prefix's cache, lazy imports
        ev.evaluate(cand, test[:1], "test")
    seconds = dict.fromkeys(evaluators, 0.0)
    count = dict.fromkeys(evaluators, 0)
    tokens = {n: backends[n].computed_tokens for n in evaluators}
    outputs: dict[str, list[str]] = {n: [] for n in evaluators}
    values: dict[str, list[float]] = {n: [] for n in evaluators}
    names = list(evaluators)
    chunk = chunk or len(test)
    for k, start in enumerate(range(0, len(test), chunk)):
        part = test[start : start + chunk]
        for n in names[k % len(names) :] + names[: k % len(names)]:
            before = passes["n"]
            t = time.perf_counter()
            ev = evaluators[n].evaluate(cand, part, "test")
            seconds[n] += time.perf_counter() - t
            count[n] += passes["n"] - before
            outputs[n] += [pr.output for pr in ev.predictions]
            values[n].append(ev.value * len(part))
    row: dict[str, Any] = {"candidate": cname, "examples": len(test)}
    for n in names:
        row[n] = {
            "examples_per_s": round(len(test) / seconds[n], 3),
            "forward_passes": count[n],
            "computed_tokens": backends[n].computed_tokens - tokens[n],
            "value": round(sum(values[n]) / len(test), 4),
            "same_text_as_today": outputs[n] == outputs["today"],
            "mean_output_chars": round(sum(len(o) for o in outputs[n]) / max(1, len(outputs[n])), 1),
        }
    row["speedup_vs_today"] = {n: round(seconds["today"] / seconds[n], 2) for n in names if n != "today"}
    print(json.dumps(row), flush=True)
    return row


def measure_adapter(run: Path, loaded, runner, settings_of, test, chunk: int, passes: dict) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The run's trained winner (prompt + adapter) through the adapter backend."""
    from optprompt.adapters.artifact import attach_saved
    from optprompt.adapters.backend import AdapterBackend
    from optprompt.prompts import PromptCandidate
    from optprompt.results import load_result

    result = load_result(run)
    if not result.best.artifact:
        raise SystemExit(f"{run}: its winner has no adapter (trial {result.best.trial})")
    fields = {f.name for f in dataclasses.fields(PromptCandidate)}
    cand = PromptCandidate.from_dict({k: v for k, v in result.best.candidate.items() if k in fields})
    peft_model = attach_saved(loaded, Path(run) / result.best.artifact)
    try:
        backends = settings_of(lambda: AdapterBackend(loaded, peft_model, engine="packed"))
        return measure(runner, f"trained winner ({run.name})", cand, backends, test, chunk, passes)
    finally:
        peft_model.unload()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=16, help="test examples per candidate (0: all)")
    p.add_argument("--chunk", type=int, default=0, help="examples per round (0: all at once, as a study)")
    p.add_argument("--lookup", type=int, default=6, help="draft tokens per step for `lookup`")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS))
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=HERE / "results" / "decoding.json")
    p.add_argument("--adapter", type=Path, help="a finished studies/ner.yaml run: measure its trained winner too")
    p.add_argument("--adapter-only", action="store_true", help="with --adapter: leave the two prompts out")
    args = p.parse_args(argv)

    import torch

    from optprompt.config import load_spec
    from optprompt.scoring import CausalLMBackend
    from optprompt.study.runner import StudyRunner

    loaded = load(args)
    spec = load_spec(ROOT / "studies" / "ner.yaml")
    spec = spec.model_copy(update={"output": Path(tempfile.mkdtemp(prefix="optprompt-decoding-"))})
    runner = StudyRunner(spec, model=loaded, progress=False)
    runner.setup()
    task = runner.task
    test = task.test[: args.examples] if args.examples else task.test
    baseline = runner.baseline
    demos = dataclasses.replace(baseline, demo_ids=tuple(e.id for e in task.train[:3]), output_format="inline")
    candidates = {"baseline (lines)": baseline, "3 demos (inline)": demos}
    load_start = os.getloadavg()[0]
    passes = {"n": 0}
    handle = loaded.model.register_forward_pre_hook(lambda *a: passes.__setitem__("n", passes["n"] + 1))

    def settings_of(make):  # type: ignore[no-untyped-def]
        out = {}
        for name, (lookup, compact, continuous) in SETTINGS.items():
            b = make()
            b.lookup_tokens = args.lookup if lookup is None else lookup
            b.compact = compact
            b.continuous = continuous
            out[name] = b
        return out

    rows = []
    try:
        backends = settings_of(lambda: CausalLMBackend(loaded, engine="packed"))
        for cname, cand in candidates.items() if not (args.adapter and args.adapter_only) else []:
            rows.append(measure(runner, cname, cand, backends, test, args.chunk, passes))
        if args.adapter:
            rows.append(measure_adapter(args.adapter, loaded, runner, settings_of, test, args.chunk, passes))
    finally:
        handle.remove()
    machine = {
        "device": str(loaded.device),
        "dtype": str(loaded.dtype),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_at_start": load_start,
        "load_average_1min_at_end": os.getloadavg()[0],
    }
    print(f"\n{'candidate':<20}" + "".join(f"{n + ' ex/s':>17}" for n in SETTINGS) + "  speed-up vs today")
    for r in rows:
        cells = "".join(f"{r[n]['examples_per_s']:>17}" for n in SETTINGS)
        print(f"{r['candidate']:<20}{cells}  {r['speedup_vs_today']}")
    print(f"load average (1 min): start {load_start:.2f}, end {machine['load_average_1min_at_end']:.2f}")
    out = args.output if not args.random_config else args.output.with_name(f"decoding-{args.random_config}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "lookup_tokens": args.lookup, "rows": rows}, indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
