"""Tokenisation rules shared by every backend that feeds a causal model token ids: the
in-process engines, their naive reference and the served backend (which sends ids, never
text, so a server scores exactly the tokens the in-process path would)."""

from __future__ import annotations

from collections.abc import Sequence

from optprompt.errors import CandidateRejected
from optprompt.prompts.render import ScoreRequest

__all__ = ["Tokens", "cut_at_stop"]


class Tokens:
    """Tokenisation rules shared by the fast path and the naive reference."""

    def __init__(self, tokenizer) -> None:  # type: ignore[no-untyped-def]
        self.tok = tokenizer
        bos = tokenizer.bos_token_id
        adds_bos = bos is not None and tokenizer("a").input_ids[:1] == [bos]
        self.bos = [bos] if adds_bos else []
        self.bos_text = tokenizer.bos_token if adds_bos else None
        pad = tokenizer.pad_token_id
        #: Filler for padded positions (masked out): the pad token, else EOS, else 0.
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids if text else []

    def prefix(self, text: str) -> list[int]:
        ids = self.encode(text)
        if self.bos and not (self.bos_text and text.startswith(self.bos_text)):
            ids = self.bos + ids
        return ids

    def prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """Each prompt's token ids as a continuation starts from them (BOS where the model
        adds one); an empty prompt is refused, since nothing can continue it."""
        encoded = [self.prefix(p) for p in prompts]
        if any(not e for e in encoded):
            raise CandidateRejected("an empty prompt cannot be continued")
        return encoded

    def continuation(self, text: str) -> list[int]:
        ids = self.encode(text)
        if not ids:
            raise CandidateRejected(f"answer {text!r} tokenizes to nothing")
        return ids

    def requests(self, requests: Sequence[ScoreRequest]) -> tuple[list[list[int]], list[list[list[int]]], list[int]]:
        """Each request's context tokens, its answers' tokens and its shared prefix's length
        (a prefix shared by several requests is tokenised once)."""
        prefixes: dict[str, list[int]] = {}
        contexts, answers, prefix_lengths = [], [], []
        for r in requests:
            p_ids = prefixes.get(r.prefix)
            if p_ids is None:
                p_ids = prefixes[r.prefix] = self.prefix(r.prefix)
            ctx = p_ids + self.encode(r.suffix)
            if not ctx:
                raise CandidateRejected("an empty prompt cannot be scored")
            contexts.append(ctx)
            answers.append([self.continuation(c) for c in r.continuations])
            prefix_lengths.append(len(p_ids))
        return contexts, answers, prefix_lengths


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]
