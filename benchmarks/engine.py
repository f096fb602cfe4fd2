"""Scoring-engine benchmark: four workloads, four methods, side by side in one run.

Workloads (requests rendered by optprompt's own ``PromptRenderer`` with the model's chat
template, exactly what a study scores):

- ``a-sentiment``: the demo's 2-label review sentiment (studies/data), the baseline prompt;
- ``b-intent``: 7 intents with 3-6-token labels (``search_screening_event``...), 4
  demonstrations, chat template;
- ``c-choice``: multiple choice, 4 sentence-long options per question, 2 demonstrations;
- ``d-generation``: greedy generation, 2 demonstrations, 16 new tokens.

Methods: ``naive`` (one full forward per example and answer; ``model.generate`` one prompt
at a time for generation), ``lm_eval`` (lm-evaluation-harness ``HFLM.loglikelihood``,
installed on first use), ``padded`` (optprompt's previous engine: padded rows, prefix
cache expanded per batch, copies per answer; ``transformers.generate`` on left-padded
batches for generation) and ``packed`` (today's engine: token trie, tree masks, shared
root once; generation continues a cached shared prefix).

Work is split into rounds of ``--chunk`` examples, every method in turn with the order
rotating, so load on the machine spreads evenly; each method keeps one backend per
workload, so each shared prefix runs once per method. Reported per workload and method:
examples/s, the speed-up of ``packed`` over each other method, tokens through the model,
model FLOP utilisation (2 x parameters x computed tokens per second over the matmul peak
measured at the start: a large fp32 matmul on all cores, or bf16 on CUDA), peak resident
memory above the start, and the largest score difference from ``naive``.

    .venv/bin/python benchmarks/engine.py                     # SmolLM2, CPU (a few minutes)
    .venv/bin/python benchmarks/engine.py --workloads b-intent c-choice --examples 48
    .venv/bin/python benchmarks/engine.py --random-config llama-1b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from engine_data import INTENTS, choice_rows, intent_rows  # noqa: E402
from scoring import RANDOM_CONFIGS  # noqa: E402
from scoring import load as load  # noqa: E402

WORKLOADS = ("a-sentiment", "b-intent", "c-choice", "d-generation")
METHODS = ("naive", "lm_eval", "padded", "packed")


# --- workloads ---------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    kind: str  # "rank" or "generate"
    requests: list[Any] = field(default_factory=list)  # ScoreRequest (rank)
    prompts: list[str] = field(default_factory=list)  # generate
    note: str = ""


def _examples(rows: list[dict], *, text: str = "text", mc: bool = False):  # type: ignore[no-untyped-def]
    from optprompt.tasks import Example

    out = []
    for r in rows:
        if mc:
            out.append(
                Example(r["id"], r["question"], r["options"][r["answer"]], r["answer"], tuple(r["options"]), r["id"])
            )
        else:
            out.append(Example(r["id"], r[text], r["label"], -1, (), r["id"]))
    return out


def build_workloads(loaded, n: int, names: Sequence[str], demos: int = 4) -> list[Workload]:  # type: ignore[no-untyped-def]
    from optprompt.prompts import PromptCandidate, PromptRenderer
    from optprompt.tasks import Task

    fmt = loaded.chat_formatter()
    out = []
    if "a-sentiment" in names:
        rows = [json.loads(x) for x in (ROOT / "studies/data/sentiment.jsonl").read_text().splitlines() if x.strip()]
        labels = ("negative", "positive")
        dev = [e.__class__(e.id, e.input, e.target, labels.index(e.target), (), e.row) for e in _examples(rows[:n])]
        task = Task("sentiment", "classification", [], dev, [], labels, {lbl: lbl for lbl in labels})
        cand = PromptCandidate(
            instruction="Classify the sentiment of the review.",
            template="Review: {input}\nSentiment:",
            verbalizer=tuple((lbl, lbl) for lbl in labels),
        )
        out.append(Workload("a-sentiment", "rank", PromptRenderer(task, fmt).requests(cand, dev), note="2 labels"))
    if "b-intent" in names:
        labels = tuple(INTENTS)
        rows = intent_rows(40 + n, seed=1)
        ex = [e.__class__(e.id, e.input, e.target, labels.index(e.target), (), e.row) for e in _examples(rows)]
        train, dev = ex[:40], ex[40:]
        task = Task("intent", "classification", train, dev, [], labels, {lbl: lbl for lbl in labels})
        cand = PromptCandidate(
            instruction="Classify the user's request into one of these intents: {labels}.",
            template="Request: {input}\nIntent:",
            demo_ids=tuple(e.id for e in random.Random(0).sample(train, demos)),
            verbalizer=tuple((lbl, lbl) for lbl in labels),
        )
        out.append(
            Workload("b-intent", "rank", PromptRenderer(task, fmt).requests(cand, dev), note=f"7 labels, {demos} demos")
        )
    if "c-choice" in names:
        dev = _examples(choice_rows(n, seed=2), mc=True)
        task = Task("choice", "multiple_choice", [], dev, [])
        cand = PromptCandidate(
            instruction="Answer the question with the true sentence.",
            template="Question: {input}\nOptions:\n{options}\nAnswer:",
        )
        out.append(
            Workload("c-choice", "rank", PromptRenderer(task, fmt).requests(cand, dev), note="4 sentence options")
        )
    if "d-generation" in names:
        from generation import prompts

        out.append(Workload("d-generation", "generate", prompts=prompts(n, 0, fmt), note="2 demos, 16 new tokens"))
    return out


# --- measurement -------------------------------------------------------------------
class PeakRSS:
    """Samples the process's resident memory in a thread; ``peak`` above the start."""

    def __init__(self) -> None:
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return 0

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def matmul_peak(device, dtype) -> float:  # type: ignore[no-untyped-def]
    """FLOP/s of a large square matmul on this device (all CPU threads torch uses)."""
    import torch

    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(3):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - t))
    return best


@dataclass
class Result:
    method: str
    seconds: float = 0.0
    examples: int = 0
    computed_tokens: int = 0
    peak_rss_mb: float = 0.0
    scores: list[Any] = field(default_factory=list)
    skipped: str | None = None


def _counting(model) -> tuple[Callable[[], int], Any]:  # type: ignore[no-untyped-def]
    seen = {"n": 0}

    def hook(module, args, kwargs):  # type: ignore[no-untyped-def]
        x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            x = kwargs.get("inputs_embeds")
            seen["n"] += 0 if x is None else x.shape[0] * x.shape[1]
        else:
            seen["n"] += x.numel()

    return (lambda: seen["n"]), model.register_forward_pre_hook(hook, with_kwargs=True)


def rank_methods(loaded, skip: Sequence[str]) -> dict[str, Callable[[list[Any]], tuple[list[Any], int | None]]]:  # type: ignore[no-untyped-def]
    from optprompt.scoring import CausalLMBackend, naive_loglikelihoods

    methods: dict[str, Any] = {"naive": lambda reqs: (naive_loglikelihoods(loaded, reqs), None)}
    if "lm_eval" not in skip:
        from scoring import LmEval, ensure_lm_eval

        why = ensure_lm_eval()
        if why is None:
            lm = LmEval(loaded, batch_size=8)
            methods["lm_eval"] = lambda reqs: (lm.loglikelihoods(reqs), None)
        else:
            methods["lm_eval"] = why
    for engine in ("padded", "packed"):
        backend = CausalLMBackend(loaded, engine=engine)

        def run(reqs, b=backend):  # type: ignore[no-untyped-def]
            before = b.computed_tokens
            return b.loglikelihoods(reqs), b.computed_tokens - before

        methods[engine] = run
    return methods


def generate_methods(loaded, new_tokens: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import torch

    from optprompt.scoring import CausalLMBackend, GenerationSettings
    from optprompt.scoring.backends.causal import cut_at_stop

    settings = GenerationSettings(max_new_tokens=new_tokens, stop=("\n",))
    tokens = CausalLMBackend(loaded, engine="padded").tokens

    def hf(texts: list[str], batch: bool) -> list[str]:
        enc = [tokens.prefix(t) for t in texts]
        groups = [enc] if batch else [[e] for e in enc]
        out = []
        for g in groups:
            L = max(len(s) for s in g)
            ids = torch.full((len(g), L), tokens.pad_id, dtype=torch.long)
            mask = torch.zeros((len(g), L), dtype=torch.long)
            for i, s in enumerate(g):
                ids[i, L - len(s) :] = torch.tensor(s)
                mask[i, L - len(s) :] = 1
            with torch.inference_mode():
                gen = loaded.model.generate(
                    input_ids=ids.to(loaded.device),
                    attention_mask=mask.to(loaded.device),
                    max_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=tokens.pad_id,
                    stop_strings=["\n"],
                    tokenizer=loaded.tokenizer,
                )
            out += [
                cut_at_stop(t, ("\n",)) for t in loaded.tokenizer.batch_decode(gen[:, L:], skip_special_tokens=True)
            ]
        return out

    packed = CausalLMBackend(loaded, engine="packed")

    def new(texts: list[str]) -> tuple[list[str], int]:
        before = packed.computed_tokens
        return packed.generate(texts, settings), packed.computed_tokens - before

    return {
        "naive": lambda texts: (hf(texts, batch=False), None),
        "lm_eval": "lm-eval's loglikelihood does not generate; not compared here",
        "padded": lambda texts: (hf(texts, batch=True), None),
        "packed": new,
    }


def run_workload(loaded, work: Workload, args: argparse.Namespace) -> dict[str, Result]:  # type: ignore[no-untyped-def]
    methods = rank_methods(loaded, args.skip) if work.kind == "rank" else generate_methods(loaded, args.max_new_tokens)
    items = work.requests if work.kind == "rank" else work.prompts
    results = {m: Result(m) for m in METHODS if m not in args.skip}
    for m, r in results.items():
        if isinstance(methods.get(m), str):
            r.skipped = methods[m]
    live = [m for m, r in results.items() if r.skipped is None]
    # warm-up (weights into cache, lazy imports), untimed
    for m in live:
        methods[m](items[:1])
    chunks = [items[i : i + args.chunk] for i in range(0, len(items), args.chunk)]
    count, handle = _counting(loaded.model)
    try:
        for k, chunk in enumerate(chunks):
            order = live[k % len(live) :] + live[: k % len(live)]
            for m in order:
                seen = count()
                with PeakRSS() as mem:
                    t = time.perf_counter()
                    out, computed = methods[m](chunk)
                    dt = time.perf_counter() - t
                r = results[m]
                r.seconds += dt
                r.examples += len(chunk)
                r.computed_tokens += computed if computed is not None else count() - seen
                r.peak_rss_mb = max(r.peak_rss_mb, (mem.peak - mem.start) / 2**20)
                r.scores.extend(out)
    finally:
        handle.remove()
    return results


def summarise(work: Workload, results: dict[str, Result], params: int, peak: float) -> dict[str, Any]:
    rows = {}
    ref = results.get("naive")
    packed = results.get("packed")
    for m, r in results.items():
        if r.skipped:
            rows[m] = {"skipped": r.skipped}
            continue
        eps = r.examples / r.seconds if r.seconds else 0.0
        row: dict[str, Any] = {
            "examples_per_s": round(eps, 3),
            "seconds": round(r.seconds, 2),
            "computed_tokens": r.computed_tokens,
            "mfu": round(2 * params * r.computed_tokens / r.seconds / peak, 4) if r.seconds and peak else None,
            "peak_rss_mb_above_start": round(r.peak_rss_mb, 1),
        }
        if ref and not ref.skipped and work.kind == "rank":
            row["max_abs_diff_vs_naive"] = max(
                (abs(a - b) for x, y in zip(ref.scores, r.scores) for a, b in zip(x, y)), default=0.0
            )
            row["same_argmax_as_naive"] = all(
                max(range(len(x)), key=x.__getitem__) == max(range(len(y)), key=y.__getitem__)
                for x, y in zip(ref.scores, r.scores)
            )
        elif ref and not ref.skipped:
            row["same_text_as_naive"] = sum(a == b for a, b in zip(ref.scores, r.scores)) / max(1, len(r.scores))
        rows[m] = row
    if packed and not packed.skipped:
        for m, r in results.items():
            if m != "packed" and not r.skipped and r.seconds:
                rows["packed"][f"speedup_vs_{m}"] = round(
                    (packed.examples / packed.seconds) / (r.examples / r.seconds), 2
                )
    return {"workload": work.name, "note": work.note, "examples": len(work.requests or work.prompts), "methods": rows}


def print_table(summary: list[dict[str, Any]]) -> None:
    head = f"{'workload':<14}{'method':<9}{'ex/s':>8}{'tokens':>9}{'MFU':>7}{'RSS MB':>8}{'max|d|':>9}"
    print(f"\n{head}  speed-up of packed")
    for s in summary:
        for m, row in s["methods"].items():
            if "skipped" in row:
                print(f"{s['workload']:<14}{m:<9}  skipped: {row['skipped'][:70]}")
                continue
            diff = row.get("max_abs_diff_vs_naive", row.get("same_text_as_naive", ""))
            diff = f"{diff:.1e}" if isinstance(diff, float) and "max_abs_diff_vs_naive" in row else diff
            ups = ", ".join(f"{k.removeprefix('speedup_vs_')} {v}x" for k, v in row.items() if k.startswith("speedup"))
            mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "-"
            print(
                f"{s['workload']:<14}{m:<9}{row['examples_per_s']:>8.2f}{row['computed_tokens']:>9}{mfu:>7}"
                f"{row['peak_rss_mb_above_start']:>8.0f}{diff!s:>9}  {ups}"
            )


def machine_info(loaded, peak: float, params: int, load_start: float | None) -> dict:  # type: ignore[no-untyped-def]
    """Where a benchmark ran: device, dtype, cores, threads, matmul peak, model size, load."""
    import torch

    return {
        "device": str(loaded.device),
        "dtype": str(loaded.dtype),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "matmul_peak_flops": peak,
        "parameters": params,
        "load_average_1min_at_start": load_start,
        "load_average_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=WORKLOADS)
    p.add_argument("--examples", type=int, default=24, help="examples per workload")
    p.add_argument("--chunk", type=int, default=8, help="examples per round")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--skip", nargs="*", default=[], choices=METHODS)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS), help="random weights of this size (GPU speed)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--seed", type=int, default=0, help="random model seed")
    p.add_argument("--output", type=Path, default=HERE / "results" / "engine.json")
    args = p.parse_args(argv)

    import torch

    loaded = load(args)
    params = sum(p.numel() for p in loaded.model.parameters())
    peak = matmul_peak(loaded.device, loaded.dtype)
    print(
        f"model {args.random_config or args.model}: {params / 1e6:.1f}M parameters, {loaded.device} {loaded.dtype}; "
        f"torch threads {torch.get_num_threads()}; measured matmul peak {peak / 1e9:.1f} GFLOP/s",
        flush=True,
    )
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    runs = []
    for work in build_workloads(loaded, args.examples, args.workloads):
        t = time.perf_counter()
        runs.append((work, run_workload(loaded, work, args)))
        print(f"{work.name}: {time.perf_counter() - t:.0f} s", flush=True)
        # Other load on the machine lowers a single reading: the peak is the best one seen.
        peak = max(peak, matmul_peak(loaded.device, loaded.dtype))
    print(f"matmul peak, best of the readings before and after each workload: {peak / 1e9:.1f} GFLOP/s")
    summary = [summarise(work, results, params, peak) for work, results in runs]
    print_table(summary)
    machine = machine_info(loaded, peak, params, load_start)
    start, end = machine["load_average_1min_at_start"], machine["load_average_1min_at_end"]
    print(f"\nload average (1 min) at start {start}, at end {end}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": machine, "workloads": summary}, indent=2) + "\n")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
