"""Adapter scoring benchmark: trained candidates on the packed engine vs the padded scorer.

The workload is ``engine.py``'s (b): 7 intents with 3-6-token labels, 4 demonstrations,
the model's chat template (requests rendered by optprompt's own renderer, exactly what a
study scores). For each PEFT method the same adapter (its fresh weights perturbed with a
little noise, so that LoRA is not the identity) scores the same requests two ways, in
rounds of ``--chunk`` examples with the order alternating:

- ``padded``: today's adapter scorer before this change,
  :func:`optprompt.adapters.backend.choice_logliks` over length-sorted right-padded
  batches (``AdapterBackend(engine="padded")``);
- ``packed``: ``AdapterBackend(engine="packed")``: the token trie, tree masks and cached
  root of the prompt engine, the adapter's virtual tokens in the cached root.

Reported per method: examples/s, the speed-up, tokens through the model, MFU (2 x
parameters x computed tokens / s over the measured matmul peak) and the largest score
difference. Writes ``benchmarks/results/adapters.json``.

    .venv/bin/python benchmarks/adapters.py                       # SmolLM2, CPU
    .venv/bin/python benchmarks/adapters.py --methods lora prompt_tuning prefix_tuning p_tuning
    python benchmarks/adapters.py --random-config llama-1b --device cuda --dtype bfloat16 --examples 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import build_workloads, machine_info, matmul_peak  # noqa: E402
from scoring import DEFAULT_MODEL, RANDOM_CONFIGS, load  # noqa: E402

PARAMS = {
    "lora": {"lora_r": 8},
    "prompt_tuning": {"num_virtual_tokens": 16, "init": "vocab"},
    "prefix_tuning": {"num_virtual_tokens": 16},
    "p_tuning": {"num_virtual_tokens": 16, "encoder_hidden_size": 128},
}


def perturb(peft_model: Any, scale: float = 0.02, seed: int = 0) -> None:
    """Move the fresh adapter off its initialisation (LoRA's B starts at zero)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g).to(p.device, p.dtype) * scale)


def count_tokens(model: Any) -> tuple[dict[str, int], Any]:
    """Counts the tokens each forward pass of ``model`` computes (padding excluded: a 2-D
    mask's ones over the input's positions; a packed row's 4-D mask has no padding)."""
    seen = {"n": 0}

    def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            x = kwargs.get("inputs_embeds")
        if x is None:
            return
        mask = kwargs.get("attention_mask")
        width = x.shape[1]
        if mask is not None and mask.dim() == 2:
            seen["n"] += int(mask[:, -width:].sum())
        else:
            seen["n"] += x.shape[0] * width

    return seen, model.register_forward_pre_hook(hook, with_kwargs=True)


def run_method(loaded: Any, requests: list[Any], method: str, chunk: int) -> dict[str, Any]:
    from optprompt.adapters.backend import AdapterBackend
    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.adapters.methods import attached
    from optprompt.prompts import PromptCandidate

    cand = SoftCandidate.create(
        PromptCandidate(instruction="x", template="{input}"), method, {**PARAMS[method], "lr": 1e-3, "epochs": 1}
    )
    with attached(loaded, cand) as peft_model:
        perturb(peft_model)
        backends = {e: AdapterBackend(loaded, peft_model, engine=e) for e in ("padded", "packed")}
        names = {"padded": "padded", "packed": "packed"}
        for b in backends.values():  # warm-up, untimed (the packed root is then cached, as in a study's dev loop)
            b.loglikelihoods(requests[:1])
            b.computed_tokens = 0
        seconds = dict.fromkeys(backends, 0.0)
        tokens = dict.fromkeys(backends, 0)
        scores: dict[str, list[Any]] = {e: [] for e in backends}
        seen, handle = count_tokens(loaded.model)
        chunks = [requests[i : i + chunk] for i in range(0, len(requests), chunk)]
        for k, part in enumerate(chunks):
            order = list(backends) if k % 2 == 0 else list(reversed(backends))
            for e in order:
                before = seen["n"]
                t = time.perf_counter()
                scores[e].extend(backends[e].loglikelihoods(part))
                seconds[e] += time.perf_counter() - t
                tokens[e] += seen["n"] - before
        handle.remove()
    n = len(requests)
    row: dict[str, Any] = {"method": method}
    for e, name in names.items():
        row[name] = {
            "examples_per_s": round(n / seconds[e], 3),
            "seconds": seconds[e],  # unrounded: the MFU divides by it (a tiny model takes under 5 ms)
            "computed_tokens": tokens[e],
        }
    row["speedup_packed_vs_padded"] = round(seconds["padded"] / seconds["packed"], 2)
    row["max_abs_diff"] = max(abs(a - b) for x, y in zip(scores["padded"], scores["packed"]) for a, b in zip(x, y))
    row["same_argmax"] = all(
        max(range(len(x)), key=x.__getitem__) == max(range(len(y)), key=y.__getitem__)
        for x, y in zip(scores["padded"], scores["packed"])
    )
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["lora", "prompt_tuning"], choices=list(PARAMS))
    p.add_argument("--examples", type=int, default=16)
    p.add_argument("--chunk", type=int, default=4, help="examples per round")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS))
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=HERE / "results" / "adapters.json")
    args = p.parse_args(argv)

    import torch

    loaded = load(args)
    params = sum(x.numel() for x in loaded.model.parameters())
    load_start = os.getloadavg()[0]
    peak = matmul_peak(loaded.device, loaded.dtype)
    (work,) = build_workloads(loaded, args.examples, ["b-intent"])
    print(
        f"{args.random_config or args.model}: {params / 1e6:.1f}M parameters, {loaded.device} {loaded.dtype}, "
        f"threads {torch.get_num_threads()}, matmul peak {peak / 1e9:.1f} GFLOP/s, load {load_start:.2f}",
        flush=True,
    )
    rows = []
    for method in args.methods:
        row = run_method(loaded, work.requests, method, args.chunk)
        peak = max(peak, matmul_peak(loaded.device, loaded.dtype))
        rows.append(row)
        print(json.dumps(row), flush=True)
    for row in rows:
        for name in ("padded", "packed"):
            r = row[name]
            r["mfu"] = round(2 * params * r["computed_tokens"] / r["seconds"] / peak, 4)
    machine = machine_info(loaded, peak, params, load_start)
    print(
        f"\n{'method':<15}{'padded ex/s':>12}{'packed ex/s':>12}{'speed-up':>10}{'tokens pad/packed':>20}{'max|d|':>9}"
    )
    for r in rows:
        print(
            f"{r['method']:<15}{r['padded']['examples_per_s']:>12}{r['packed']['examples_per_s']:>12}"
            f"{r['speedup_packed_vs_padded']:>9}x{r['padded']['computed_tokens']:>11}/{r['packed']['computed_tokens']:<8}"
            f"{r['max_abs_diff']:>9.1e}"
        )
    print(f"load average (1 min): start {load_start:.2f}, end {machine['load_average_1min_at_end']:.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out = args.output if not args.random_config else args.output.with_name(f"adapters-{args.random_config}.json")
    out.write_text(
        json.dumps({"machine": machine, "workload": work.note, "examples": len(work.requests), "rows": rows}, indent=2)
        + "\n"
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
