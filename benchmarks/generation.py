"""Generation benchmark: batched greedy decoding vs one prompt at a time.

Same prompts (a QA-style instruction, 2 demonstrations, short questions; chat template
applied as optprompt does), same greedy settings. Methods:

- naive: ``model.generate`` on one prompt at a time (how most local-model tools do it);
- optprompt: ``CausalLMBackend.generate`` (length-sorted batches, left padding).

Reports examples/s, generated tokens/s, the ratio, and whether the texts are identical.

    python benchmarks/generation.py --examples 32 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "river mountain city ocean forest desert island valley bridge castle library market garden "
    "station harbour tower village museum"
).split()


def prompts(n: int, seed: int, fmt) -> list[str]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    demo = (
        "Q: Which word names a place with water: desert, ocean or tower?\nA: ocean\n\n"
        "Q: Which word names a building: river, castle or valley?\nA: castle\n\n"
    )
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, rng.randint(3, 6))
        q = f"Q: Which of these words comes first in the alphabet: {', '.join(words)}?\nA:"
        out.append(fmt([{"role": "user", "content": "Answer with one word.\n\n" + demo + q}]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generation.json"))
    args = p.parse_args(argv)

    import torch

    from optprompt.models import load_model
    from optprompt.plugins import load_plugins
    from optprompt.scoring import CausalLMBackend, GenerationSettings
    from optprompt.scoring.backends.causal import Tokens, cut_at_stop

    loaded = load_model(args.model, load_plugins(), progress=False)
    texts = prompts(args.examples, 0, loaded.chat_formatter())
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, stop=("\n",))
    tok = loaded.tokenizer
    tokens = Tokens(tok)

    def naive() -> list[str]:
        out = []
        with torch.inference_mode():
            for t in texts:
                ids = torch.tensor([tokens.prefix(t)], device=loaded.device)
                gen = loaded.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=settings.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id or tok.eos_token_id,
                    stop_strings=list(settings.stop),
                    tokenizer=tok,
                )
                out.append(cut_at_stop(tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True), settings.stop))
        return out

    def fast() -> list[str]:
        return CausalLMBackend(loaded).generate(texts, settings)

    results = {}
    outputs = {}
    for name, fn in (("naive", naive), ("optprompt", fast)):
        fn() if name == "optprompt" else None  # warm-up of the batched path (naive warms up on its first prompt)
        start = time.perf_counter()
        outputs[name] = fn()
        elapsed = time.perf_counter() - start
        new_tokens = sum(len(tok(o, add_special_tokens=False).input_ids) for o in outputs[name])
        results[name] = {
            "seconds": round(elapsed, 3),
            "examples_per_s": args.examples / elapsed,
            "generated_tokens_per_s": new_tokens / elapsed,
        }
        print(
            f"{name:<10} {elapsed:8.2f} s  {args.examples / elapsed:7.2f} ex/s  {new_tokens / elapsed:8.1f} new tok/s",
            flush=True,
        )
    same = sum(a == b for a, b in zip(outputs["naive"], outputs["optprompt"]))
    ratio = results["optprompt"]["examples_per_s"] / results["naive"]["examples_per_s"]
    print(f"optprompt / naive: {ratio:.2f}x; identical outputs: {same} of {args.examples}")
    report = {
        "workload": {
            "examples": args.examples,
            "max_new_tokens": args.max_new_tokens,
            "model": args.model,
            "device": str(loaded.device),
        },
        "methods": results,
        "ratio_optprompt_vs_naive": ratio,
        "identical_outputs": same,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
