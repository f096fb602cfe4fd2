"""Greedy decoding constrained to an answer set, read off one packed scoring pass.

Greedy constrained decoding takes, at each step, the likeliest next token among those
that keep the output a prefix of some answer (and the end-of-sequence token where an
answer is complete and a longer one could go on). Every token it can compare is a node of
the answers' token trie: the log-probability of token ``t`` after output ``o`` is
``S(o + t) - S(o)``, where ``S`` is the summed log-probability of a trie prefix. The packed
scoring engine computes ``S`` for every prefix of every answer (and ``prefix + EOS`` where
a complete answer is also a prefix of a longer one) with each distinct token once, many
examples per forward pass and the prompts' shared prefix cached, so the whole test split
is decoded in about the time of one ranked scoring of it instead of one forward pass per
example and token. The answers are the step-by-step decoder's (``constrained.py``) up to
float rounding at exact ties: the softmax keeps the order of the logits.

A multi-label list is decoded label by label, all examples still going in one pass a
step: the prompt plus the labels chosen so far is the context, ", LABEL" for each label
not yet chosen and the end of the answer are the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from optprompt.errors import OptpromptError

__all__ = ["greedy_choice", "label_lists", "packed_choices"]

Tokens = tuple[int, ...]


def greedy_choice(answers: Sequence[Sequence[int]], eos: int | None, score: Callable[[Tokens, int], float]) -> int:
    """Index of the answer greedy constrained decoding produces, given ``score(output, token)``:
    the model's score of ``token`` after the output so far (logit or log-probability)."""
    out: Tokens = ()
    while True:
        live = [i for i, a in enumerate(answers) if tuple(a[: len(out)]) == out]
        complete = [i for i in live if len(answers[i]) == len(out)]
        allowed = {answers[i][len(out)] for i in live if len(answers[i]) > len(out)}
        if complete and (not allowed or eos is None):
            return complete[0]
        if complete:
            allowed.add(eos)  # type: ignore[arg-type]
        if not allowed:  # cannot happen: every output so far is a prefix of an answer
            raise OptpromptError("constrained decoding reached a dead end")
        token = max(sorted(allowed), key=lambda t: score(out, t))
        if complete and token == eos:
            return complete[0]
        out = (*out, token)


def _trie_prefixes(answers: Sequence[Sequence[int]], eos: int | None) -> list[Tokens]:
    """Every prefix greedy decoding may score: each answer's prefixes, and an answer followed
    by EOS where a longer answer continues it."""
    seqs = {tuple(a[:k]) for a in answers for k in range(1, len(a) + 1)}
    if eos is not None:
        whole = {tuple(a) for a in answers}
        seqs |= {a + (eos,) for a in whole if any(len(b) > len(a) and b[: len(a)] == a for b in whole)}
    return sorted(seqs)


def packed_choices(
    backend: Any, contexts: Sequence[list[int]], answer_sets: Sequence[Sequence[Sequence[int]]], eos: int | None
) -> list[int] | None:
    """For each context (token ids), the index of the answer greedy decoding constrained to
    its answer set produces; one packed scoring pass for all. None when ``backend`` cannot
    score token continuations that way (no packed engine)."""
    score_tokens = getattr(backend, "token_loglikelihoods", None)
    prefixes = [_trie_prefixes(answers, eos) for answers in answer_sets]
    sums = score_tokens(list(contexts), [[list(p) for p in ps] for ps in prefixes]) if score_tokens else None
    if sums is None:
        return None
    picks = []
    for answers, ps, s in zip(answer_sets, prefixes, sums, strict=True):
        total: dict[Tokens, float] = {(): 0.0, **dict(zip(ps, s, strict=True))}
        picks.append(greedy_choice(answers, eos, lambda out, t, total=total: total[(*out, t)] - total[out]))
    return picks


def label_lists(
    choose: Callable[[list[list[int]], list[list[list[int]]]], list[int]],
    encode: Callable[[str], list[int]],
    contexts: Sequence[list[int]],
    labels: Sequence[str],
    *,
    lead: str,
    separator: str,
    end: int,
) -> list[list[str]]:
    """For each context, the labels greedy decoding constrained to a list of distinct
    ``labels`` produces: first a label or ``none`` (after ``lead``), then ``separator +
    LABEL`` for a label not yet chosen, or ``end``. ``choose(contexts, answer_sets)`` picks
    one answer per context (:func:`packed_choices`, or step-by-step decoding); every
    context still going is decided in one call a step."""
    chosen: list[list[str]] = [[] for _ in contexts]
    grown = [list(c) for c in contexts]
    going = list(range(len(contexts)))
    while going:
        left = {i: [lbl for lbl in labels if lbl not in chosen[i]] for i in going}
        options = {i: [encode((separator if chosen[i] else lead) + lbl) for lbl in left[i]] for i in going}
        last = {i: [end] if chosen[i] else encode(lead + "none") for i in going}
        picks = choose([grown[i] for i in going], [[*options[i], last[i]] for i in going])
        still = []
        for i, pick in zip(going, picks, strict=True):
            if pick == len(left[i]):  # the end of the answer (or "none") won
                continue
            chosen[i].append(left[i][pick])
            grown[i] += options[i][pick]
            if len(chosen[i]) < len(labels):
                still.append(i)
        going = still
    return chosen
