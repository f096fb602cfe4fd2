"""The served backend: log-likelihoods and generation through an OpenAI-compatible server.

A peer of the in-process backends, keeping the same text-level contract. Prompts are
tokenized here exactly as :class:`~optprompt.scoring.backends.causal.CausalLMBackend`
tokenizes them (:class:`~optprompt.scoring.backends.tokens.Tokens`: prefix, suffix and
answer separately, BOS where the model wants one) and sent as token ids, never as text, so
the server cannot tokenize them differently; the ids it echoes are checked against those
sent. An answer's score is the sum of its tokens' log-probabilities, read one of two ways
(the connection's probes choose, :func:`optprompt.models.served.connect`):

- ``next_token`` (vLLM's ``/generative_scoring``): each (context + answer prefix, next
  answer token) pair once, as the probability of that token after that sequence. Each
  input's context is read first, alone, so the server's prefix cache holds it when the
  other reads of that input arrive: the prompt is computed once per input, then each read
  costs its last partial cache block and its answer tokens. A probability that underflows
  to 0 sends that answer to the prompt-log-probability path.
- ``prompt_logprobs``: ``/v1/completions`` with ``echo`` and ``logprobs: 1`` on context +
  answer. Any server that returns prompt log-probabilities does this, but asking for them
  turns vLLM's prefix cache off, so every answer pays for the whole prompt.

With ``ranking: auto`` each input goes the way that computes fewer tokens
(:func:`next_token_pays`, from the server's cache block size): next-token reads for long
prompts, prompt log-probabilities for prompts shorter than about a block, and for every
input where the server's prefix cache is off or its block size unknown. The calibration
and everything downstream are the in-process path's own.

Requests carry several prompts each (at most ``max_batch_rows`` and ``batch_tokens``
tokens) and run concurrently, at most ``max_concurrency`` in flight (see
:class:`~optprompt.models.endpoint.Endpoint` for retries). A prompt the server refuses
(longer than its context, say) is an error naming the example.

Why servers are slower at ranking than the packed engine for the same hardware: each
request is a sequence of its own (a prompt-log-probability one computes the whole prompt,
a next-token one at least the last cache block: 128 tokens on vLLM's CPU backend, 16 on
GPUs), where the packed engine computes the shared prompt once and each distinct token once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import ServerError
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import Backend, GenerationSettings
from optprompt.scoring.backends.tokens import Tokens, cut_at_stop

if TYPE_CHECKING:
    from optprompt.models.served import ServedModel

__all__ = ["ServedBackend", "next_token_pays", "READ_OVERHEAD", "PROMPT_LOGPROB_COST"]

#: What one next-token read costs beside the tokens it computes (scheduling, the sampling
#: step), in tokens.
READ_OVERHEAD = 16
#: What a token costs with its log-probability asked (the vocabulary projection and
#: log-softmax at every position, and the server's per-position bookkeeping) against a token
#: a read computes. With this factor the token counts below reproduce both measured ratios
#: of `make bench-served` (CPU vLLM 0.32, 128-token blocks): 1.83 at 177-token prompts, 1.86
#: at 442.
PROMPT_LOGPROB_COST = 1.8


def next_token_pays(context: int, answers: Sequence[Sequence[int]], block: int) -> bool:
    """Whether next-token reads cost less for one input (``context`` tokens, its answers'
    token ids) than prompt log-probabilities, on a server whose prefix cache keeps
    ``block``-token blocks: the first read computes the whole context, each other read
    what follows the context's last full block (its answer prefix included); prompt
    log-probabilities compute context + answer for every answer, each token dearer
    (:data:`PROMPT_LOGPROB_COST`). A context shorter than a block is never cached, so
    there reads rarely pay."""
    reads = {(tuple(a[:j]), a[j]) for a in answers for j in range(len(a))}
    if not reads:
        return False
    uncached = context - context // block * block
    cost = context + READ_OVERHEAD + sum(uncached + len(p) + READ_OVERHEAD for p, _ in reads)
    cost -= uncached + READ_OVERHEAD  # counted once too many: the first read's prefix is empty
    return cost < PROMPT_LOGPROB_COST * sum(context + len(a) for a in answers)


class ServedBackend(Backend):
    """Scores and generates through a model server (vLLM, SGLang).

    Args:
        served: The connected, probed model (:func:`optprompt.models.served.connect`).
        batch_tokens: Tokens per request at most (a request carries several prompts).
        max_batch_rows: Prompts per request at most.
    """

    family = "served"
    supports_chat = True

    def __init__(self, served: ServedModel, *, batch_tokens: int = 4096, max_batch_rows: int = 16) -> None:
        super().__init__(batch_tokens=batch_tokens, max_batch_rows=max_batch_rows)
        self.served = served
        self.endpoint = served.endpoint
        self.tokenizer = served.tokenizer
        self.tokens = Tokens(served.tokenizer)

    @property
    def settings_key(self) -> list[Any]:
        """The endpoint, the served model's id and root and the tokenizer's hash (all in the
        fingerprint): two servers serving other weights under one name never share scores."""
        return [self.family, self.served.fingerprint]

    # --- log-likelihoods ----------------------------------------------------------
    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        if not requests:
            return []
        contexts, answers, _ = self.tokens.requests(requests)
        names = [f"example {r.example_id!r}" for r in requests]
        return self._score(contexts, answers, names)

    def token_loglikelihoods(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]]
    ) -> list[list[float]] | None:
        """Summed log-probability of each token continuation after its token context (ids
        as given: no BOS is added)."""
        if not contexts:
            return []
        return self._score(contexts, answers, [f"token prompt {i}" for i in range(len(contexts))])

    def naive_loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        """Reference: one request per (request, answer), one after another."""
        from optprompt.models.endpoint import Call
        from optprompt.models.served import prompt_logprobs_body, read_prompt_logprobs

        contexts, answers, _ = self.tokens.requests(requests)
        out = []
        for r, ctx, ans in zip(requests, contexts, answers):
            row = []
            for a in ans:
                ids = ctx + a
                call = Call("POST", "/completions", prompt_logprobs_body(self.served.model_id, [ids]), r.example_id)
                lp = read_prompt_logprobs(self.endpoint.call(call), [ids], self.served.ref)[0]
                row.append(float(sum(lp[len(ctx) :])))
            out.append(row)
        return out

    def _score(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], names: Sequence[str]
    ) -> list[list[float]]:
        self._check_lengths(contexts, answers, names)
        served = self.served
        if served.ranking != "next_token":
            return self._score_prompt(contexts, answers, names)
        if served.spec.ranking == "next_token":
            return self._score_next_token(contexts, answers, names)
        block = served.cache_block
        reads = [block is not None and next_token_pays(len(c), a, block) for c, a in zip(contexts, answers)]
        out: list[list[float] | None] = [None] * len(contexts)
        for way, score in ((True, self._score_next_token), (False, self._score_prompt)):
            mine = [i for i, r in enumerate(reads) if r == way]
            if mine:
                rows = score([contexts[i] for i in mine], [answers[i] for i in mine], [names[i] for i in mine])
                for i, row in zip(mine, rows):
                    out[i] = row
        return [row for row in out if row is not None]

    def _check_lengths(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], names: Sequence[str]
    ) -> None:
        limit = self.served.context_tokens
        if limit is None:
            return
        for ctx, ans, name in zip(contexts, answers, names):
            longest = len(ctx) + max((len(a) for a in ans), default=0)
            if longest > limit:
                raise ServerError(
                    f"model server {self.served.ref}: {name} is {longest} tokens with its answer, longer than "
                    f"the served context ({limit}); shorten it or set task.truncate"
                )

    def _score_next_token(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], names: Sequence[str]
    ) -> list[list[float]]:
        """Scores from next-token reads: each distinct (sequence, next token) pair once; the
        contexts in groups of ``max_batch_rows``, each group's contexts read first so that
        the server caches them before the rest of the group's reads arrive."""
        import math

        from optprompt.models.endpoint import Call
        from optprompt.models.served import next_token_body, read_next_token

        # Every distinct context once; its reads: (answer prefix, next token) pairs.
        where: dict[tuple[int, ...], int] = {}
        ctxs: list[list[int]] = []
        owner: list[str] = []
        reads: list[dict[tuple[tuple[int, ...], int], float]] = []
        for ctx, ans, name in zip(contexts, answers, names):
            key = tuple(ctx)
            if key not in where:
                where[key] = len(ctxs)
                ctxs.append(list(ctx))
                owner.append(name)
                reads.append({})
            mine = reads[where[key]]
            for a in ans:
                for j in range(len(a)):
                    mine.setdefault((tuple(a[:j]), a[j]), math.nan)
        first = [next(iter(r), None) for r in reads]

        def send(pairs: list[tuple[int, tuple[int, ...], int]]) -> None:
            by_token: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
            for c, prefix, token in pairs:
                by_token.setdefault(token, []).append((c, prefix))
            chunks: list[tuple[int, list[tuple[int, tuple[int, ...]]]]] = []
            for token, items in by_token.items():
                sizes = [len(ctxs[c]) + len(p) for c, p in items]
                for chunk in self._chunks(range(len(items)), sizes.__getitem__):
                    chunks.append((token, [items[i] for i in chunk]))
            calls = [
                Call(
                    "POST",
                    "/generative_scoring",
                    next_token_body(self.served.model_id, [ctxs[c] + list(p) for c, p in items], token),
                    _what("scoring", [owner[c] for c, _ in items]),
                    at_root=True,
                )
                for token, items in chunks
            ]
            for (token, items), answer in zip(chunks, self.endpoint.many(calls)):
                for (c, prefix), lp in zip(items, read_next_token(answer, len(items), self.served.ref)):
                    reads[c][(prefix, token)] = lp
            self.computed_tokens += sum(len(ctxs[c]) + len(p) for _, items in chunks for c, p in items)

        for start in range(0, len(ctxs), self.max_batch_rows):
            group = range(start, min(len(ctxs), start + self.max_batch_rows))
            send([(c, *first[c]) for c in group if first[c] is not None])
            send([(c, p, t) for c in group for (p, t) in reads[c] if (p, t) != first[c]])

        out: list[list[float]] = []
        fallback: list[tuple[int, int]] = []
        for i, (ctx, ans) in enumerate(zip(contexts, answers)):
            mine = reads[where[tuple(ctx)]]
            row = [sum(mine[(tuple(a[:j]), a[j])] for j in range(len(a))) for a in ans]
            fallback += [(i, k) for k, v in enumerate(row) if v == -math.inf]
            out.append(row)
        if fallback:  # a probability below what a float holds: read it from the prompt's log-probabilities
            redo = self._score_prompt(
                [contexts[i] for i, _ in fallback],
                [[answers[i][k]] for i, k in fallback],
                [names[i] for i, _ in fallback],
            )
            for (i, k), row in zip(fallback, redo):
                out[i][k] = row[0]
        return out

    def _score_prompt(
        self, contexts: Sequence[list[int]], answers: Sequence[list[list[int]]], names: Sequence[str]
    ) -> list[list[float]]:
        from optprompt.models.endpoint import Call
        from optprompt.models.served import prompt_logprobs_body, read_prompt_logprobs

        # Every distinct (context + answer) sequence once.
        index: dict[tuple[int, ...], int] = {}
        seqs: list[list[int]] = []
        owner: list[str] = []
        for ctx, ans, name in zip(contexts, answers, names):
            for a in ans:
                key = tuple(ctx + a)
                if key not in index:
                    index[key] = len(seqs)
                    seqs.append(ctx + a)
                    owner.append(name)
        chunks = self._chunks(range(len(seqs)), lambda i: len(seqs[i]))
        calls = [
            Call(
                "POST",
                "/completions",
                prompt_logprobs_body(self.served.model_id, [seqs[i] for i in chunk]),
                _what("scoring", [owner[i] for i in chunk]),
            )
            for chunk in chunks
        ]
        answers_ = self._send(calls, chunks, owner)
        logprobs: list[list[float]] = [[] for _ in seqs]
        for chunk, answer in zip(chunks, answers_):
            for i, lp in zip(chunk, read_prompt_logprobs(answer, [seqs[i] for i in chunk], self.served.ref)):
                logprobs[i] = lp
        self.computed_tokens += sum(len(s) for s in seqs)
        out = []
        for ctx, ans in zip(contexts, answers):
            row = []
            for a in ans:
                lp = logprobs[index[tuple(ctx + a)]]
                row.append(float(sum(lp[len(ctx) :])))
            out.append(row)
        return out

    def _chunks(self, items: Sequence[int] | range, length: Any) -> list[list[int]]:
        """Consecutive items in requests of at most ``max_batch_rows`` prompts and
        ``batch_tokens`` tokens (a longer prompt goes alone)."""
        chunks: list[list[int]] = []
        cur: list[int] = []
        used = 0
        for i in items:
            n = length(i)
            if cur and (len(cur) >= self.max_batch_rows or used + n > self.batch_tokens):
                chunks.append(cur)
                cur, used = [], 0
            cur.append(i)
            used += n
        if cur:
            chunks.append(cur)
        return chunks

    def _send(self, calls: list[Any], chunks: list[list[int]], owner: Sequence[str]) -> list[Any]:
        """Send ``calls``; when the server refuses one that carries several prompts, each of
        its prompts is sent alone so that the error names the example at fault."""
        from optprompt.models.endpoint import Call

        try:
            return self.endpoint.many(calls)
        except ServerError:
            singles = []
            for call, chunk in zip(calls, chunks):
                if len(chunk) == 1:
                    continue
                for prompt, i in zip(call.body["prompt"], chunk):
                    body = {**call.body, "prompt": [prompt]}
                    singles.append(Call("POST", call.path, body, _what("scoring", [owner[i]])))
            self.endpoint.many(singles)  # raises, naming the example
            raise

    # --- guided decoding ----------------------------------------------------------
    def guided_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[int | None]:
        """What the server's guided decoding answers for each prompt, constrained to its
        choices (vLLM's ``structured_outputs: {choice: [...]}``: greedy, token by token, no
        calibration): the index of the choice, or None where the text is none of them.
        Prompts with the same choices share requests."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, c in enumerate(choices):
            groups.setdefault(tuple(c), []).append(i)
        budget = max(len(self.tokens.encode(c)) for cs in choices for c in cs) + 2
        out: list[int | None] = [None] * len(prompts)
        for options, members in groups.items():
            texts = self.guided([prompts[i] for i in members], {"choice": list(options)}, budget)
            for i, text in zip(members, texts):
                out[i] = options.index(text) if text in options else None
        return out

    def guided(self, prompts: Sequence[str], structured: dict[str, Any], max_tokens: int) -> list[str]:
        """What the server generates for each prompt, greedily, under its guided decoding
        (vLLM's ``structured_outputs``: ``{"choice": [...]}``, ``{"grammar": GBNF}``,
        ``{"json": schema}``), as generated: the text is in the constrained language unless
        the token budget cut it. A constraint the server cannot compile is an error naming it."""
        from optprompt.models.endpoint import Call

        encoded = [self.tokens.prefix(p) for p in prompts]
        chunks = self._chunks(range(len(encoded)), lambda i: len(encoded[i]) + max_tokens)
        kind = ", ".join(structured)
        calls = [
            Call(
                "POST",
                "/completions",
                {
                    "model": self.served.model_id,
                    "prompt": [encoded[i] for i in chunk],
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                    "structured_outputs": dict(structured),
                },
                _what(f"guided decoding ({kind}) for", [f"prompt {i}" for i in chunk]),
            )
            for chunk in chunks
        ]
        out: list[str | None] = [None] * len(prompts)
        for chunk, answer in zip(chunks, self.endpoint.many(calls)):
            for choice in answer.get("choices") or []:
                j, text = _choice_text(choice, self.served.ref)
                if not 0 <= j < len(chunk):
                    raise ServerError(f"{self.served.ref}: a completion for prompt {j} of {len(chunk)}")
                out[chunk[j]] = text
        missing = [i for i, t in enumerate(out) if t is None]
        if missing:
            raise ServerError(f"{self.served.ref}: no completion for prompt {missing[0]} under guided decoding")
        return [t for t in out if t is not None]

    # --- generation ---------------------------------------------------------------
    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        """Greedy (or seeded sampled) continuations through ``/v1/completions`` on the
        prompts' token ids, stopping at the stop strings or the token budget."""
        from optprompt.models.endpoint import Call

        if not prompts:
            return []
        encoded = self.tokens.prompts(prompts)
        budget = settings.max_new_tokens
        limit = self.served.context_tokens
        if limit is not None:
            for i, e in enumerate(encoded):
                if len(e) + budget > limit:
                    raise ServerError(
                        f"model server {self.served.ref}: prompt {i} ({prompts[i][:60]!r}...) is {len(e)} tokens; "
                        f"with {budget} new tokens it passes the served context ({limit})"
                    )
        chunks = self._chunks(range(len(encoded)), lambda i: len(encoded[i]) + budget)
        base: dict[str, Any] = {
            "model": self.served.model_id,
            "max_tokens": budget,
            "temperature": max(0.0, settings.temperature),
            "stop": [s for s in settings.stop if s],
            "return_token_ids": True,
        }
        if settings.temperature > 0:
            base.update(seed=settings.seed, top_p=1.0)
        calls = [
            Call(
                "POST",
                "/completions",
                {**base, "prompt": [encoded[i] for i in chunk]},
                _what("generating for", [f"prompt {i}" for i in chunk]),
            )
            for chunk in chunks
        ]
        out = [""] * len(prompts)
        for chunk, answer in zip(chunks, self.endpoint.many(calls)):
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if not isinstance(choices, list) or len(choices) != len(chunk):
                raise ServerError(f"{self.served.ref}: expected {len(chunk)} completions, got {str(answer)[:200]}")
            for position, choice in enumerate(choices):
                j = choice.get("index", position)
                text = choice.get("text")
                if not isinstance(j, int) or not 0 <= j < len(chunk) or not isinstance(text, str):
                    raise ServerError(f"{self.served.ref}: an unreadable completion ({str(choice)[:200]})")
                echoed = choice.get("prompt_token_ids")
                if echoed is not None and list(echoed) != encoded[chunk[j]]:
                    raise ServerError(f"{self.served.ref}: the server echoed other prompt ids than were sent")
                out[chunk[j]] = cut_at_stop(text, settings.stop)
        self.computed_tokens += sum(len(e) for e in encoded)
        return out


def _choice_text(choice: Any, ref: str) -> tuple[int, str]:
    j, text = choice.get("index"), choice.get("text")
    if not isinstance(j, int) or not isinstance(text, str):
        raise ServerError(f"{ref}: an unreadable completion ({str(choice)[:200]})")
    return j, text


def _what(action: str, names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(names) == 1:
        return f"{action} {names[0]}"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{action} {shown}"
