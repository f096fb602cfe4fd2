"""Train an adapter on the train split with the objective the scorer ranks by.

AdamW on the adapter's weights only, linear warm-up then linear decay, gradient
clipping, length-bucketed batches (examples of similar length together, batch order
shuffled each epoch), bf16 autocast on CUDA, float32 on the CPU. After each epoch a
callback scores dev (and may stop the run: Optuna pruning); early stopping keeps the
best epoch's weights. An epoch is better when its dev score is higher, or equal with a
lower dev loss (the callback may give one: the mean cross-entropy of the right answer), and
patience counts the epochs in which neither the score nor the loss improved: on a small
split the score can stay flat for epochs while the loss falls, and stopping there would
end training before it learnt anything.

Each step runs on the packed engine where the model's attention takes 4-D masks
(:class:`~optprompt.adapters.engine.PackedAdapter`): the batch's shared prompt (system
turn, instruction, demonstrations, with the adapter's virtual tokens) runs once with
gradients, the rest of the batch is packed into tree-masked rows without padding, and
only positions that predict answer tokens are projected. Elsewhere (or with
``engine="padded"``) it runs the padded :func:`~optprompt.adapters.backend.choice_logliks`;
both give the same loss (tests hold them within 1e-4).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optprompt.adapters.backend import Item, choice_logliks

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

    from optprompt.prompts.candidate import PromptCandidate
    from optprompt.prompts.render import PromptRenderer
    from optprompt.tasks.task import Example

__all__ = [
    "TrainSettings",
    "TrainResult",
    "train_adapter",
    "step_logliks",
    "bucketed_batches",
    "training_items",
    "loss_of",
]


@dataclass(frozen=True)
class TrainSettings:
    """Training hyperparameters (validated by the strategy's config)."""

    lr: float
    epochs: int
    batch_size: int = 8
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    patience: int = 2
    seed: int = 0


@dataclass
class TrainResult:
    """What a training run did: per-epoch history and the best epoch's payload."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float = -math.inf
    best_payload: Any = None
    best_loss: float = math.inf
    steps: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0


def answer_end(tokenizer: Any) -> list[int]:
    """The token a generated answer ends with in training: the tokenizer's end of
    sequence (with a chat template, the end of the assistant's turn), at which decoding
    stops. Without it an adapter learns what to say but not when to stop, and keeps
    writing (for extraction: more entities, up to the token budget). None when the
    tokenizer has no such token."""
    eos = getattr(tokenizer, "eos_token_id", None)
    return [eos] if isinstance(eos, int) else []


def training_items(
    candidate: PromptCandidate, examples: Sequence[Example], renderer: PromptRenderer, tokenizer: Any, *, chat: bool
) -> tuple[list[Item], list[int | tuple[float, ...]]]:
    """Examples as the trainer sees them: tokenised exactly as the scorer tokenises them,
    with the index of the right answer. Generation examples get one answer, their
    reference (extraction: the gold entities serialised as the candidate asks; after
    the assistant header with a chat template, after a space without). A distilled
    example's target is its teacher's distribution over the answers (``soft_target``)."""
    from optprompt.adapters.backend import encode_request
    from optprompt.scoring.backends.causal import Tokens

    tokens = Tokens(tokenizer)
    end = answer_end(tokenizer)
    items, targets = [], []
    for ex in examples:
        request = renderer.request(candidate, ex)
        if renderer.task.generates:  # the reference, or the gold entities in the candidate's format
            answer = renderer.answer_words(candidate, ex)[0]
            item = encode_request(tokens, request, [answer if chat else " " + answer])
            items.append(Item(item.context, [item.choices[0] + end]))
            targets.append(0)
        else:
            items.append(encode_request(tokens, request))
            targets.append(ex.soft_target or ex.target_index)  # a teacher's distribution, when distilling
    return items, targets


def loss_of(
    sums: Sequence[torch.Tensor], targets: Sequence[int | Sequence[float]], lengths: Sequence[int] | None = None
):  # type: ignore[no-untyped-def]
    """The training loss: cross-entropy over the answers' summed log-likelihoods
    (ranking tasks; a target that is a distribution over the answers, a teacher's, gives
    KL(teacher || student) instead), or the reference's mean per-token negative
    log-likelihood (one answer per item: generation)."""
    import torch

    if all(len(s) == 1 for s in sums):
        per_token = [-s[0] / max(1, n) for s, n in zip(sums, lengths or [1] * len(sums))]
        return torch.stack(per_token).mean()
    losses = []
    for s, t in zip(sums, targets):
        log_q = torch.log_softmax(s, dim=0)
        if isinstance(t, int):
            losses.append(-log_q[t])
            continue
        p = torch.tensor(t, dtype=log_q.dtype, device=log_q.device)
        kept = p > 0
        losses.append((p[kept] * (torch.log(p[kept]) - log_q[kept])).sum())
    return torch.stack(losses).mean()


def bucketed_batches(items: Sequence[Item], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped into batches of similar length; the batch order shuffled by ``rng``.

    Items are shuffled first (so equal lengths mix differently each epoch), sorted by
    length, cut into batches, and the batches shuffled.
    """
    order = list(range(len(items)))
    rng.shuffle(order)
    order.sort(key=lambda i: items[i].length)
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def step_logliks(
    peft_model: PeftModel,
    *,
    pad_id: int,
    device: Any,
    keep_arg: bool = True,
    engine: str | None = None,
    pack_tokens: int | None = None,
) -> Callable[[Sequence[Item]], list[Any]]:
    """The function a training step computes its answers' log-likelihoods with: the
    packed engine's differentiable pass, or the padded :func:`choice_logliks`."""

    from optprompt.adapters.engine import PackedAdapter, packable
    from optprompt.errors import ConfigError
    from optprompt.scoring.backends.engines import engine_setting

    engine = engine_setting(engine)
    base = peft_model.get_base_model()
    if engine == "padded" or (engine == "auto" and not packable(base)):
        return lambda items: choice_logliks(peft_model, items, pad_id, device, keep_arg=keep_arg)
    if not packable(base):
        raise ConfigError("the packed engine needs eager or sdpa attention")
    cuda = getattr(device, "type", str(device)) == "cuda"
    return PackedAdapter(peft_model, budget=pack_tokens or (2048 if cuda else 384), keep_arg=keep_arg).choice_logliks


def train_adapter(
    peft_model: PeftModel,
    items: Sequence[Item],
    targets: Sequence[int | Sequence[float]],
    settings: TrainSettings,
    *,
    pad_id: int,
    device: Any,
    on_epoch: Callable[[int, float], tuple[float, Any] | tuple[float, Any, float | None]],
    on_step: Callable[[int, float], None] | None = None,
    keep_arg: bool = True,
    engine: str | None = None,
    pack_tokens: int | None = None,
) -> TrainResult:
    """Train ``peft_model``'s adapter on ``items`` (answer ``targets[i]`` is right, or
    ``targets[i]`` is a teacher's distribution over the answers).

    Args:
        on_epoch: ``(epoch, mean train loss) -> (dev value, payload)`` or ``(dev value,
            payload, dev loss)``, called after each epoch (1-based); it may raise to stop
            the run (pruning). The best epoch (highest value; lowest dev loss among equal
            values) has its payload returned and its weights left in the model; the run
            stops after ``settings.patience`` epochs that improved neither the best value
            nor the lowest dev loss.
        on_step: ``(step, loss)`` after each optimisation step (progress, tests).
        engine: ``auto`` (packed where the attention takes 4-D masks), ``packed`` or
            ``padded`` (padded rows); ``OPTPROMPT_SCORING_ENGINE`` sets the default.
        pack_tokens: Tokens per packed row (default 384 on CPU, 2048 on GPU).
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    logliks = step_logliks(
        peft_model, pad_id=pad_id, device=device, keep_arg=keep_arg, engine=engine, pack_tokens=pack_tokens
    )

    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    rng = random.Random(settings.seed)
    per_epoch = math.ceil(len(items) / settings.batch_size)
    total = per_epoch * settings.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(settings.warmup_ratio * total), total)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if getattr(device, "type", str(device)) == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    lengths = [len(it.choices[0]) for it in items]
    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    lowest_loss = math.inf
    since_best = 0
    peft_model.eval()  # no dropout: training is deterministic and matches scoring
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        losses = []
        for batch in bucketed_batches(items, settings.batch_size, rng):
            with autocast:
                sums = logliks([items[i] for i in batch])
                loss = loss_of(sums, [targets[i] for i in batch], [lengths[i] for i in batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            result.steps += 1
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(result.steps, losses[-1])
        result.train_seconds += time.perf_counter() - started
        mean_loss = sum(losses) / max(1, len(losses))
        with torch.inference_mode():
            scored = on_epoch(epoch, mean_loss)
        value, payload = scored[0], scored[1]
        dev_loss = scored[2] if len(scored) > 2 and scored[2] is not None else math.inf
        result.history.append({"epoch": epoch, "train_loss": mean_loss, "dev": value})
        if dev_loss < math.inf:
            result.history[-1]["dev_loss"] = dev_loss
        better = value > result.best_value or (value == result.best_value and dev_loss < result.best_loss)
        if better:
            result.best_value, result.best_epoch, result.best_payload = value, epoch, payload
            result.best_loss = dev_loss
            best_state = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
        if better or dev_loss < lowest_loss - 1e-4:  # still learning: the score or the loss moved
            since_best = 0
        else:
            since_best += 1
            if since_best >= settings.patience and epoch < settings.epochs:
                result.stopped_early = True
        lowest_loss = min(lowest_loss, dev_loss)
        if result.stopped_early:
            break
    if best_state is not None and result.best_epoch != len(result.history):
        with torch.no_grad():
            for n, p in peft_model.named_parameters():
                if n in best_state:
                    p.copy_(best_state[n])
    return result
