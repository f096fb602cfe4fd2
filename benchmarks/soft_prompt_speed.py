"""Training speed of each PEFT method: optprompt's trainer steps against a plain PEFT loop.

All compute the same loss on the same batches (cross-entropy over the answers' summed
log-likelihoods, the objective optprompt trains on) through the same PEFT model:

- ``full_logits`` (the baseline, a plain PEFT + transformers loop): one right-padded row
  per (example, answer) holding the whole answer, every position projected onto the
  vocabulary and log-softmaxed, as a causal LM's ``labels`` loss does;
- ``padded`` (optprompt's previous step): :func:`optprompt.adapters.backend.choice_logliks`:
  answers that share their first tokens share a row and only the positions that predict
  answer tokens are projected (``logits_to_keep``);
- ``packed`` (today's step, :class:`optprompt.adapters.engine.PackedAdapter`): the
  batch's shared prompt runs once with gradients, the rest is packed into tree-masked
  rows without padding.

For each method (prompt tuning, prefix tuning, P-tuning, LoRA) the step functions run
interleaved (warm-up, then ``--steps`` timed steps each) on the demo data rendered with the
demo's baseline prompt (``--data intent``: ``engine.py``'s 7-intent workload with 4
demonstrations). Prints steps/s, the ratios, the tokens each step computes (padding
excluded), training MFU (6 x parameters x computed tokens per second over the measured
matmul peak; for adapters on a frozen model the true count is nearer 4 x, as weight
gradients of the base are not computed, so this MFU is the conventional upper figure),
peak GPU memory (CUDA) and the largest loss difference; writes
``benchmarks/results/soft_prompt_speed.json``.

    .venv/bin/python benchmarks/soft_prompt_speed.py                       # SmolLM2, CPU
    python benchmarks/soft_prompt_speed.py --random-config llama-1b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters import count_tokens
from engine import matmul_peak
from scoring import DEFAULT_MODEL, RANDOM_CONFIGS, load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "soft_prompt_speed.json"
PARAMS = {
    "prompt_tuning": {"num_virtual_tokens": 16, "init": "vocab"},
    "prefix_tuning": {"num_virtual_tokens": 16},
    "p_tuning": {"num_virtual_tokens": 16, "encoder_hidden_size": 128},
    "lora": {"lora_r": 8},
}


def full_logits_logliks(model, items, pad_id: int, device) -> list:  # type: ignore[no-untyped-def]
    """The baseline: one row per (item, answer), all logits, log-softmax everywhere."""
    import torch

    rows, owners = [], []
    for i, it in enumerate(items):
        for c in it.choices:
            rows.append((it.context + c, len(it.context), c))
            owners.append(i)
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (seq, _, _) in enumerate(rows):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    logits = logits[:, -width:, :].float()  # drop virtual-token positions (prompt tuning, P-tuning)
    logp = torch.log_softmax(logits, dim=-1)
    sums = []
    for b, (_, start, c) in enumerate(rows):
        pos = torch.arange(start - 1, start - 1 + len(c), device=logp.device)
        sums.append(logp[b, pos, torch.tensor(c, device=logp.device)].sum())
    out, k = [], 0
    for it in items:
        out.append(torch.stack(sums[k : k + len(it.choices)]))
        k += len(it.choices)
    return out


def intent_task(n: int):  # type: ignore[no-untyped-def]
    """``engine.py``'s workload (b) as a training task: 7 intents, 4 demonstrations."""
    import random

    from engine_data import INTENTS, intent_rows

    from optprompt.prompts import PromptCandidate
    from optprompt.tasks import Example, Task

    labels = tuple(INTENTS)
    rows = intent_rows(40 + n, seed=1)
    ex = [Example(r["id"], r["text"], r["label"], labels.index(r["label"]), (), r["id"]) for r in rows]
    task = Task("intent", "classification", ex, [], [], labels, {lbl: lbl for lbl in labels})
    cand = PromptCandidate(
        instruction="Classify the user's request into one of these intents: {labels}.",
        template="Request: {input}\nIntent:",
        demo_ids=tuple(e.id for e in random.Random(0).sample(ex[:40], 4)),
        verbalizer=tuple((lbl, lbl) for lbl in labels),
    )
    return task, cand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--random-config", choices=sorted(RANDOM_CONFIGS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per method and step function")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", nargs="+", default=list(PARAMS), choices=list(PARAMS))
    parser.add_argument("--data", choices=["demo", "intent"], default="demo")
    parser.add_argument("--skip", nargs="*", default=[], choices=["full_logits", "padded"])
    parser.add_argument("--output", type=Path, help="where the JSON goes (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    import torch

    from optprompt.adapters.backend import choice_logliks
    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.adapters.engine import PackedAdapter
    from optprompt.adapters.methods import attached, trainable_parameters
    from optprompt.adapters.training import loss_of, training_items
    from optprompt.config import load_spec
    from optprompt.plugins import load_plugins
    from optprompt.prompts import PromptRenderer
    from optprompt.study.runner import StudyRunner
    from optprompt.tasks import build_task

    loaded = load(args)
    spec = load_spec(ROOT / "studies" / "sentiment.yaml")
    task = build_task(spec.task, plugins=load_plugins(), seed=spec.seed, base_dir=spec.base_dir)
    runner = StudyRunner(spec, model=loaded, progress=False)
    runner.setup()
    baseline = runner.baseline
    if args.data == "intent":
        task, baseline = intent_task((args.steps + 1) * args.batch_size)
    renderer = PromptRenderer(task, loaded.chat_formatter() if loaded.has_chat_template else None)
    n_params = sum(x.numel() for x in loaded.model.parameters())
    # The 6N convention counts the output projection for every token; optprompt projects
    # only positions that predict answer tokens, so the figure without the (tied)
    # embedding matrix is reported beside it.
    n_body = n_params - loaded.model.get_input_embeddings().weight.numel()
    load_start = os.getloadavg()[0]
    flops_peak = matmul_peak(loaded.device, loaded.dtype)
    pad = loaded.tokenizer.pad_token_id or 0
    cuda = loaded.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        cand = SoftCandidate.create(baseline, method, {**PARAMS[method], "lr": 1e-4, "epochs": 1})
        items, targets = training_items(
            cand, task.train, renderer, loaded.tokenizer, chat=renderer.chat_formatter is not None
        )
        n = args.batch_size
        batches = [list(range(s, s + n)) for s in range(0, (args.steps + 1) * n, n)]
        with attached(loaded, cand, task.instruction) as peft_model:
            params = [p for p in peft_model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=1e-4)
            keep = "logits_to_keep" in inspect.signature(loaded.model.forward).parameters
            packed = PackedAdapter(peft_model, budget=2048 if cuda else 384, keep_arg=keep)
            fns = {
                "full_logits": full_logits_logliks,
                "padded": choice_logliks,
                "packed": lambda model, items, pad_id, device, p=packed: p.choice_logliks(items),
            }
            fns = {k: v for k, v in fns.items() if k not in args.skip}
            seconds = dict.fromkeys(fns, 0.0)
            tokens = dict.fromkeys(fns, 0)
            seen, handle = count_tokens(loaded.model)
            peak = dict.fromkeys(fns, 0)
            diffs = []
            for k, batch in enumerate(batches):
                bi = [items[i % len(items)] for i in batch]
                bt = [targets[i % len(items)] for i in batch]
                losses = {}
                for name, fn in fns.items():  # interleaved: same batch, same load
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    started = time.perf_counter()
                    before = seen["n"]
                    with autocast:
                        loss = loss_of(fn(peft_model, bi, pad, loaded.device), bt)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cuda:
                        torch.cuda.synchronize()
                        peak[name] = max(peak[name], torch.cuda.max_memory_allocated())
                    if k > 0:  # the first batch warms up
                        seconds[name] += time.perf_counter() - started
                        tokens[name] += seen["n"] - before
                    losses[name] = float(loss)
                optimizer.zero_grad(set_to_none=True)  # no update: all see the same weights
                diffs.append(max(abs(v - losses["packed"]) for v in losses.values()))
            handle.remove()
            flops_peak = max(flops_peak, matmul_peak(loaded.device, loaded.dtype))
            row = {
                "method": method,
                "data": args.data,
                "trainable_parameters": trainable_parameters(peft_model),
                "steps": args.steps,
                "batch_size": n,
                "steps_per_second": {k: round(args.steps / v, 3) for k, v in seconds.items()},
                "tokens_per_step": {k: round(v / args.steps) for k, v in tokens.items()},
                "mfu": {k: round(6 * n_params * tokens[k] / seconds[k] / flops_peak, 4) for k in seconds},
                "mfu_without_embeddings": {
                    k: round(6 * n_body * tokens[k] / seconds[k] / flops_peak, 4) for k in seconds
                },
                "ratio_packed_vs": {k: round(seconds[k] / seconds["packed"], 2) for k in seconds if k != "packed"},
                "max_loss_difference": max(diffs),
            }
            if cuda:
                row["peak_memory_gib"] = {k: round(v / 2**30, 2) for k, v in peak.items()}
            rows.append(row)
            print(json.dumps(row))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": str(loaded.device),
            "matmul_peak_flops": flops_peak,
            "parameters": n_params,
            "load_average_1min_at_start": load_start,
            "load_average_1min_at_end": os.getloadavg()[0],
            **({"gpu": torch.cuda.get_device_name(loaded.device)} if cuda else {}),
        },
        "model": loaded.ref,
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "note": "a step = forward + backward of one batch (optimizer update excluded, identical for all); "
        "MFU = 6 x parameters x computed tokens (padding excluded) / s / matmul peak",
        "rows": rows,
    }
    out = args.output or (
        RESULTS if not args.random_config else RESULTS.with_name(f"soft_prompt_speed-{args.random_config}.json")
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    names = list(rows[0]["steps_per_second"]) if rows else []
    print(
        f"\n{'method':<15}{'trainable':>10}" + "".join(f"{n + ' steps/s':>20}{'MFU':>7}" for n in names) + "  packed vs"
    )
    for r in rows:
        cells = "".join(f"{r['steps_per_second'][n]:>20}{r['mfu'][n]:>7.1%}" for n in names)
        ratios = ", ".join(f"{k} {v}x" for k, v in r["ratio_packed_vs"].items())
        print(f"{r['method']:<15}{r['trainable_parameters']:>10}{cells}  {ratios}")
    print(f"matmul peak {flops_peak / 1e9:.1f} GFLOP/s; load average {load_start:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
