"""Masked LM backend (PET / LM-BFF style cloze scoring).

The answer slot becomes the tokenizer's mask token at the end of the prompt; each
label's single-token verbalizer is scored by the log-probability the model gives it at
that position. Multi-token verbalizers are rejected (they have no exact cloze score).
"""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.errors import CandidateRejected, ModelError
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import LocalBackend, sorted_batches

__all__ = ["MaskedLMBackend"]


class MaskedLMBackend(LocalBackend):
    """Encoder-only masked LMs (BERT, RoBERTa, DeBERTa, ...)."""

    family = "masked"
    auto_class = "AutoModelForMaskedLM"

    def __init__(self, loaded, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(loaded, **kwargs)
        if self.tokenizer.mask_token_id is None:
            raise ModelError(f"model {loaded.ref!r} has no mask token: it cannot score cloze prompts")
        enc = lambda s: self.tokenizer(s, add_special_tokens=False).input_ids  # noqa: E731
        # WordPiece ignores spaces between words; byte-level BPE makes them part of the token.
        self.space_sensitive = enc("a b") != enc("a") + enc("b")

    def _cloze(self, r: ScoreRequest) -> tuple[list[int], int, list[int]]:
        base = r.prefix + r.suffix
        text = base + self.tokenizer.mask_token if self.space_sensitive else f"{base} {self.tokenizer.mask_token}"
        ids = self.tokenizer(text).input_ids
        pos = ids.index(self.tokenizer.mask_token_id)
        answers = []
        for c in r.continuations:
            toks = self.tokenizer(c if self.space_sensitive else c.strip(), add_special_tokens=False).input_ids
            if len(toks) != 1:
                raise CandidateRejected(f"masked LMs need single-token answers; {c!r} is {len(toks)} tokens")
            answers.append(toks[0])
        return ids, pos, answers

    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        import torch

        rows = [(i, *self._cloze(r)) for i, r in enumerate(requests)]
        results: list[list[float]] = [[] for _ in requests]
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for batch in sorted_batches(rows, lambda r: len(r[1]), self.batch_tokens, self.max_batch_rows):

                def run(batch=batch) -> None:  # type: ignore[no-untyped-def]
                    L = max(len(r[1]) for r in batch)
                    ids = torch.full((len(batch), L), pad, dtype=torch.long)
                    mask = torch.zeros((len(batch), L), dtype=torch.long)
                    for b, (_, toks, _, _) in enumerate(batch):
                        ids[b, : len(toks)] = torch.tensor(toks)
                        mask[b, : len(toks)] = 1
                    logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                    self.computed_tokens += int(mask.sum())
                    for b, (i, _, pos, answers) in enumerate(batch):
                        lp = torch.log_softmax(logits[b, pos].float(), dim=-1).cpu()
                        results[i] = [float(lp[a]) for a in answers]

                self._with_oom_backoff(run)
        return results

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference: one unpadded forward per request."""
        import torch

        out = []
        with torch.inference_mode():
            for r in requests:
                ids, pos, answers = self._cloze(r)
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, pos]
                lp = torch.log_softmax(logits.float(), dim=-1)
                out.append([float(lp[a]) for a in answers])
        return out
