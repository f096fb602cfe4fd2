"""Each PEFT method trains on the tiny model: its loss falls, only the adapter learns,
and the base model is exactly as before once the adapter is taken off."""

from __future__ import annotations

import random

import pytest
import torch

from optprompt.adapters.backend import Item
from optprompt.adapters.candidate import SoftCandidate
from optprompt.adapters.methods import attached, trainable_parameters
from optprompt.adapters.training import TrainSettings, bucketed_batches, train_adapter, training_items

LR = {"prompt_tuning": 0.03, "prefix_tuning": 0.2, "p_tuning": 0.01, "lora": 0.02}
PARAMS = {
    "prompt_tuning": {"num_virtual_tokens": 4, "init": "text"},
    "prefix_tuning": {"num_virtual_tokens": 4},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 32},
    "lora": {"lora_r": 4},
}


def _candidate(runner, method: str, **extra) -> SoftCandidate:
    return SoftCandidate.create(runner.baseline, method, {**PARAMS[method], "lr": LR[method], "epochs": 4, **extra})


def _base_logits(runner) -> torch.Tensor:
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    with torch.inference_mode():
        return runner.model.model(input_ids=ids).logits.clone()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", list(PARAMS))
def test_loss_falls_and_only_the_adapter_learns(soft_runner, method: str, seed: int) -> None:
    runner = soft_runner
    torch.manual_seed(seed)  # the adapter's initialisation
    cand = _candidate(runner, method)
    items, targets = training_items(cand, runner.task.train, runner.renderer, runner.model.tokenizer, chat=runner.chat)
    before_base = {n: p.detach().clone() for n, p in runner.model.model.named_parameters()}
    logits_before = _base_logits(runner)
    epoch_losses: list[float] = []
    with attached(runner.model, cand, "Classify the sentiment") as peft_model:
        n_trainable = trainable_parameters(peft_model)
        assert 0 < n_trainable < sum(p.numel() for p in runner.model.model.parameters()) // 10
        adapter_before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}

        def on_epoch(epoch: int, loss: float):
            epoch_losses.append(loss)
            return -loss, epoch

        result = train_adapter(
            peft_model,
            items,
            targets,
            TrainSettings(lr=LR[method], epochs=4, batch_size=4, seed=seed, patience=4),
            pad_id=0,
            device=runner.model.device,
            on_epoch=on_epoch,
        )
        changed = [
            n for n, p in peft_model.named_parameters() if p.requires_grad and not torch.equal(p, adapter_before[n])
        ]
        assert changed, "no adapter weight changed"
    assert result.steps == 4 * -(-len(items) // 4)
    assert epoch_losses[-1] < 0.8 * epoch_losses[0], epoch_losses
    # The base model's weights are untouched and it computes exactly what it did before.
    for n, p in runner.model.model.named_parameters():
        assert torch.equal(p, before_base[n]), n
    assert torch.equal(_base_logits(runner), logits_before)
    assert not any(p.requires_grad for p in runner.model.model.parameters())


def test_early_stopping_keeps_the_best_epoch(soft_runner) -> None:
    runner = soft_runner
    cand = _candidate(runner, "prompt_tuning")
    items, targets = training_items(cand, runner.task.train, runner.renderer, runner.model.tokenizer, chat=runner.chat)
    values = iter([0.5, 0.9, 0.4, 0.3, 0.2])
    snapshots = {}
    with attached(runner.model, cand, "Classify") as peft_model:
        weight = peft_model.prompt_encoder["default"].embedding.weight

        def on_epoch(epoch: int, loss: float):
            snapshots[epoch] = weight.detach().clone()
            return next(values), f"epoch {epoch}"

        result = train_adapter(
            peft_model,
            items,
            targets,
            TrainSettings(lr=0.1, epochs=5, batch_size=8, patience=2),
            pad_id=0,
            device="cpu",
            on_epoch=on_epoch,
        )
        assert result.stopped_early and len(result.history) == 4
        assert (result.best_epoch, result.best_value, result.best_payload) == (2, 0.9, "epoch 2")
        assert torch.equal(weight, snapshots[2])  # the best epoch's weights are restored


def test_bucketed_batches_cover_everything_once_and_group_lengths() -> None:
    items = [Item(list(range(n)), [[1]]) for n in [3, 40, 5, 41, 4, 39, 6, 42]]
    batches = bucketed_batches(items, 2, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(8))
    for b in batches:
        lengths = [items[i].length for i in b]
        assert max(lengths) - min(lengths) <= 3  # short with short, long with long
    assert bucketed_batches(items, 2, random.Random(0)) == batches  # seeded


def test_early_stopping_waits_while_the_dev_loss_falls(soft_runner) -> None:
    """A flat dev score with a falling dev loss is still learning: no early stop; among
    equal scores the epoch with the lowest dev loss is kept."""
    runner = soft_runner
    cand = _candidate(runner, "prompt_tuning")
    items, targets = training_items(cand, runner.task.train, runner.renderer, runner.model.tokenizer, chat=runner.chat)
    losses = iter([1.0, 0.9, 0.8, 0.7, 0.75, 0.76, 0.77])
    with attached(runner.model, cand, "Classify") as peft_model:
        result = train_adapter(
            peft_model,
            items,
            targets,
            TrainSettings(lr=0.1, epochs=7, batch_size=8, patience=2),
            pad_id=0,
            device="cpu",
            on_epoch=lambda epoch, loss: (0.5, f"epoch {epoch}", next(losses)),
        )
    # Epochs 1-4 lower the loss; 5 and 6 do not: stopped after epoch 6.
    assert result.stopped_early and len(result.history) == 6
    assert (result.best_epoch, result.best_payload, result.best_loss) == (4, "epoch 4", 0.7)
    assert [h["dev_loss"] for h in result.history] == [1.0, 0.9, 0.8, 0.7, 0.75, 0.76]


def test_the_answer_end_is_the_tokenizers_end_of_sequence() -> None:
    """Generated answers are trained with the token decoding stops at after them; a
    tokenizer without one adds nothing."""
    from types import SimpleNamespace

    from optprompt.adapters.training import answer_end

    assert answer_end(SimpleNamespace(eos_token_id=7)) == [7]
    assert answer_end(SimpleNamespace(eos_token_id=None)) == []
    assert answer_end(SimpleNamespace()) == []


def test_ranked_answers_get_no_end_token(soft_runner) -> None:
    """Classification answers are ranked by their own tokens: nothing is appended."""
    from optprompt.adapters.backend import encode_request
    from optprompt.scoring.backends.causal import Tokens

    runner = soft_runner
    cand = _candidate(runner, "lora")
    examples = runner.task.train[:4]
    tok = runner.model.tokenizer
    items, _ = training_items(cand, examples, runner.renderer, tok, chat=runner.chat)
    for it, ex in zip(items, examples):
        assert it.choices == encode_request(Tokens(tok), runner.renderer.request(cand, ex)).choices
        assert len(it.choices) > 1 and all(c[-1] != tok.eos_token_id for c in it.choices)
