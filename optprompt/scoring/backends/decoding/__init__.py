"""One decoding loop for every causal backend: plain, shared-prefix and adapted models.

``model.generate`` hides how positions, attention masks and the key/value cache move
from step to step, and that has changed under optprompt's feet: transformers 5.24 renamed
``past_key_values`` to ``cache``, and PEFT's generation hook for prompt learning, which
still looks for the old name, re-inserted the virtual tokens at every step. This loop owns
those details instead: it calls the model's plain forward pass, so what it generates is by
construction what a forward-pass greedy loop produces.

Layout of a batch, left to right: an optional *lead* that every row shares (the key/value
cache of a shared prompt prefix or of prefix-tuning's virtual tokens, or the embeddings
of prompt-tuning's virtual tokens), then each row's prompt, left-padded. Padding is
masked out and positions are explicit, so every real token sits at the position it has
when its row runs alone.

The loop is cut by job, one module each:

- :mod:`.scheduler`: which rows run (waiting rows start, join the running batch as rows
  finish, finished rows leave it); :mod:`.batch` is the running batch itself and
  :mod:`.cache` the key/value cache operations under it (joining, trimming);
- :mod:`.forward`: the model's forward passes (a prefill for rows starting, a step);
- :mod:`.step`: one decoding step (next tokens and drafts in, accepted tokens out);
- :mod:`.drafter`: prompt-lookup drafting;
- :mod:`.outputs`: each row's output and when it ends (end of sequence, budget, stop strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optprompt.scoring.backends.base import GenerationSettings
from optprompt.scoring.backends.decoding.cache import trim as _trim
from optprompt.scoring.backends.decoding.drafter import Drafter, lookup_draft
from optprompt.scoring.backends.decoding.forward import Forward
from optprompt.scoring.backends.decoding.lead import Lead, eos_ids
from optprompt.scoring.backends.decoding.outputs import Outputs, StopStrings
from optprompt.scoring.backends.decoding.scheduler import Scheduler
from optprompt.scoring.backends.decoding.step import decode_step

__all__ = ["Lead", "decode", "eos_ids", "lookup_draft"]


def decode(
    model: Any,
    tokenizer: Any,
    seqs: Sequence[list[int]],
    settings: GenerationSettings,
    *,
    pad_id: int,
    lead: Lead | None = None,
    keep_arg: bool = True,
    lookup: int = 0,
    compact: bool = True,
    max_rows: int | None = None,
    continuous: bool = True,
) -> tuple[list[list[int]], int]:
    """Greedy (or seeded temperature-sampling) continuations of token sequences.

    Args:
        model: A transformers causal LM (its plain forward is called).
        tokenizer: Decodes the generated tokens to check stop strings.
        seqs: Each row's prompt tokens (after the lead), in the order they start.
        settings: Budget, stop strings, temperature and seed.
        pad_id: Filler for padded positions.
        lead: Shared positions in front of every row.
        keep_arg: Whether the model's forward accepts ``logits_to_keep``.
        lookup: Greedy only: draft up to this many tokens per row and step by prompt
            lookup (:func:`lookup_draft` over the row's prompt and output) and verify them
            in the same forward pass; the accepted prefix is what greedy decoding would
            have produced token by token, so the text is the same (up to float ties).
        compact: Drop finished rows from the batch (and their cache) as soon as they end.
        max_rows: At most this many rows decode at once (None: all of them); the others
            wait, in ``seqs``' order.
        continuous: Waiting rows join the running batch as finished rows leave it (their
            prompts run in one pass, their cache joined to the batch's, aligned at the
            right), so the steps near the end, when few rows are left, serve the next rows
            too. Off (or without ``compact``, or with a cache that cannot be joined): the
            next rows start when the batch has ended, one batch after another.

    Returns:
        The generated token ids of each row (up to, not including, an end-of-sequence
        token), and the number of tokens that went through the model.
    """
    if settings.max_new_tokens <= 0 or not seqs:
        return [[] for _ in seqs], 0
    greedy = settings.temperature <= 0
    forward = Forward(model, lead or Lead(), pad_id=pad_id, keep_arg=keep_arg, temperature=settings.temperature)
    stops = StopStrings(tokenizer, settings.stop)
    outputs = Outputs(seqs, budget=settings.max_new_tokens, eos=eos_ids(model, tokenizer), stops=stops)
    drafter = Drafter(lookup if greedy else 0)
    scheduler = Scheduler(len(seqs), max_rows, compact=compact, continuous=continuous)
    if not greedy:
        import torch

        torch.manual_seed(settings.seed)
    while True:
        rows = scheduler.admit()
        if rows:
            new = forward.prefill(rows, [seqs[b] for b in rows])
            for b, t in zip(new.rows, new.last):
                outputs.emit(b, [t])
            scheduler.start(new, outputs.done)
        batch = scheduler.running(outputs.done)
        if batch is None:
            if scheduler.waiting:
                continue
            break
        decode_step(forward, batch, drafter.drafts(batch.rows, outputs), outputs)
        if scheduler.leave(outputs.done):
            batch.mask = _trim(batch.cache, batch.mask)
    return outputs.tokens, forward.computed
