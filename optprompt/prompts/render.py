"""Render a candidate and an example into scoring requests.

A rendered prompt is split into a ``prefix`` shared by every example of the candidate
(system turn, instruction, demonstrations) and a per-example ``suffix``; the scorer
computes the prefix once. The split is found by rendering with a sentinel in place of the
input, so any chat template works.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts.candidate import PromptCandidate
from optprompt.prompts.entity_formats import describe_format, describe_types, serialize_entities
from optprompt.prompts.retrieval import Embedder, Retrievers
from optprompt.tasks.task import Example, Task

__all__ = [
    "ScoreRequest",
    "PromptRenderer",
    "ChatFormatter",
    "SENTINEL",
    "split_request",
    "options_block",
    "choice_letters",
    "fill_query",
    "fill_labels",
    "fill_entity_prompt",
    "join_prompt",
    "demo_text",
    "retrieved_placeholder",
]

# messages -> text, e.g. a tokenizer's apply_chat_template with add_generation_prompt.
ChatFormatter = Callable[[list[dict[str, str]]], str]

#: Stands for the input while a prompt is rendered, to find where the shared prefix ends.
SENTINEL = "\u27e6OPTPROMPT_INPUT\u27e7"
_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class ScoreRequest:
    """Score each continuation after ``prefix + suffix``.

    Attributes:
        example_id: The example this request belongs to.
        prefix: Text shared by every example of one candidate.
        suffix: The example's own text, up to where the answer starts.
        continuations: One answer text per choice (label or option), in choice order.
    """

    example_id: str
    prefix: str
    suffix: str
    continuations: tuple[str, ...]


# --- the prompt format: one definition, used by the study and by exported prompt cards ---
def options_block(options: Sequence[str], choice_format: str) -> str:
    """The ``{options}`` block of a multiple-choice query: lettered or bulleted options."""
    if choice_format == "letters":
        return "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(options))
    return "\n".join(f"- {o}" for o in options)


def choice_letters(n: int) -> tuple[str, ...]:
    """The answer letters of ``n`` options (A, B, C...)."""
    return tuple(_LETTERS[:n])


def fill_query(template: str, text: str, options: Sequence[str] | None, choice_format: str) -> str:
    """One example's query: ``template`` with ``{input}`` (and ``{options}``) filled in."""
    out = template.replace("{input}", text)
    if "{options}" in out:
        out = out.replace("{options}", options_block(list(options or ()), choice_format))
    return out


def fill_labels(instruction: str, words: Sequence[str]) -> str:
    """The instruction with ``{labels}`` replaced by the answer words joined by ", "."""
    return instruction.replace("{labels}", ", ".join(words))


def demo_text(query: str, answer: str) -> str:
    """A demonstration: its query and answer, after a space (a newline when the answer
    takes several lines, e.g. one entity per line)."""
    return f"{query}{chr(10) if chr(10) in answer else ' '}{answer}"


def join_prompt(instruction: str, demos: Sequence[str], query: str, separator: str) -> str:
    """The user turn: instruction (when not blank), demonstrations, then the query."""
    parts = [instruction] if instruction.strip() else []
    parts.extend(demos)
    parts.append(query)
    return separator.join(parts)


def fill_entity_prompt(
    instruction: str, words: dict[str, str], descriptions: dict[str, str], output_format: str
) -> str:
    """An extraction instruction with its placeholders filled: ``{labels}`` (the type words),
    ``{types}`` (the words with their descriptions) and ``{format}`` (what to write)."""
    described = {words.get(t, t): d for t, d in descriptions.items()}
    ordered = list(words.values())
    return (
        instruction.replace("{labels}", ", ".join(ordered))
        .replace("{types}", describe_types(ordered, described))
        .replace("{format}", describe_format(output_format))
    )


def retrieved_placeholder(k: int, pool: int) -> str:
    """What a prompt shown without an input says in place of demonstrations retrieved per input."""
    return f"[{k} demonstration{'s' if k != 1 else ''} retrieved for the input from {pool} examples]"


def split_request(
    example_id: str, body: str, text: str, words: Sequence[str], chat_formatter: ChatFormatter | None
) -> ScoreRequest:
    """The request for ``text``, from a user turn ``body`` holding :data:`SENTINEL` once.

    Chat: ``body`` becomes the user turn of the template and answers follow the
    assistant header as they are; plain: answers follow the prompt after a space.
    """
    if chat_formatter is not None:
        full = chat_formatter([{"role": "user", "content": body}])
        continuations = tuple(words)
    else:
        full = body
        continuations = tuple(" " + w for w in words)
    if full.count(SENTINEL) != 1:
        raise CandidateRejected("the chat template dropped or repeated the input")
    prefix, rest = full.split(SENTINEL)
    # Keep the space before the input with the input ("Input:" + " The..."), so the
    # input's first word tokenizes as it would in running text, not as " " + "The".
    shared = prefix.rstrip(" \t")
    return ScoreRequest(example_id, shared, prefix[len(shared) :] + text + rest, continuations)


class PromptRenderer:
    """Turns (candidate, example) into text, with or without a chat template.

    Args:
        task: The task.
        chat_formatter: The model's chat template (None: plain text).
        retrievers: Embeds and retrieves the demonstrations of candidates that retrieve
            them per input (:mod:`optprompt.prompts.retrieval`); None: such candidates
            cannot be rendered.
    """

    def __init__(
        self, task: Task, chat_formatter: ChatFormatter | None = None, *, retrievers: Retrievers | None = None
    ) -> None:
        self.task = task
        self.chat_formatter = chat_formatter
        self.retrievers = retrievers

    # --- pieces -------------------------------------------------------------------
    def answer_words(self, candidate: PromptCandidate, example: Example) -> tuple[str, ...]:
        """What the model would say for each choice of ``example`` (generation: the reference;
        extraction: the gold entities written in the candidate's output format)."""
        if self.task.extracts_entities:
            return (
                serialize_entities(
                    example.input, example.entities, self.output_format(candidate), self.type_words(candidate)
                ),
            )
        if self.task.generates:
            return (example.target,)
        if self.task.has_fixed_labels:
            verbalizer = candidate.verbalizer_map
            missing = [lbl for lbl in self.task.labels if lbl not in verbalizer]
            if missing:
                raise CandidateRejected(f"verbalizer has no word for label(s) {missing}")
            words = tuple(verbalizer[lbl] for lbl in self.task.labels)
            if len(set(words)) != len(words):
                raise CandidateRejected(f"two labels share a verbalizer word: {verbalizer}")
            return words
        if candidate.choice_format == "letters":
            if len(example.options) > len(_LETTERS):
                raise CandidateRejected(f"{example.row}: too many options for letters")
            return choice_letters(len(example.options))
        return example.options

    def _query(self, candidate: PromptCandidate, example: Example, text: str) -> str:
        if "{options}" not in candidate.template and self.task.has_options and candidate.choice_format == "letters":
            raise CandidateRejected("letter answers need an {options} placeholder in the template")
        return fill_query(candidate.template, text, example.options, candidate.choice_format)

    def output_format(self, candidate: PromptCandidate) -> str:
        """Extraction: the candidate's output format (the task's when it names none)."""
        return candidate.output_format or self.task.output_format or "lines"

    def type_words(self, candidate: PromptCandidate) -> dict[str, str]:
        """Extraction: entity type -> the word the candidate uses for it."""
        words = candidate.verbalizer_map
        return {lbl: words.get(lbl, self.task.verbalizer.get(lbl, lbl)) for lbl in self.task.labels}

    def instruction(self, candidate: PromptCandidate, example: Example | None = None) -> str:
        if self.task.extracts_entities:
            words = self.type_words(candidate)
            return fill_entity_prompt(
                candidate.instruction, words, self.task.descriptions, self.output_format(candidate)
            )
        # the label words (classification), the labels to list (multi-label); none otherwise
        words = [candidate.verbalizer_map.get(lbl, lbl) for lbl in self.task.labels]
        return fill_labels(candidate.instruction, words)

    def demos(self, candidate: PromptCandidate, example: Example | None = None) -> list[Example]:
        """The demonstrations shown before ``example``: the fixed ones, or those retrieved
        for it (a candidate that retrieves them needs ``example``)."""
        if candidate.retrieval is not None:
            if example is None:
                raise ValueError("demonstrations retrieved per input need the input")
            return self.retrievers_for().demos(candidate.retrieval, self.task, example)
        try:
            return [self.task.example(i) for i in candidate.demo_ids]
        except KeyError as e:
            raise CandidateRejected(str(e)) from None

    def retrievers_for(self) -> Retrievers:
        """The retrievers of candidates with per-input demonstrations. A renderer given none
        retrieves by words alone (``similarity: lexical``); a candidate that compares
        embeddings is then an error, raised when it first needs one."""
        if self.retrievers is None:

            def no_embedder(ref: str | None, pooling: str) -> Embedder:
                raise ConfigError(
                    "this candidate retrieves its demonstrations per input by comparing embeddings, but the renderer "
                    "has no embedder (PromptRenderer(..., retrievers=Retrievers(...)))"
                )

            self.retrievers = Retrievers(no_embedder)
        return self.retrievers

    def pool(self, candidate: PromptCandidate) -> list[Example]:
        """The examples a retrieving candidate draws its demonstrations from."""
        if candidate.retrieval is None:
            return []
        try:
            return [self.task.example(i) for i in candidate.retrieval.pool]
        except KeyError as e:
            raise CandidateRejected(f"retrieval pool: {e}") from None

    def _demo_text(self, candidate: PromptCandidate, demo: Example) -> str:
        answer = self.answer_words(candidate, demo)[max(demo.target_index, 0)]
        return demo_text(self._query(candidate, demo, demo.input), answer)

    # --- whole prompt -------------------------------------------------------------
    def user_text(self, candidate: PromptCandidate, example: Example, text: str) -> str:
        """Instruction, demonstrations and the query (everything the user turn says)."""
        instruction = self.instruction(candidate, example) if candidate.instruction.strip() else ""
        demos = [self._demo_text(candidate, d) for d in self.demos(candidate, example)]
        return join_prompt(instruction, demos, self._query(candidate, example, text), candidate.separator)

    def request(self, candidate: PromptCandidate, example: Example) -> ScoreRequest:
        """The scoring request of one example (generation: no continuations)."""
        words = () if self.task.generates else self.answer_words(candidate, example)
        body = self.user_text(candidate, example, SENTINEL)
        return split_request(example.id, body, example.input, words, self.chat_formatter)

    def requests(self, candidate: PromptCandidate, examples: Sequence[Example]) -> list[ScoreRequest]:
        return [self.request(candidate, ex) for ex in examples]

    def render_text(self, candidate: PromptCandidate, example_input: str = "{input}") -> str:
        """The prompt as plain text, with ``{input}`` left as a placeholder by default
        (demonstrations retrieved per input are shown as one placeholder line)."""
        dummy = Example(id="_", input=example_input, target="", target_index=0, options=(), row="")
        if candidate.retrieval is not None:
            for ex in self.pool(candidate):
                self.answer_words(candidate, ex)  # a verbalizer that cannot answer a demonstration fails here
            instruction = self.instruction(candidate, dummy) if candidate.instruction.strip() else ""
            line = retrieved_placeholder(candidate.retrieval.k, len(candidate.retrieval.pool))
            query = self._query(candidate, dummy, example_input)
            return join_prompt(instruction, [line], query, candidate.separator)
        return self.user_text(candidate, dummy, example_input)
