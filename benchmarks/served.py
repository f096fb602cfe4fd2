"""Served ranking: the in-process packed engine against a vLLM server, on one workload.

The workload is the engine benchmark's ``b-intent`` (7 intents with 3-6-token labels,
rendered through SmolLM2's chat template: what a study scores), with 4 demonstrations
(~180-token prompts) and with 16 (~560). Four ways to get the same scores:

- ``packed``: optprompt's in-process engine (the shared prompt once, every distinct token
  once), at the machine's torch threads and at one thread (vLLM on CPU computes on one);
- ``served, next-token reads``: optprompt's served backend with ``ranking: next_token``
  (vLLM's ``/generative_scoring``: each input's context first, then each answer token as the
  next token after its prefix, the prompt held by the server's prefix cache);
- ``served, prompt log-probabilities``: ``ranking: prompt_logprobs`` (``echo`` +
  ``logprobs`` on context + answer; vLLM turns its prefix cache off for these, so every
  answer pays for the whole prompt);
- ``bare``: the prompt-log-probability request bodies sent by a plain concurrent httpx2
  loop with nothing of optprompt around it (the server's own speed for that traffic).

It reports examples/s of each, the ratio of the two served rankings, packed/served and
served/bare, and the largest score difference from the packed engine (the same scores,
float32 noise aside).

    python benchmarks/served.py [--url http://127.0.0.1:8000/v1] [--examples 24] [--demos 4 16]

Without ``--url`` a server is started from ``.venv-serve`` (``make serve-env``) and stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tools"))


def _bare(url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Seconds to send ``bodies`` to ``url``/completions with a plain concurrent loop."""
    import httpx2

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx2.AsyncClient(timeout=600, limits=limits) as client:

            async def one(body: dict[str, Any]) -> None:
                async with gate:
                    r = await client.post(f"{url}/completions", json=body)
                    r.raise_for_status()
                    r.json()

            await asyncio.gather(*(one(b) for b in bodies))

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server (default: start one from .venv-serve)")
    p.add_argument("--examples", type=int, default=24)
    p.add_argument("--demos", type=int, nargs="+", default=[4, 16], help="demonstrations per prompt (one run each)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--output", type=Path, default=HERE / "results" / "served.json")
    args = p.parse_args(argv)

    import serve_vllm

    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    model_dir = serve_vllm.smollm2_dir()
    loaded = load_model(str(model_dir), load_plugins(), device="cpu", dtype="float32", progress=False)
    process = None
    url = args.url
    if url is None:
        from optprompt.study.local_postgres import free_port

        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="optprompt-bench-vllm-")) / "server.log"
        process = serve_vllm.start(model_dir, port, log)
        url = f"http://127.0.0.1:{port}/v1"
        print(f"vLLM ready after {serve_vllm.wait_ready(process, url, log):.0f}s", flush=True)
    try:
        runs = [_run(loaded, url, args.examples, demos, args.concurrency) for demos in args.demos]
    finally:
        if process is not None:
            serve_vllm.stop(process)
    result = {"runs": runs, "concurrency": args.concurrency, "cpu_count": os.cpu_count()}
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _run(loaded: Any, url: str, examples: int, demos: int, concurrency: int) -> dict[str, Any]:
    """One workload: the packed engine, both served rankings and the bare loop, side by side."""
    import torch
    from engine import build_workloads

    from optprompt.models import connect
    from optprompt.models.endpoint import Call
    from optprompt.scoring import CausalLMBackend
    from optprompt.scoring.backends import ServedBackend

    work = build_workloads(loaded, examples, ["b-intent"], demos=demos)[0]
    requests = work.requests
    load_start = os.getloadavg()[0]
    local = CausalLMBackend(loaded)
    local.loglikelihoods(requests[:2])  # warm
    threads = torch.get_num_threads()
    t = time.perf_counter()
    want = local.loglikelihoods(requests)
    packed_s = packed1_s = time.perf_counter() - t
    if threads > 1:  # vLLM on a CPU computes on one thread: the packed engine on one too
        torch.set_num_threads(1)
        t = time.perf_counter()
        local.loglikelihoods(requests)
        packed1_s = time.perf_counter() - t
        torch.set_num_threads(threads)

    seconds: dict[str, float] = {}
    diffs: dict[str, float] = {}
    sent: dict[str, list[Call]] = {}
    for ranking in ("next_token", "prompt_logprobs"):
        served = connect({"url": url, "max_concurrency": concurrency, "timeout": 600, "ranking": ranking})
        backend = ServedBackend(served)
        backend.loglikelihoods(requests[:1])  # warm the connection (this example's prompt is cached after)
        calls: list[Call] = []
        many = served.endpoint.many

        def recording(batch, calls=calls, many=many):  # type: ignore[no-untyped-def]
            calls.extend(batch)
            return many(batch)

        served.endpoint.many = recording  # type: ignore[method-assign]
        t = time.perf_counter()
        got = backend.loglikelihoods(requests[1:])
        seconds[ranking] = time.perf_counter() - t
        served.endpoint.many = many  # type: ignore[method-assign]
        sent[ranking] = calls
        diffs[ranking] = max(abs(a - b) for g, w in zip(got, want[1:]) for a, b in zip(g, w))
        served.close()
    bare_s = _bare(url, [c.body for c in sent["prompt_logprobs"] if c.body is not None], concurrency)
    n = len(requests) - 1
    tok = loaded.tokenizer
    prompt_tokens = sum(len(tok(r.prefix + r.suffix, add_special_tokens=False).input_ids) for r in requests) / len(
        requests
    )
    return {
        "workload": f"{work.name} ({work.note}), {n} examples timed, {sum(len(r.continuations) for r in requests)} "
        f"answers; prompts of {prompt_tokens:.0f} tokens on average",
        "requests": {k: len(v) for k, v in sent.items()},
        "examples_per_s": {
            f"packed ({threads} torch threads)": round(len(requests) / packed_s, 3),
            "packed (1 torch thread)": round(len(requests) / packed1_s, 3),
            "served, next-token reads": round(n / seconds["next_token"], 3),
            "served, prompt log-probabilities": round(n / seconds["prompt_logprobs"], 3),
            "bare loop, prompt log-probabilities": round(n / bare_s, 3),
        },
        "next_token_over_prompt_logprobs": round(seconds["prompt_logprobs"] / seconds["next_token"], 2),
        "packed_1_thread_over_next_token": round(seconds["next_token"] / n / (packed1_s / len(requests)), 2),
        "prompt_logprobs_over_bare": round(bare_s / seconds["prompt_logprobs"], 3),
        "max_abs_score_difference": {k: float(f"{v:.3g}") for k, v in diffs.items()},
        "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }


if __name__ == "__main__":
    sys.exit(main())
