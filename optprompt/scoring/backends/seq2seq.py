"""Encoder-decoder backend (T5-style): the prompt is the encoder input, the answer is
scored by the decoder. Each example's encoder pass is shared by all its answers."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.errors import CandidateRejected
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import GenerationSettings, LocalBackend, sorted_batches
from optprompt.scoring.backends.causal import cut_at_stop

__all__ = ["Seq2SeqBackend"]


class Seq2SeqBackend(LocalBackend):
    """Encoder-decoder models (T5, BART, ...)."""

    family = "seq2seq"
    auto_class = "AutoModelForSeq2SeqLM"

    def _encode_input(self, text: str) -> list[int]:
        return self.tokenizer(text).input_ids  # with the model's special tokens (T5: </s>)

    def _encode_answer(self, text: str) -> list[int]:
        ids = self.tokenizer(text.strip(), add_special_tokens=False).input_ids
        if not ids:
            raise CandidateRejected(f"answer {text!r} tokenizes to nothing")
        return ids

    @property
    def _start(self) -> int:
        start = self.model.config.decoder_start_token_id
        return start if start is not None else (self.tokenizer.pad_token_id or 0)

    @property
    def _pad(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        import torch

        results: list[list[float]] = [[0.0] * len(r.continuations) for r in requests]
        rows = [
            (i, self._encode_input(r.prefix + r.suffix), [self._encode_answer(c) for c in r.continuations])
            for i, r in enumerate(requests)
        ]
        with torch.inference_mode():
            for batch in sorted_batches(rows, lambda r: len(r[1]), self.batch_tokens, self.max_batch_rows):
                self._with_oom_backoff(self._score_batch, batch, results)
        return results

    def _score_batch(self, batch, results: list[list[float]]) -> None:  # type: ignore[no-untyped-def]
        import torch

        L = max(len(ids) for _, ids, _ in batch)
        enc_ids = torch.full((len(batch), L), self._pad, dtype=torch.long)
        enc_mask = torch.zeros((len(batch), L), dtype=torch.long)
        for b, (_, ids, _) in enumerate(batch):
            enc_ids[b, : len(ids)] = torch.tensor(ids)
            enc_mask[b, : len(ids)] = 1
        enc_ids, enc_mask = enc_ids.to(self.device), enc_mask.to(self.device)
        hidden = self.model.get_encoder()(input_ids=enc_ids, attention_mask=enc_mask).last_hidden_state
        self.computed_tokens += int(enc_mask.sum())
        options = [(b, j, c) for b, (_, _, conts) in enumerate(batch) for j, c in enumerate(conts)]
        T = max(len(c) for _, _, c in options)
        dec_ids = torch.full((len(options), T), self._pad, dtype=torch.long)
        dec_mask = torch.zeros((len(options), T), dtype=torch.long)
        for k, (_, _, c) in enumerate(options):
            seq = [self._start, *c[:-1]]
            dec_ids[k, : len(seq)] = torch.tensor(seq)
            dec_mask[k, : len(seq)] = 1
        sel = torch.tensor([b for b, _, _ in options], device=self.device)
        from transformers.modeling_outputs import BaseModelOutput

        out = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden[sel]),
            attention_mask=enc_mask[sel],
            decoder_input_ids=dec_ids.to(self.device),
            decoder_attention_mask=dec_mask.to(self.device),
        )
        self.computed_tokens += int(dec_mask.sum())
        logprobs = torch.log_softmax(out.logits.float(), dim=-1).cpu()
        for k, (b, j, c) in enumerate(options):
            results[batch[b][0]][j] = float(sum(logprobs[k, t, c[t]] for t in range(len(c))))

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference: one full model call per (request, answer)."""
        import torch

        out = []
        with torch.inference_mode():
            for r in requests:
                enc = torch.tensor([self._encode_input(r.prefix + r.suffix)], device=self.device)
                row = []
                for cont in r.continuations:
                    c = self._encode_answer(cont)
                    dec = torch.tensor([[self._start, *c[:-1]]], device=self.device)
                    lp = torch.log_softmax(self.model(input_ids=enc, decoder_input_ids=dec).logits[0].float(), -1)
                    row.append(float(sum(lp[t, c[t]] for t in range(len(c)))))
                out.append(row)
        return out

    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        import torch

        encoded = [self._encode_input(p) for p in prompts]
        out = [""] * len(prompts)
        with torch.inference_mode():
            for batch in sorted_batches(
                list(range(len(prompts))),
                lambda i: len(encoded[i]) + settings.max_new_tokens,
                self.batch_tokens,
                self.max_batch_rows,
            ):
                L = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), L), self._pad, dtype=torch.long)
                mask = torch.zeros((len(batch), L), dtype=torch.long)
                for b, i in enumerate(batch):
                    ids[b, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[b, : len(encoded[i])] = 1
                if settings.temperature > 0:
                    torch.manual_seed(settings.seed)
                gen = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=settings.max_new_tokens,
                    **settings.sampling_kwargs(),
                    stop_strings=list(settings.stop) or None,
                    tokenizer=self.tokenizer,
                )
                self.computed_tokens += int(mask.sum()) + gen.numel()
                for i, t in zip(batch, self.tokenizer.batch_decode(gen, skip_special_tokens=True)):
                    out[i] = cut_at_stop(t, settings.stop)
        return out
