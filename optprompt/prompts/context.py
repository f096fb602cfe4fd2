"""Prompts that must fit the model's context window: ``task.truncate``.

A rendered request (prompt + input + the longest answer, or + the generation budget)
longer than the model's context is handled by a named policy instead of being scored
silently past the positions the model knows:

- ``error`` (default): a :class:`~optprompt.errors.DataError` naming the example and the
  lengths (checked for the baseline prompt over dev and test before trial 0);
- ``left``: the input loses tokens at its start until the request fits;
- ``right``: the input loses tokens at its end.

Only the input is cut, never the instruction, demonstrations or answers: a candidate
whose prompt alone does not fit is rejected (:class:`~optprompt.errors.CandidateRejected`).
Truncated examples are counted (:meth:`ContextLimitedRenderer.summary`) for result.json.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from optprompt.errors import CandidateRejected, DataError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.render import ChatFormatter, PromptRenderer, ScoreRequest
from optprompt.prompts.retrieval import Retrievers
from optprompt.tasks.task import Example, Task

if TYPE_CHECKING:
    from optprompt.config.spec import TaskSpec
    from optprompt.models.loading import LoadedModel

__all__ = ["TRUNCATE_POLICIES", "ContextLimitedRenderer", "check_context", "context_length", "context_limited_renderer"]

TruncatePolicy = Literal["error", "left", "right"]
TRUNCATE_POLICIES: tuple[str, ...] = ("error", "left", "right")
_CONFIG_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
_MAX_TRIES = 6


def context_length(model: Any, tokenizer: Any = None) -> int | None:
    """The number of positions ``model`` knows (its config), else the tokenizer's
    ``model_max_length`` when it is a real figure; None when there is no limit to tell
    (e.g. T5's relative positions)."""
    config = getattr(model, "config", None)
    for key in _CONFIG_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return None


class ContextLimitedRenderer(PromptRenderer):
    """A :class:`PromptRenderer` whose requests fit ``context`` tokens under ``policy``.

    Args:
        task: The task.
        chat_formatter: As for :class:`PromptRenderer`.
        tokenizer: The model's tokenizer (lengths are counted with it).
        context: The model's context length; None: no limit, nothing is checked.
        policy: ``error``, ``left`` or ``right`` (``task.truncate``).
        reserve: Tokens kept free after the prompt (generation: ``max_new_tokens``).
        retrievers: As for :class:`PromptRenderer`.
    """

    def __init__(
        self,
        task: Task,
        chat_formatter: ChatFormatter | None = None,
        *,
        tokenizer: Any,
        context: int | None,
        policy: TruncatePolicy = "error",
        reserve: int = 0,
        retrievers: Retrievers | None = None,
    ) -> None:
        super().__init__(task, chat_formatter, retrievers=retrievers)
        if policy not in TRUNCATE_POLICIES:
            raise DataError(f"task.truncate: {policy!r} is not one of {', '.join(TRUNCATE_POLICIES)}")
        self.tokenizer = tokenizer
        self.context = context
        self.policy = policy
        self.reserve = reserve
        self.truncated: dict[str, int] = {}  # example id -> most input tokens cut
        self._prefix_tokens: dict[str, int] = {}

    # --- lengths ------------------------------------------------------------------
    def _count(self, text: str, *, special: bool = False) -> int:
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def length(self, request: ScoreRequest) -> int:
        """Tokens the request takes: prefix (with BOS), suffix, the longest answer, the reserve."""
        n = self._prefix_tokens.get(request.prefix)
        if n is None:
            if len(self._prefix_tokens) > 4096:
                self._prefix_tokens.clear()
            n = self._prefix_tokens[request.prefix] = self._count(request.prefix, special=True)
        answers = max((self._count(c) for c in request.continuations), default=0)
        return n + self._count(request.suffix) + answers + self.reserve

    # --- requests -----------------------------------------------------------------
    def request(self, candidate: PromptCandidate, example: Example) -> ScoreRequest:
        req = super().request(candidate, example)
        if self.context is None:
            return req
        n = self.length(req)
        if n <= self.context:
            return req
        input_tokens = self._count(example.input)
        fixed = n - input_tokens
        if fixed > self.context:
            raise CandidateRejected(
                f"the prompt around the input is {fixed} tokens (with the answers"
                f"{' and the generation budget' if self.reserve else ''}), more than the model's context of "
                f"{self.context}; no truncation of the input can make example {example.id!r} fit"
            )
        if self.policy == "error":
            raise DataError(
                f"example {example.id!r} ({example.row or 'no row'}): prompt + input is {n} tokens "
                f"(input {input_tokens}), more than the model's context of {self.context} tokens; "
                "set task.truncate to left or right to cut the input to fit"
            )
        return self._truncated(candidate, example, n)

    def _truncated(self, candidate: PromptCandidate, example: Example, n: int) -> ScoreRequest:
        text = example.input
        for _ in range(_MAX_TRIES):
            over = n - self.context  # type: ignore[operator]
            text = self._cut(text, over)
            req = super().request(candidate, dataclasses.replace(example, input=text))
            n = self.length(req)
            if n <= self.context:  # type: ignore[operator]
                cut = self._count(example.input) - self._count(text)
                self.truncated[example.id] = max(self.truncated.get(example.id, 0), cut)
                return req
        raise CandidateRejected(f"example {example.id!r}: could not cut its input to fit the context of {self.context}")

    def _cut(self, text: str, over: int) -> str:
        """``text`` without its first (left) or last (right) ``over`` tokens."""
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc.get("offset_mapping")
        except (NotImplementedError, ValueError, TypeError):  # a slow tokenizer has no offsets
            enc, offsets = self.tokenizer(text, add_special_tokens=False), None
        ids = enc["input_ids"]
        keep = max(0, len(ids) - max(over, 1))
        if keep == 0:
            return ""
        if offsets:
            if self.policy == "left":
                return text[offsets[len(ids) - keep][0] :].lstrip()
            return text[: offsets[keep - 1][1]].rstrip()
        kept = ids[len(ids) - keep :] if self.policy == "left" else ids[:keep]
        return self.tokenizer.decode(kept, skip_special_tokens=True)

    # --- checks and figures -------------------------------------------------------
    def check(self, candidate: PromptCandidate, examples: Sequence[Example]) -> None:
        """Render ``candidate`` for every example: under ``error``, the first that does not
        fit raises (before any model time is spent)."""
        for ex in examples:
            self.request(candidate, ex)

    def summary(self) -> dict[str, Any]:
        """What result.json records: the limit, the policy, and how many examples were cut."""
        return {
            "limit": self.context,
            "truncate": self.policy,
            "truncated_examples": len(self.truncated),
            "truncated_ids": sorted(self.truncated)[:20],
            "max_tokens_cut": max(self.truncated.values(), default=0),
        }


def context_limited_renderer(
    task: Task, model: LoadedModel, chat: bool, spec: TaskSpec, *, retrievers: Retrievers | None = None
) -> ContextLimitedRenderer:
    """The study's renderer for ``model``: its chat template when ``chat``, its context
    length, ``spec.truncate``, and room for ``spec.max_new_tokens`` on generation and extraction tasks
    (``retrievers``: for candidates with per-input demonstrations)."""
    return ContextLimitedRenderer(
        task,
        model.chat_formatter() if chat else None,
        tokenizer=model.tokenizer,
        context=model.context_tokens,
        policy=spec.truncate,
        reserve=spec.max_new_tokens if task.generates else 0,
        retrievers=retrievers,
    )


def check_context(renderer: PromptRenderer, baseline: PromptCandidate, task: Task) -> None:
    """Before trial 0: the baseline prompt over dev and test fits (or is cut) under the policy.

    Raises:
        DataError: ``task.truncate: error`` and an example does not fit (named, with lengths).
    """
    if isinstance(renderer, ContextLimitedRenderer) and renderer.context is not None:
        renderer.check(baseline, [*task.dev, *task.test])
