"""Training speed of each PEFT method: optprompt's trainer step against a full-logits step.

Both compute the same loss on the same batches (cross-entropy over the answers' summed
log-likelihoods, the objective optprompt trains on) through the same PEFT model:

- ``full_logits`` (the baseline): one right-padded row per (example, answer) holding the
  whole answer, every position projected onto the vocabulary and log-softmaxed, as a
  causal LM's ``labels`` loss does;
- ``optprompt``: :func:`optprompt.adapters.backend.choice_logliks`: answers that share
  their first tokens share a row and only the positions that predict answer tokens are
  projected (``logits_to_keep``).

For each method (prompt tuning, prefix tuning, P-tuning, LoRA) the two step functions run
interleaved (warm-up, then ``--steps`` timed steps each) on the demo data rendered with the
demo's baseline prompt. Prints steps/s, the ratio, peak GPU memory (CUDA) and the largest
loss difference; writes ``benchmarks/results/soft_prompt_speed.json``.

    .venv/bin/python benchmarks/soft_prompt_speed.py                       # SmolLM2, CPU
    python benchmarks/soft_prompt_speed.py --random-config llama-1b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    args = parser.parse_args(argv)

    import torch

    from optprompt.adapters.backend import choice_logliks
    from optprompt.adapters.candidate import SoftCandidate
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
    baseline = runner._baseline(chat=loaded.has_chat_template)
    renderer = PromptRenderer(task, loaded.chat_formatter() if loaded.has_chat_template else None)
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
            fns = {"full_logits": full_logits_logliks, "optprompt": choice_logliks}
            seconds = dict.fromkeys(fns, 0.0)
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
                    with autocast:
                        loss = loss_of(fn(peft_model, bi, pad, loaded.device), bt)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cuda:
                        torch.cuda.synchronize()
                        peak[name] = max(peak[name], torch.cuda.max_memory_allocated())
                    if k > 0:  # the first batch warms up
                        seconds[name] += time.perf_counter() - started
                    losses[name] = float(loss)
                optimizer.zero_grad(set_to_none=True)  # no update: both see the same weights
                diffs.append(abs(losses["full_logits"] - losses["optprompt"]))
            row = {
                "method": method,
                "trainable_parameters": trainable_parameters(peft_model),
                "steps": args.steps,
                "batch_size": n,
                "steps_per_second": {k: round(args.steps / v, 3) for k, v in seconds.items()},
                "ratio_optprompt_vs_full_logits": round(seconds["full_logits"] / seconds["optprompt"], 2),
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
            **({"gpu": torch.cuda.get_device_name(loaded.device)} if cuda else {}),
        },
        "model": loaded.ref,
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "note": "a step = forward + backward of one batch (optimizer update excluded, identical for both)",
        "rows": rows,
    }
    out = RESULTS if not args.random_config else RESULTS.with_name(f"soft_prompt_speed-{args.random_config}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'method':<15} {'trainable':>10} {'full-logits steps/s':>20} {'optprompt steps/s':>18} {'ratio':>6}")
    for r in rows:
        sps = r["steps_per_second"]
        print(
            f"{r['method']:<15} {r['trainable_parameters']:>10} {sps['full_logits']:>20} "
            f"{sps['optprompt']:>18} {r['ratio_optprompt_vs_full_logits']:>6}"
        )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
