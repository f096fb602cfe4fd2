"""Scoring benchmark: optprompt's scorer against a naive loop and lm-evaluation-harness.

All three methods score the same rendered classification requests (see workload.py), in
one run, on one loaded model:

- ``naive``: :func:`optprompt.scoring.naive_loglikelihoods`, one full forward pass per
  (example, answer), no batching, no reuse;
- ``lm_eval``: lm-evaluation-harness's ``HFLM.loglikelihood`` wrapping the same model
  object (installed into this interpreter's environment on first use);
- ``optprompt``: the causal backend's ``loglikelihoods`` (shared-prefix KV reuse), a new
  instance per candidate.

Each method gets a warm-up pass, then a timed pass. The table gives throughput, the
ratios, and agreement with ``naive``; ``benchmarks/results/scoring.json`` keeps it all.
Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from workload import Workload, build_workload

RESULTS = Path(__file__).resolve().parent / "results" / "scoring.json"
DEFAULT_MODEL = "smollm2-135m-instruct"
# Dense bf16 peak by GPU name (substring match), for model FLOP utilisation.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}
# Randomly initialised llama-style models for GPU runs (speed does not depend on weights).
RANDOM_CONFIGS: dict[str, dict[str, int]] = {
    # A smoke test of a benchmark script in seconds (no figure from it means anything).
    "llama-tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "llama-0.5b": dict(
        hidden_size=1024,
        intermediate_size=5120,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=8,
    ),
    "llama-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
    ),
    "llama-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
    ),
}
METHODS = ("naive", "lm_eval", "optprompt")


# --- model -------------------------------------------------------------------------
def load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The model under test, as an optprompt ``LoadedModel``."""
    from optprompt.models import (
        LoadedModel,
        load_model,
        resolve_model_path,
        select_device,
        select_dtype,
    )
    from optprompt.plugins import load_plugins

    plugins = load_plugins()
    if not args.random_config:
        return load_model(args.model, plugins, device=args.device, dtype=args.dtype, progress=True)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    _, tok_path = resolve_model_path(DEFAULT_MODEL, plugins)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_path))
    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **RANDOM_CONFIGS[args.random_config],
    )
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(
        ref=f"random:{args.random_config}",
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        fingerprint=f"random:{args.random_config}:seed{args.seed}",
    )


def scorer_class():  # type: ignore[no-untyped-def]
    """optprompt's causal scorer (``CausalLMBackend``; ``CausalLMScorer`` in older trees)."""
    import optprompt.scoring as scoring

    return getattr(scoring, "CausalLMBackend", None) or scoring.CausalLMScorer


# --- lm-evaluation-harness ---------------------------------------------------------
def ensure_lm_eval() -> str | None:
    """Import lm_eval, installing it with pip first if needed; None, or why it is missing.

    torch is pinned to the installed version with a constraints file, so the install
    can never replace it.
    """
    try:
        import lm_eval  # noqa: F401

        return None
    except ImportError:
        pass
    torch_version = metadata.version("torch")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"torch=={torch_version}\n")
    print(
        f"installing lm-eval into {sys.prefix} (torch pinned to {torch_version})...",
        file=sys.stderr,
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "lm-eval", "-c", f.name],
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        return f"pip install lm-eval failed: {(proc.stderr or proc.stdout).strip()[-400:]}"
    if metadata.version("torch") != torch_version:
        return f"pip replaced torch {torch_version} with {metadata.version('torch')}"
    importlib.invalidate_caches()
    try:
        import lm_eval  # noqa: F401
    except ImportError as e:
        return f"lm_eval installed but does not import: {e}"
    return None


class LmEval:
    """lm-evaluation-harness's HF model around the already loaded model."""

    def __init__(self, loaded, batch_size: int | str) -> None:  # type: ignore[no-untyped-def]
        import logging

        from lm_eval.models.huggingface import HFLM

        for name in ("lm-eval", "lm_eval"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # A copy, so that lm-eval's pad-token set-up cannot touch optprompt's tokenizer.
        self.lm = HFLM(
            pretrained=loaded.model,
            tokenizer=copy.deepcopy(loaded.tokenizer),
            batch_size=batch_size,
            backend="causal",
        )

    @staticmethod
    def pairs(requests: Sequence[Any]) -> list[tuple[str, str]]:
        """(context, continuation) per answer: the whole prompt, then the answer text."""
        return [(r.prefix + r.suffix, c) for r in requests for c in r.continuations]

    def loglikelihoods(self, requests: Sequence[Any]) -> list[list[float]]:
        from lm_eval.api.instance import Instance

        pairs = self.pairs(requests)
        instances = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
        flat = [ll for ll, _greedy in self.lm.loglikelihood(instances, disable_tqdm=True)]
        return _unflatten(flat, requests)

    def encode(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """The (context, continuation) token ids lm-eval's ``loglikelihood`` scores."""
        return self.lm._encode_pair(context, continuation)

    def token_loglikelihoods(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[float]:
        """Scores of exact token ids (lm-eval's step after tokenising), for the agreement probe."""
        reqs = [(("", ""), ctx, cont) for ctx, cont in pairs]
        return [ll for ll, _ in self.lm._loglikelihood_tokens(reqs, disable_tqdm=True)]


def _unflatten(flat: list[float], requests: Sequence[Any]) -> list[list[float]]:
    out, i = [], 0
    for r in requests:
        out.append(flat[i : i + len(r.continuations)])
        i += len(r.continuations)
    return out


# --- measurement -------------------------------------------------------------------
@dataclass
class Counter:
    """Counts forward calls and input positions (padding included) through a model."""

    calls: int = 0
    rows: int = 0
    positions: int = 0

    def __call__(self, module, args, kwargs) -> None:  # type: ignore[no-untyped-def]
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.calls += 1
            self.rows += ids.shape[0]
            self.positions += ids.numel()


@dataclass
class Result:
    method: str
    seconds: float = 0.0
    computed_tokens: int = 0
    tokens_note: str = ""
    forward_calls: int = 0
    forward_rows: int = 0
    forward_positions: int = 0
    per_candidate_seconds: list[float] = field(default_factory=list)
    scores: list[list[float]] = field(default_factory=list)
    skipped: str | None = None


def timed(loaded, run: Callable[[], tuple[list[list[float]], int]], into: Result, candidate: int) -> None:  # type: ignore[no-untyped-def]
    """Run once, adding its time, scores and counts to ``into``."""
    import torch

    counter = Counter()
    handle = loaded.model.register_forward_pre_hook(counter, with_kwargs=True)
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else (lambda: None)
    try:
        sync()
        t0 = time.perf_counter()
        scores, tokens = run()
        sync()
        seconds = time.perf_counter() - t0
    finally:
        handle.remove()
    into.seconds += seconds
    into.per_candidate_seconds[candidate] += seconds
    into.computed_tokens += tokens or counter.positions
    into.forward_calls += counter.calls
    into.forward_rows += counter.rows
    into.forward_positions += counter.positions
    into.scores.extend(scores)


def warm_up_request(work: Workload, tokenizer) -> Any:  # type: ignore[no-untyped-def]
    """A short warm-up: the last candidate's first example, its shortest and longest answer."""
    r = work.requests[-1][0]
    by_len = sorted(r.continuations, key=lambda c: len(tokenizer(c, add_special_tokens=False).input_ids))
    return dataclasses.replace(r, continuations=tuple(dict.fromkeys([by_len[0], by_len[-1]])))


def run_methods(
    loaded,  # type: ignore[no-untyped-def]
    work: Workload,
    args: argparse.Namespace,
    lm: LmEval | None,
    lm_skip: str | None,
) -> dict[str, Result]:
    """Warm each method up, then score chunk by chunk, every method in turn.

    A chunk is ``args.chunk`` examples of one candidate (0: all of them). Interleaving,
    with the order rotating each round, spreads drift and other load on the machine
    evenly over the methods. optprompt keeps one scorer per candidate, so its prefix
    still runs once per candidate.
    """
    from optprompt.scoring import naive_loglikelihoods

    Scorer = scorer_class()
    scorers: dict[int, Any] = {}

    def optprompt_run(c: int, reqs: list[Any]) -> tuple[list[list[float]], int]:
        if c not in scorers:
            scorers[c] = Scorer(loaded, batch_tokens=args.batch_tokens)
        before = scorers[c].computed_tokens
        return scorers[c].loglikelihoods(reqs), scorers[c].computed_tokens - before

    runners: dict[str, Callable[[int, list[Any]], tuple[list[list[float]], int]]] = {
        "naive": lambda c, reqs: (naive_loglikelihoods(loaded, reqs), 0),
        "lm_eval": lambda c, reqs: (lm.loglikelihoods(reqs), 0),
        "optprompt": optprompt_run,
    }
    notes = {
        "naive": "full sequence of every (example, answer) pair",
        "lm_eval": "unpadded rows lm-eval runs: one per distinct context+answer[:-1]",
        "optprompt": "scorer.computed_tokens",
    }
    results: dict[str, Result] = {}
    for method in METHODS:
        if method in args.skip:
            continue
        if method == "lm_eval" and lm is None:
            results[method] = Result(method, skipped=lm_skip or "skipped")
            continue
        results[method] = Result(method, tokens_note=notes[method])
        results[method].per_candidate_seconds = [0.0] * len(work.requests)
    active = [m for m, r in results.items() if not r.skipped]
    warm = [warm_up_request(work, loaded.tokenizer)]
    for method in active:
        print(f"[{method}] warm-up", file=sys.stderr, flush=True)
        runners[method](-1, warm)
    rounds = [
        (c, reqs[i : i + (args.chunk or len(reqs))])
        for c, reqs in enumerate(work.requests)
        for i in range(0, len(reqs), args.chunk or len(reqs))
    ]
    for k, (c, chunk) in enumerate(rounds):
        for method in active[k % len(active) :] + active[: k % len(active)]:
            timed(loaded, functools.partial(runners[method], c, chunk), results[method], c)
        done = ", ".join(f"{m} {results[m].seconds:.1f} s" for m in active)
        print(f"round {k + 1}/{len(rounds)}: {done}", file=sys.stderr, flush=True)
    if "lm_eval" in active:
        res = results["lm_eval"]
        counted = [lm_eval_rows(lm, chunk) for _, chunk in rounds]
        rows = sum(r for r, _ in counted)
        res.computed_tokens = sum(t for _, t in counted)
        if rows != res.forward_rows:  # lm-eval changed how it groups requests
            res.tokens_note += f" (estimate: {rows} such rows, but {res.forward_rows} rows ran)"
    return results


def lm_eval_rows(lm: LmEval, requests) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Rows and unpadded tokens lm-eval pushes through the model.

    With its logits cache (the default) lm-eval runs one row per distinct
    ``context + continuation[:-1]``: answers of one token share their example's row.
    """
    rows = set()
    for ctx, cont in LmEval.pairs(requests):
        c_ids, k_ids = lm.encode(ctx, cont)
        rows.add(tuple(c_ids + k_ids[:-1]))
    return len(rows), sum(len(r) for r in rows)


# --- agreement ---------------------------------------------------------------------
def agreement(ref: list[list[float]], other: list[list[float]]) -> dict[str, Any]:
    diffs = [abs(a - b) for ra, rb in zip(ref, other, strict=True) for a, b in zip(ra, rb, strict=True)]
    argmax = [max(range(len(r)), key=r.__getitem__) for r in ref]
    argmax_o = [max(range(len(r)), key=r.__getitem__) for r in other]
    differ = sum(a != b for a, b in zip(argmax, argmax_o, strict=True))
    return {
        "max_abs_diff": max(diffs),
        "mean_abs_diff": sum(diffs) / len(diffs),
        "argmax_identical": differ == 0,
        "argmax_differs": differ,
        "examples": len(ref),
    }


def lm_eval_tokenisation(
    loaded,
    lm: LmEval,
    work: Workload,
    naive: list[list[float]],  # type: ignore[no-untyped-def]
    theirs: list[list[float]],
) -> dict[str, Any]:
    """Where lm-eval's tokens differ from optprompt's, and its scores from naive's, by template.

    optprompt tokenises prefix, suffix and answer separately and concatenates; lm-eval
    tokenises context+answer whole, and moves whitespace ending the context (the chat
    template's newline after ``assistant``) into the scored continuation.
    """
    tokens = scorer_class()(loaded).tokens
    out: dict[str, dict[str, Any]] = {}
    i = 0
    for reqs, template in zip(work.requests, work.templates, strict=True):
        stats = out.setdefault(
            template,
            {
                "answers": 0,
                "sequence_differs": 0,
                "scored_span_differs": 0,
                "max_abs_diff_vs_naive": 0.0,
            },
        )
        for r in reqs:
            base = tokens.prefix(r.prefix) + tokens.encode(r.suffix)
            for j, c in enumerate(r.continuations):
                ours = tokens.continuation(c)
                ctx, cont = lm.encode(r.prefix + r.suffix, c)
                stats["answers"] += 1
                stats["sequence_differs"] += ctx + cont != base + ours
                stats["scored_span_differs"] += cont != ours
                diff = abs(naive[i][j] - theirs[i][j])
                stats["max_abs_diff_vs_naive"] = max(stats["max_abs_diff_vs_naive"], diff)
            i += 1
    return out


def lm_eval_exact_probe(loaded, lm: LmEval, work: Workload, naive: list[list[float]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """lm-eval given optprompt's exact token ids (first example of each candidate), untimed."""
    tokens = scorer_class()(loaded).tokens
    pairs, ref, offset = [], [], 0
    for reqs in work.requests:
        r = reqs[0]
        base = tokens.prefix(r.prefix) + tokens.encode(r.suffix)
        pairs += [(base, tokens.continuation(c)) for c in r.continuations]
        ref += naive[offset]
        offset += len(reqs)
    got = lm.token_loglikelihoods(pairs)
    return {
        "pairs": len(pairs),
        "max_abs_diff_vs_naive": max(abs(a - b) for a, b in zip(ref, got, strict=True)),
    }


# --- report ------------------------------------------------------------------------
def machine(loaded) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import torch
    import transformers

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
    }
    try:
        info["lm_eval"] = metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        info["lm_eval"] = None
    if hasattr(os, "getloadavg"):
        info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    if loaded.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(loaded.device)
    return info


def peak_flops(loaded, override: float | None) -> float | None:  # type: ignore[no-untyped-def]
    if override:
        return override
    if loaded.device.type != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(loaded.device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def summarise(
    loaded,
    work: Workload,
    results: dict[str, Result],
    params: int,  # type: ignore[no-untyped-def]
    peak: float | None,
) -> dict[str, Any]:
    n_examples = len(work.all_requests)
    methods: dict[str, Any] = {}
    naive = results.get("naive")
    for name, res in results.items():
        if res.skipped:
            methods[name] = {"skipped": res.skipped}
            continue
        m = {
            "seconds": round(res.seconds, 3),
            "examples_per_s": n_examples / res.seconds,
            "tokens_per_s": res.computed_tokens / res.seconds,
            "computed_tokens": res.computed_tokens,
            "computed_tokens_counted_as": res.tokens_note,
            "forward_calls": res.forward_calls,
            "forward_rows": res.forward_rows,
            "forward_positions_incl_padding": res.forward_positions,
            "seconds_per_candidate": [round(x, 3) for x in res.per_candidate_seconds],
        }
        if peak:
            m["mfu"] = 2 * params * res.computed_tokens / res.seconds / peak
        if naive and not naive.skipped and name != "naive":
            m["vs_naive"] = agreement(naive.scores, res.scores)
        methods[name] = m
    ratios: dict[str, Any] = {}
    opt = methods.get("optprompt", {})
    for other in ("naive", "lm_eval"):
        o = methods.get(other, {})
        if "examples_per_s" in opt and "examples_per_s" in o:
            ratios[f"optprompt/{other}"] = {
                "examples_per_s": opt["examples_per_s"] / o["examples_per_s"],
                "tokens_per_s": opt["tokens_per_s"] / o["tokens_per_s"],
                "computed_tokens": opt["computed_tokens"] / o["computed_tokens"],
            }
    conts = [len(r.continuations) for r in work.all_requests]
    multi = sum(
        any(len(loaded.tokenizer(c, add_special_tokens=False).input_ids) > 1 for c in r.continuations)
        for r in work.all_requests
    )
    sizes = {
        "candidates": len(work.requests),
        "examples_per_candidate": len(work.requests[0]),
        "requests": n_examples,
        "answers": sum(conts),
        "labels_per_candidate": work.n_labels,
        "requests_with_multi_token_answers": multi,
        "prefix_tokens": {
            "min": min(work.prefix_tokens),
            "max": max(work.prefix_tokens),
            "mean": round(sum(work.prefix_tokens) / len(work.prefix_tokens), 1),
        },
        "input_tokens": {
            "min": min(work.input_tokens),
            "max": max(work.input_tokens),
            "mean": round(sum(work.input_tokens) / len(work.input_tokens), 1),
        },
    }
    return {"sizes": sizes, "methods": methods, "ratios": ratios}


def print_table(summary: dict[str, Any], model: dict[str, Any]) -> None:
    methods, ratios, sizes = summary["methods"], summary["ratios"], summary["sizes"]
    has_mfu = any("mfu" in m for m in methods.values())
    header = (
        ["method", "seconds", "examples/s", "computed tokens", "tokens/s"]
        + (["MFU"] if has_mfu else [])
        + ["max |Δ| vs naive", "argmax = naive"]
    )
    rows = []
    for name, m in methods.items():
        if "skipped" in m:
            rows.append([name, "skipped: " + m["skipped"][:60]] + [""] * (len(header) - 2))
            continue
        v = m.get("vs_naive")
        row = [
            name,
            f"{m['seconds']:.2f}",
            f"{m['examples_per_s']:.2f}",
            f"{m['computed_tokens']:,}",
            f"{m['tokens_per_s']:,.0f}",
        ] + ([f"{m['mfu']:.1%}"] if has_mfu else [])
        if name == "naive":
            row += ["(reference)", ""]
        elif v is None:
            row += ["naive not run", ""]
        else:
            differs = f"no ({v['argmax_differs']}/{v['examples']})"
            row += [f"{v['max_abs_diff']:.2e}", "yes" if v["argmax_identical"] else differs]
        rows.append(row)
    title = (
        f"Scoring: {model['name']} ({model['params'] / 1e6:.0f}M params), "
        f"{sizes['candidates']} candidates x {sizes['examples_per_candidate']} examples, "
        f"{sizes['answers']} answers"
    )
    ratio_lines = [
        f"{k}: {v['examples_per_s']:.2f}x examples/s, {v['tokens_per_s']:.2f}x tokens/s, "
        f"{v['computed_tokens']:.3f}x tokens computed"
        for k, v in ratios.items()
    ]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console = Console(width=None if sys.stdout.isatty() else 150)
        console.print(table)
        for line in ratio_lines:
            console.print(line)
    except ImportError:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        print(title)
        for row in [header, *rows]:
            print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))
        print("\n".join(ratio_lines))


# --- entry point -------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--candidates", type=int, default=2, help="prompt candidates (each its own shared prefix)")
    p.add_argument("--examples", type=int, default=16, help="dev examples per candidate")
    p.add_argument(
        "--full",
        action="store_true",
        help="the full workload: 20 candidates x 200 examples (hours for naive on CPU)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="optprompt model name, local directory or hub id")
    p.add_argument(
        "--random-config",
        choices=sorted(RANDOM_CONFIGS),
        help="a randomly initialised llama-style model with SmolLM2's tokenizer instead of --model",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1...")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="auto: bfloat16 on CUDA, float32 elsewhere",
    )
    p.add_argument("--batch-tokens", type=int, default=4096, help="optprompt's rows x longest row per forward")
    p.add_argument(
        "--lm-eval-batch-size",
        default=None,
        help="lm-eval batch size: an integer or 'auto' (default: 8 on CPU, 64 on CUDA)",
    )
    p.add_argument("--skip", nargs="*", default=[], choices=METHODS, help="methods to leave out")
    p.add_argument(
        "--peak-flops",
        type=float,
        default=None,
        help="peak FLOP/s for MFU (default: 989e12 on H100/H200, else no MFU)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="examples per interleaving round (0: whole candidates; default: 8 on CPU, 0 on CUDA)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="workload (and random model) seed")
    p.add_argument("--output", type=Path, default=RESULTS, help="where the JSON results go")
    args = p.parse_args(argv)
    if args.full:
        args.candidates, args.examples = 20, 200
    if args.candidates < 1 or args.examples < 1:
        p.error("--candidates and --examples must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load(args)
    params = sum(p.numel() for p in loaded.model.parameters())
    model_info = {"name": loaded.ref, "params": params, "random_weights": bool(args.random_config)}
    print(
        f"model {loaded.ref}: {params / 1e6:.0f}M params on {loaded.device} ({loaded.dtype})",
        file=sys.stderr,
    )
    work = build_workload(
        loaded.tokenizer,
        loaded.chat_formatter(),
        n_candidates=args.candidates,
        n_examples=args.examples,
        seed=args.seed,
    )

    lm, lm_skip = None, None
    if "lm_eval" not in args.skip:
        lm_skip = ensure_lm_eval()
        if lm_skip is None:
            bs = args.lm_eval_batch_size or (64 if loaded.device.type == "cuda" else 8)
            lm = LmEval(loaded, int(bs) if str(bs).isdigit() else bs)
            model_info["lm_eval_batch_size"] = bs
        else:
            print(f"lm_eval left out: {lm_skip}", file=sys.stderr)
    model_info["optprompt_batch_tokens"] = args.batch_tokens

    if args.chunk is None:
        args.chunk = 0 if loaded.device.type == "cuda" else 8
    model_info["chunk"] = args.chunk
    load_start = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    with torch.inference_mode():
        results = run_methods(loaded, work, args, lm, lm_skip)
    summary = summarise(loaded, work, results, params, peak_flops(loaded, args.peak_flops))
    naive = results.get("naive")
    if lm is not None and naive is not None and not naive.skipped and "lm_eval" in results:
        summary["lm_eval_tokenisation"] = {
            "note": "optprompt tokenises prefix, suffix and answer apart; lm-eval tokenises "
            "context+answer whole and moves trailing whitespace of the context (the newline "
            "after 'assistant') into the scored continuation",
            "by_template": lm_eval_tokenisation(loaded, lm, work, naive.scores, results["lm_eval"].scores),
            "exact_token_probe": lm_eval_exact_probe(loaded, lm, work, naive.scores),
        }
    report = {
        "benchmark": "scoring",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])],
        "machine": {**machine(loaded), "load_average_1min_at_start": load_start},
        "model": model_info,
        "workloads": {"classification": summary},
    }
    print_table(summary, model_info)
    if "lm_eval_tokenisation" in summary:
        t = summary["lm_eval_tokenisation"]
        for template, s in t["by_template"].items():
            n = s["answers"]
            print(
                f"lm-eval vs optprompt tokens, template {template!r}: "
                f"{s['sequence_differs']}/{n} sequences differ, "
                f"{s['scored_span_differs']}/{n} scored spans differ; "
                f"max |Δ| vs naive {s['max_abs_diff_vs_naive']:.2e}"
            )
        probe = t["exact_token_probe"]
        print(
            f"lm-eval given optprompt's token ids ({probe['pairs']} answers): "
            f"max |Δ| vs naive {probe['max_abs_diff_vs_naive']:.2e}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.output)
    m = report["machine"]
    print(
        f"machine: {m['cpu_model']}, {m['cores']} cores, torch {m['torch']}, {m['device']}; "
        f"1-min load average {load_start} at start, {m.get('load_average_1min_at_end')} at end "
        "(other work on the machine skews absolute times; ratios are interleaved per candidate)"
    )
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
