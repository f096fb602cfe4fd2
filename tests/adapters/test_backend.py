"""The adapter scorer equals a one-at-a-time full forward through PEFT, for every method;
generation with prompt-learning adapters really uses the virtual tokens."""

from __future__ import annotations

import pytest
import torch

from optprompt.adapters.backend import AdapterBackend
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.methods import attached
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import GenerationSettings

PARAMS = {
    "prompt_tuning": {"num_virtual_tokens": 5, "init": "vocab"},
    "prefix_tuning": {"num_virtual_tokens": 3},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "lora": {"lora_r": 4},
}


def _scramble(peft_model) -> None:
    """Make the fresh adapter do something (LoRA's B starts at zero)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.5)


def _requests() -> list[ScoreRequest]:
    # Mixed lengths, multi-token answers, answers sharing their first tokens, an empty suffix.
    return [
        ScoreRequest("a", "Classify the review.\nReview:", " great food", (" good", " very bad", " very good")),
        ScoreRequest("b", "Classify the review.\nReview:", " the staff was rude and the room poor", (" good", " bad")),
        ScoreRequest("c", "Review:", "", (" fine", " not fine at all")),
        ScoreRequest("d", "Classify the review.\nReview:", " ok", (" good", " bad")),
    ]


@pytest.mark.parametrize("method", list(PARAMS))
def test_batched_scores_equal_naive(soft_runner, method: str) -> None:
    cand = SoftCandidate.create(soft_runner.baseline, method, {**PARAMS[method], "lr": 0.01, "epochs": 1})
    plain = soft_runner.evaluator.backend.loglikelihoods(_requests())  # the model without adapter
    with attached(soft_runner.model, cand) as peft_model:
        _scramble(peft_model)
        backend = AdapterBackend(soft_runner.model, peft_model, batch_tokens=40)  # forces several batches
        fast = backend.loglikelihoods(_requests())
        naive = backend.naive_loglikelihoods(_requests())
    assert soft_runner.evaluator.backend.loglikelihoods(_requests()) == plain  # and after, the same again
    for f, n, p in zip(fast, naive, plain):
        assert f == pytest.approx(n, abs=1e-4)
        assert len(f) == len(p)
    # The adapter changes the scores (it is really in the forward pass).
    assert max(abs(a - b) for f, p in zip(fast, plain) for a, b in zip(f, p)) > 1e-3


def test_without_training_lora_scores_equal_the_base_model(soft_runner) -> None:
    """A fresh LoRA adapter is the identity (B = 0): same scores as the plain causal backend."""
    cand = SoftCandidate.create(soft_runner.baseline, "lora", {"lora_r": 4, "lr": 0.01, "epochs": 1})
    plain = soft_runner.evaluator.backend.loglikelihoods(_requests())
    with attached(soft_runner.model, cand) as peft_model:
        adapted = AdapterBackend(soft_runner.model, peft_model).loglikelihoods(_requests())
    for a, p in zip(adapted, plain):
        assert a == pytest.approx(p, abs=1e-4)


def _greedy_with_virtual_tokens(loaded, virtual: torch.Tensor, ids: list[int], n: int) -> list[int]:
    """Reference decoding: virtual embeddings prepended by hand, base model, no PEFT."""
    model = loaded.model
    out: list[int] = []
    seq = list(ids)
    with torch.inference_mode():
        for _ in range(n):
            emb = model.get_input_embeddings()(torch.tensor([seq]))
            full = torch.cat([virtual[None], emb], dim=1)
            logits = model(inputs_embeds=full, attention_mask=torch.ones(full.shape[:2], dtype=torch.long)).logits
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            seq.append(nxt)
    return out


def test_generation_uses_the_virtual_tokens(soft_runner) -> None:
    loaded = soft_runner.model
    cand = SoftCandidate.create(
        soft_runner.baseline, "prompt_tuning", {"num_virtual_tokens": 6, "init": "random", "lr": 0.1, "epochs": 1}
    )
    torch.manual_seed(0)  # the random virtual tokens
    prompts = ["Review: great food\nSentiment:", "Review: bad\nSentiment:", "Review: fine\nSentiment:"]
    settings = GenerationSettings(max_new_tokens=6, stop=())
    plain = soft_runner.evaluator.backend.generate(prompts, settings)
    with attached(loaded, cand) as peft_model:
        virtual = peft_model.prompt_encoder["default"].embedding.weight.detach().clone()
        backend = AdapterBackend(loaded, peft_model)
        adapted = backend.generate(prompts, settings)
        expected = []
        for p in prompts:
            ids = backend.tokens.prefix(p)
            expected.append(
                loaded.tokenizer.decode(_greedy_with_virtual_tokens(loaded, virtual, ids, 6), skip_special_tokens=True)
            )
    assert adapted == expected
    assert adapted != plain  # random virtual tokens (std 1) change what the model says


def _greedy_through_peft(peft_model, tokenizer, ids: list[int], n: int, eos: set[int]) -> list[int]:
    """Reference: PEFT's own forward pass over the whole sequence at every step, no cache."""
    from optprompt.adapters.methods import peft_quiet

    seq, out = list(ids), []
    with torch.inference_mode(), peft_quiet():
        for _ in range(n):
            t = torch.tensor([seq])
            nxt = int(peft_model(input_ids=t, attention_mask=torch.ones_like(t)).logits[0, -1].argmax())
            if nxt in eos:
                break
            out.append(nxt)
            seq.append(nxt)
    return out


@pytest.mark.parametrize("method", list(PARAMS))
def test_generation_equals_a_forward_pass_greedy_loop(soft_runner, method: str) -> None:
    """Every PEFT method, prompts of different lengths in one batch (left padding), several
    batches: the text equals a cache-free greedy loop over PEFT's forward, prompt by prompt."""
    from optprompt.scoring.backends.decoding import eos_ids

    loaded = soft_runner.model
    cand = SoftCandidate.create(soft_runner.baseline, method, {**PARAMS[method], "lr": 0.01, "epochs": 1})
    prompts = [
        "Review: great food\nSentiment:",
        "Review: the staff was rude and the room was cold\nSentiment:",
        "fine",
        "Review: bad\nSentiment:",
    ]
    settings = GenerationSettings(max_new_tokens=7, stop=())
    with attached(loaded, cand) as peft_model:
        _scramble(peft_model)
        backend = AdapterBackend(loaded, peft_model, batch_tokens=60)  # several batches, mixed lengths
        adapted = backend.generate(prompts, settings)
        eos = eos_ids(loaded.model, loaded.tokenizer)
        expected = [
            loaded.tokenizer.decode(
                _greedy_through_peft(peft_model, loaded.tokenizer, backend.tokens.prefix(p), 7, eos),
                skip_special_tokens=True,
            )
            for p in prompts
        ]
    assert adapted == expected
    plain = soft_runner.evaluator.backend.generate(prompts, settings)
    assert adapted != plain  # the adapter is really in the loop
