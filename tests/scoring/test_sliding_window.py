"""Models whose layers attend to a sliding window of recent tokens (Gemma 2/3, Mistral):
prompts longer than the window are scored with the padded engine (the packed engine's
cropped caches and tree masks assume every layer sees the whole sequence), and give the
naive reference's scores; constrained generation falls back to step-by-step decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from optprompt.prompts.render import ScoreRequest
from optprompt.testing import make_tiny_model_dir

WINDOW = 24


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny random Gemma 3 (sliding-window and global layers) with the tiny tokenizer."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    root = make_tiny_model_dir(tmp_path_factory.mktemp("gemma"), chat=False)
    tok = AutoTokenizer.from_pretrained(root)
    cfg = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, sliding_window=WINDOW, initializer_range=0.3,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(cfg).eval()
    for stale in Path(root).glob("*.safetensors"):
        stale.unlink()
    model.save_pretrained(root)
    return load_model(str(root), load_plugins(), device="cpu")


def test_prompts_longer_than_the_window_score_as_the_reference(gemma, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    from optprompt.scoring.backends.causal import CausalLMBackend, sliding_window

    assert sliding_window(gemma.model.config) == WINDOW
    backend = CausalLMBackend(gemma)
    assert backend.engine == "packed"
    long = "the food was great but the service was slow and the room was cold " * 3
    requests = [
        ScoreRequest("a", "Review: ", "great food", ["good", "bad"]),  # within the window: packed
        ScoreRequest("b", "Review: " + long, "\nRating:", ["good", "bad"]),  # beyond it
    ]
    with caplog.at_level("WARNING"):
        got = backend.loglikelihoods(requests)
    want = backend.naive_loglikelihoods(requests)
    assert [x for row in got for x in row] == pytest.approx([x for row in want for x in row], abs=1e-4)
    assert "longer than the model's sliding attention window" in caplog.text
    short = backend.loglikelihoods(requests[:1])  # the packed engine, as before
    assert short[0] == pytest.approx(want[0], abs=1e-4)


def test_constrained_generation_beyond_the_window_decodes_step_by_step(gemma) -> None:  # type: ignore[no-untyped-def]
    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.kinds.prompt.constrained import constrained_predict
    from optprompt.kinds.prompt.predictor import CardPredictor

    card = PromptCard(
        instruction="Rate the review as good, bad or so-so, thinking of the food, the staff and the price.",
        template="Review: {input}\nRating:",
        demos=[{"input": "great food and kind staff", "answer": "good"}],
        verbalizer={"pos": "good", "neg": "bad", "mixed": "so so"},
        task_type="classification",
    )
    predictor = CardPredictor(card, gemma)
    texts = ["the food was great", "slow and rude", "fair price, cold room"]
    assert predictor.backend.token_loglikelihoods([[1] * (WINDOW + 1)], [[[2]]]) is None  # beyond: no packed pass
    assert constrained_predict(predictor, texts) == constrained_predict(predictor, texts, packed=False)
