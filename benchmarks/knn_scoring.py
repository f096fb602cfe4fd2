"""Per-input (kNN) demonstrations vs one fixed set: does the packed engine stay fast?

Scores 60 classification requests with 4 demonstrations each, side by side in one run,
on a randomly initialised 6-layer Llama (hidden 384; speed does not depend on the
weights' values): once with the same demonstrations for every input (one shared prefix)
and once with demonstrations drawn per input (every prefix different), with the packed
and the padded engine. Prints seconds, tokens computed and tokens per second; the
per-input prompts compute more tokens (their demonstrations are not shared), so compare
tokens per second.

    .venv/bin/python benchmarks/knn_scoring.py
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    import torch
    from conftest import _tiny_tokenizer
    from optprompt_testdata import WORDS
    from transformers import LlamaConfig, LlamaForCausalLM

    from optprompt.models import load_model
    from optprompt.plugins import load_plugins
    from optprompt.prompts import ScoreRequest
    from optprompt.scoring import CausalLMBackend

    root = Path(tempfile.mkdtemp())
    tok = _tiny_tokenizer(chat=False, bos=True)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=384,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    LlamaForCausalLM(cfg).save_pretrained(root)
    tok.save_pretrained(root)
    loaded = load_model(str(root), load_plugins(), device="cpu", progress=False)
    rng = random.Random(0)
    pool = [" ".join(rng.choices(WORDS, k=rng.randint(15, 40))) for _ in range(64)]
    inputs = [" ".join(rng.choices(WORDS, k=rng.randint(15, 40))) for _ in range(60)]

    def demo(text: str) -> str:
        return f"Input: {text}\nAnswer: {rng.choice(['good', 'bad'])}"

    def request(i: int, demos: list[str]) -> ScoreRequest:
        prefix = "Classify.\n\n" + "\n\n".join(demo(t) for t in demos) + "\n\nInput:"
        return ScoreRequest(str(i), prefix, f" {inputs[i]}\nAnswer:", (" good", " bad"))

    shared = [request(i, pool[:4]) for i in range(len(inputs))]
    per_input = [request(i, rng.sample(pool, 4)) for i in range(len(inputs))]
    print(f"{'engine':8s}{'prompts':12s}{'seconds':>9s}{'tokens':>9s}{'tokens/s':>10s}")
    for engine in ("packed", "padded"):
        for name, reqs in (("shared", shared), ("per-input", per_input)):
            CausalLMBackend(loaded, engine=engine).loglikelihoods(reqs[:2])  # warm-up
            backend = CausalLMBackend(loaded, engine=engine)
            start = time.perf_counter()
            backend.loglikelihoods(reqs)
            dt = time.perf_counter() - start
            print(f"{engine:8s}{name:12s}{dt:9.2f}{backend.computed_tokens:9d}{backend.computed_tokens / dt:10.0f}")


if __name__ == "__main__":
    main()
