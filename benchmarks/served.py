"""Served ranking: the in-process packed engine against a vLLM server, on one workload.

The workload is the engine benchmark's ``b-intent`` (7 intents, 4 demonstrations, rendered
through SmolLM2's chat template: what a study scores). Three ways to get the same scores:

- ``packed``: optprompt's in-process engine (the shared prompt once, every distinct token
  once), at the machine's torch threads and at one thread (vLLM on CPU computes on one);
- ``served``: optprompt's served backend against vLLM (token ids, ``echo`` + ``logprobs``,
  several prompts per request, at most ``max_concurrency`` requests in flight);
- ``bare``: the same request bodies sent by a plain concurrent httpx2 loop with nothing of
  optprompt around it (the server's own speed for this traffic).

It reports examples/s of each, packed/served and served/bare ratios, and the largest score
difference between served and packed. vLLM recomputes the whole prompt of every sequence
when prompt log-probabilities are asked (its prefix cache is off for them), so each of the 7
answers of an example costs a full prompt there; the packed engine computes the prompt once.

    python benchmarks/served.py [--url http://127.0.0.1:8000/v1] [--examples 24]

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
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--output", type=Path, default=HERE / "results" / "served.json")
    args = p.parse_args(argv)

    import serve_vllm
    import torch
    from engine import build_workloads

    from optprompt.models import connect, load_model
    from optprompt.models.endpoint import Call
    from optprompt.plugins import load_plugins
    from optprompt.scoring import CausalLMBackend
    from optprompt.scoring.backends import ServedBackend

    model_dir = serve_vllm.smollm2_dir()
    loaded = load_model(str(model_dir), load_plugins(), device="cpu", dtype="float32", progress=False)
    work = build_workloads(loaded, args.examples, ["b-intent"])[0]
    requests = work.requests
    process = None
    url = args.url
    if url is None:
        from optprompt.study.local_postgres import free_port

        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="optprompt-bench-vllm-")) / "server.log"
        process = serve_vllm.start(model_dir, port, log)
        url = f"http://127.0.0.1:{port}/v1"
        print(f"vLLM ready after {serve_vllm.wait_ready(process, url, log):.0f}s", flush=True)
    load_start = os.getloadavg()[0]
    try:
        served = connect({"url": url, "max_concurrency": args.concurrency, "timeout": 600})
        backend = ServedBackend(served)
        backend.loglikelihoods(requests[:2])  # warm both sides
        local = CausalLMBackend(loaded)
        local.loglikelihoods(requests[:2])
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

        sent: list[Call] = []
        many = served.endpoint.many

        def recording(calls):  # type: ignore[no-untyped-def]
            sent.extend(calls)
            return many(calls)

        served.endpoint.many = recording  # type: ignore[method-assign]
        t = time.perf_counter()
        got = backend.loglikelihoods(requests)
        served_s = time.perf_counter() - t
        served.endpoint.many = many  # type: ignore[method-assign]
        bare_s = _bare(url, [c.body for c in sent if c.body is not None], args.concurrency)
        # The served path once more, after the bare loop, against drift of the machine's load.
        t = time.perf_counter()
        backend.loglikelihoods(requests)
        served_s = min(served_s, time.perf_counter() - t)
        diff = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w))
        n = len(requests)
        sequences = sum(len(r.continuations) for r in requests)
        result = {
            "workload": f"{work.name} ({work.note}), {n} examples, {sequences} sequences, "
            f"{len(sent)} requests of up to {backend.max_batch_rows} prompts",
            "examples_per_s": {
                f"packed ({threads} torch threads)": round(n / packed_s, 3),
                "packed (1 torch thread)": round(n / packed1_s, 3),
                "served (optprompt -> vLLM)": round(n / served_s, 3),
                "bare loop -> vLLM": round(n / bare_s, 3),
            },
            "packed_over_served": round(served_s / packed_s, 2),
            "packed_1_thread_over_served": round(served_s / packed1_s, 2),
            "served_over_bare": round(bare_s / served_s, 3),
            "max_abs_score_difference": diff,
            "concurrency": args.concurrency,
            "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "cpu_count": os.cpu_count(),
        }
        served.close()
    finally:
        if process is not None:
            serve_vllm.stop(process)
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
