"""Adapters through the packed engine: equal (within 1e-4) to the padded adapter scorer
(`choice_logliks`, today's reference) for every PEFT method, across several rows, split
subtrees, roots cached under changing weights, and with gradients (the trainer's loss)."""

from __future__ import annotations

import pytest
import torch

from optprompt.adapters.backend import AdapterBackend, choice_logliks
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.methods import attached
from optprompt.prompts.render import ScoreRequest

PARAMS = {
    "prompt_tuning": {"num_virtual_tokens": 5, "init": "vocab"},
    "prefix_tuning": {"num_virtual_tokens": 3},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "lora": {"lora_r": 4},
}

INSTRUCTION = "Classify the intent of the request. Examples follow.\nRequest: play a song\nIntent: play music\n"


def _scramble(peft_model, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in peft_model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.5)


def _requests() -> list[ScoreRequest]:
    """One candidate's prefix shared by most requests (the cached root), multi-token
    answers sharing leading tokens, an empty suffix, and a request with its own prefix."""
    answers = (" play music", " set alarm", " set a timer", " weather today", " weather")
    return [
        ScoreRequest("a", INSTRUCTION + "Request:", " wake me at six", answers),
        ScoreRequest("b", INSTRUCTION + "Request:", " is it going to rain tomorrow in the city", answers),
        ScoreRequest("c", INSTRUCTION + "Request:", "", answers),
        ScoreRequest("d", INSTRUCTION + "Request:", " some jazz please", answers[:2]),
        ScoreRequest("e", "Other prompt:", " hi", (" yes", " no")),
    ]


def _candidate(runner, method: str) -> SoftCandidate:
    return SoftCandidate.create(runner.baseline, method, {**PARAMS[method], "lr": 0.01, "epochs": 1})


@pytest.mark.parametrize("method", list(PARAMS))
@pytest.mark.parametrize("pack_tokens", [8, 384])  # 8: subtrees split into stems and rows
def test_packed_adapter_scores_equal_the_padded_scorer(soft_runner, method: str, pack_tokens: int) -> None:
    loaded = soft_runner.model
    with attached(loaded, _candidate(soft_runner, method)) as peft_model:
        _scramble(peft_model)
        packed = AdapterBackend(loaded, peft_model, engine="packed", pack_tokens=pack_tokens)
        padded = AdapterBackend(loaded, peft_model, engine="padded")
        reqs = _requests()
        fast = packed.loglikelihoods(reqs)
        ref = padded.loglikelihoods(reqs)
        # The shared prompt and virtual tokens run once: fewer tokens than padded rows.
        assert packed.computed_tokens < padded.computed_tokens
    assert packed.engine == "packed" and padded.engine == "padded"
    for f, r in zip(fast, ref):
        assert f == pytest.approx(r, abs=1e-4)


@pytest.mark.parametrize("method", list(PARAMS))
def test_a_cached_root_is_not_read_after_the_weights_change(soft_runner, method: str) -> None:
    """Dev is scored after every epoch with one backend: the second scoring must see the
    new weights (virtual tokens, prefix key/values, LoRA layers) in the cached root too."""
    loaded = soft_runner.model
    with attached(loaded, _candidate(soft_runner, method)) as peft_model:
        _scramble(peft_model, 0)
        backend = AdapterBackend(loaded, peft_model, engine="packed")
        first = backend.loglikelihoods(_requests())
        again = backend.loglikelihoods(_requests())
        _scramble(peft_model, 1)
        second = backend.loglikelihoods(_requests())
        ref = AdapterBackend(loaded, peft_model, engine="padded").loglikelihoods(_requests())
    assert again == first  # same weights: the cached root is reused
    for s, r in zip(second, ref):
        assert s == pytest.approx(r, abs=1e-4)
    assert max(abs(a - b) for s, f in zip(second, first) for a, b in zip(s, f)) > 1e-3


@pytest.mark.parametrize("method", list(PARAMS))
def test_packed_training_loss_and_gradients_equal_the_padded_ones(soft_runner, method: str) -> None:
    loaded = soft_runner.model
    with attached(loaded, _candidate(soft_runner, method)) as peft_model:
        _scramble(peft_model)
        backend = AdapterBackend(loaded, peft_model, engine="packed", pack_tokens=16)
        items = backend.items(_requests()[:4])  # one batch of one candidate's examples
        params = [p for p in peft_model.parameters() if p.requires_grad]

        def grads(sums) -> list[torch.Tensor]:
            loss = sum(-torch.log_softmax(s, dim=0)[0] for s in sums)
            peft_model.zero_grad(set_to_none=True)
            loss.backward()
            return [p.grad.detach().clone() for p in params]

        packed_sums = backend.packed.choice_logliks(items)
        packed_grads = grads(packed_sums)
        padded_sums = choice_logliks(peft_model, items, backend.pad_id, loaded.device, keep_arg=backend.keep_arg)
        padded_grads = grads(padded_sums)
    for a, b in zip(packed_sums, padded_sums):
        assert a.detach().tolist() == pytest.approx(b.detach().tolist(), abs=1e-4)
    for a, b in zip(packed_grads, padded_grads):  # float error relative to the gradient's scale
        assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(b.abs().max()))
    assert any(float(g.abs().max()) > 1e-6 for g in packed_grads)


@pytest.mark.parametrize("method", list(PARAMS))
def test_training_on_the_packed_engine_follows_the_padded_run(soft_runner, method: str) -> None:
    """Two epochs of the trainer, packed and padded, from the same start: the same losses
    and the same trained weights, within float error (Adam divides by the gradients' scale,
    so the two runs' last-bit differences grow over steps: 1e-3 relative here)."""
    from optprompt.adapters.training import TrainSettings, train_adapter, training_items

    runner = soft_runner
    cand = _candidate(runner, method)
    items, targets = training_items(cand, runner.task.train[:12], runner.renderer, runner.model.tokenizer, chat=True)
    runs = {}
    for engine in ("packed", "padded"):
        torch.manual_seed(0)
        losses: list[float] = []
        with attached(runner.model, cand) as peft_model:
            _scramble(peft_model)
            train_adapter(
                peft_model,
                items,
                targets,
                TrainSettings(lr=0.01, epochs=2, batch_size=4, seed=0, patience=4),
                pad_id=0,
                device=runner.model.device,
                on_epoch=lambda epoch, loss: (-loss, epoch),
                on_step=lambda step, loss, out=losses: out.append(loss),
                engine=engine,
                pack_tokens=24,
            )
            weights = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
        runs[engine] = (losses, weights)
    (lp, wp), (ll, wl) = runs["packed"], runs["padded"]
    assert len(lp) == 6
    assert lp == pytest.approx(ll, rel=1e-3)
    for n in wp:
        assert float((wp[n] - wl[n]).abs().max()) <= 1e-3 * max(1.0, float(wl[n].abs().max())), n


@pytest.mark.parametrize("method", list(PARAMS))
def test_generation_from_the_cached_root_equals_the_plain_lead(soft_runner, method: str) -> None:
    """Prompts sharing a long prefix: the packed backend continues the cached root (virtual
    tokens + shared prompt), with prompt lookup and compaction; the padded backend runs the
    virtual tokens and every prompt whole (checked against PEFT's forward elsewhere)."""
    from optprompt.scoring.backends.base import GenerationSettings

    loaded = soft_runner.model
    prompts = [INSTRUCTION + "Request: wake me at six\nIntent:", INSTRUCTION + "Request: jazz\nIntent:"]
    settings = GenerationSettings(max_new_tokens=8, stop=())
    with attached(loaded, _candidate(soft_runner, method)) as peft_model:
        _scramble(peft_model)
        packed = AdapterBackend(loaded, peft_model, engine="packed")
        packed.lookup_tokens = 3
        padded = AdapterBackend(loaded, peft_model, engine="padded")
        padded.compact = False
        fast = packed.generate(prompts, settings)
        again = packed.generate(prompts, settings)  # the cached root, reused
        ref = padded.generate(prompts, settings)
    assert fast == ref == again
    assert packed.computed_tokens < padded.computed_tokens


def test_lora_decodes_merged_and_its_weights_come_back_bit_for_bit(soft_runner) -> None:
    """Generation folds LoRA into the weights (one matmul per layer while decoding): the
    same texts as the separate LoRA layers, logits within float rounding, and the base
    weights restored exactly (the same tensors), unmerged, afterwards."""
    from optprompt.adapters.methods import merged_lora
    from optprompt.scoring.backends.base import GenerationSettings

    loaded = soft_runner.model
    prompts = [INSTRUCTION + "Request: wake me at six\nIntent:", INSTRUCTION + "Request: jazz\nIntent:"]
    settings = GenerationSettings(max_new_tokens=8, stop=())
    ids = torch.tensor([soft_runner.model.tokenizer(prompts[0])["input_ids"]])
    with attached(loaded, _candidate(soft_runner, "lora")) as peft_model:
        _scramble(peft_model)
        weights = {n: (p, p.data.clone()) for n, p in peft_model.named_parameters() if "base_layer" in n}
        assert weights
        backend = AdapterBackend(loaded, peft_model, engine="packed")
        merged_texts = backend.generate(prompts, settings)
        backend.merge_lora = False
        separate_texts = backend.generate(prompts, settings)
        with torch.inference_mode():
            separate = peft_model(input_ids=ids).logits
            with merged_lora(peft_model) as merged:
                folded = peft_model(input_ids=ids).logits
                changed = any(not torch.equal(p.data, before) for p, before in weights.values())
            after = peft_model(input_ids=ids).logits
        assert merged and changed
        assert merged_texts == separate_texts
        assert float((folded - separate).abs().max()) <= 1e-4 * float(separate.abs().max())
        assert torch.equal(after, separate)
        for name, (p, before) in weights.items():
            assert torch.equal(p.data, before), name
        assert not any(m.merged for m in peft_model.modules() if hasattr(m, "merged_adapters"))


@pytest.mark.parametrize("method", ["prompt_tuning", "prefix_tuning"])
def test_only_lora_is_merged(soft_runner, method: str) -> None:
    from optprompt.adapters.methods import merged_lora

    with attached(soft_runner.model, _candidate(soft_runner, method)) as peft_model, merged_lora(peft_model) as merged:
        assert merged is False


def test_lora_on_half_precision_weights_is_not_merged(soft_runner) -> None:
    """Adding a small update into bfloat16 weights rounds much of it away: left separate."""
    from optprompt.adapters.methods import merged_lora

    with attached(soft_runner.model, _candidate(soft_runner, "lora")) as peft_model:
        layer = next(m for m in peft_model.modules() if hasattr(m, "merged_adapters"))
        base = layer.get_base_layer()
        original = base.weight.data
        base.weight.data = original.to(torch.bfloat16)
        try:
            with merged_lora(peft_model) as merged:
                assert merged is False
        finally:
            base.weight.data = original


@pytest.mark.parametrize("method", list(PARAMS))
def test_adapter_rows_joining_a_running_batch_write_what_one_batch_writes(soft_runner, method: str) -> None:
    """Continuous batching with every adapter's lead (virtual-token embeddings, prefix
    key/values, LoRA merged): two rows at a time, the others joining as rows finish."""
    from optprompt.scoring.backends.base import GenerationSettings

    loaded = soft_runner.model
    words = ["wake me at six", "jazz", "what is the weather like in the city tomorrow", "timer", "hi there"]
    prompts = [f"{INSTRUCTION}Request: {w}\nIntent:" for w in words]
    settings = GenerationSettings(max_new_tokens=12, stop=("e",))
    with attached(loaded, _candidate(soft_runner, method)) as peft_model:
        _scramble(peft_model)
        for engine in ("packed", "padded"):
            backend = AdapterBackend(loaded, peft_model, engine=engine)
            whole = backend.generate(prompts, settings)
            backend.max_batch_rows = 2
            joined = backend.generate(prompts, settings)
            backend.continuous = False
            batches = backend.generate(prompts, settings)
            assert joined == whole == batches, engine
    assert len({len(t) for t in whole}) > 1  # rows ended at different steps
