"""What a serving stack takes, written beside each exported prompt card.

- ``serving.json``: the prompt as chat ``messages`` (exactly the user turn the study
  scored, when it scored through the chat template) or as a completion ``prompt``, with
  ``{input}`` where the input goes; the same prompt with the demonstrations as
  user/assistant turns (``messages_with_turns``: not what was scored); the closed answer
  set and greedy decoding settings.
- ``answers.schema.json``: the answer set as a JSON schema ``enum`` (vLLM's
  ``guided_json``, Ollama's ``format``, OpenAI-compatible ``response_format``);
- ``answers.gbnf``: the answer set as a GBNF grammar (llama.cpp's ``--grammar-file`` and
  server ``grammar``, vLLM's ``guided_grammar``).

The schema and grammar are written when the answers are a closed set known at export time
(classification: the answer words; multi-label: a list of labels from the label set, an
array of ``enum`` values in the schema, labels separated by ", " in the grammar).
Multiple-choice answers depend on each request's options: :func:`answer_schema` and
:func:`answer_grammar` build them per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json, atomic_write_text
from optprompt.tasks.answer_formats import (
    answer_grammar,
    answer_schema,
    gbnf_literal,
    label_list_grammar,
    label_list_schema,
)

if TYPE_CHECKING:
    from optprompt.kinds.prompt.card import PromptCard

__all__ = [
    "GRAMMAR_FILE",
    "SCHEMA_FILE",
    "SERVING_FILE",
    "answer_grammar",
    "answer_schema",
    "label_list_grammar",
    "label_list_schema",
    "gbnf_literal",
    "serving_spec",
    "write_serving_files",
    "write_serving_files_under",
]

SERVING_FILE = "serving.json"
SCHEMA_FILE = "answers.schema.json"
GRAMMAR_FILE = "answers.gbnf"
SERVING_FORMAT = 1


def _turns(card: PromptCard) -> list[dict[str, str]]:
    """The prompt with its demonstrations as user/assistant turns (the instruction as the
    system turn): the chat form many serving setups prefer. Not what the study scored."""
    from optprompt.prompts.render import fill_query

    messages = [{"role": "system", "content": card.instruction}] if card.instruction.strip() else []
    if card.retrieval is None:
        for d in card.demos:
            query = fill_query(card.template, d["input"], d.get("options"), card.choice_format)
            messages.append({"role": "user", "content": query})
            messages.append({"role": "assistant", "content": str(d["answer"])})
    messages.append({"role": "user", "content": fill_query(card.template, "{input}", None, card.choice_format)})
    return messages


def _label_list(card: PromptCard) -> list[str]:
    """The label set a multi-label card's answers list from; [] for other task types."""
    if not card.resolve_task_type().answers_label_lists:
        return []
    return [str(lbl) for lbl in ((card.task or {}).get("labels") or [])]


def serving_spec(card: PromptCard) -> dict[str, Any]:
    """What ``serving.json`` holds for ``card``."""
    labels = _label_list(card)
    # a closed set: classification's answer words, multi-label's labels; else per request
    answers = labels or list(card.answers(None))
    prompt = card.template_text()
    spec: dict[str, Any] = {
        "format_version": SERVING_FORMAT,
        "input_placeholder": "{input}",
        "chat": card.chat,
        "messages": [{"role": "user", "content": prompt}] if card.chat else None,
        "prompt": None if card.chat else prompt,
        "messages_with_turns": _turns(card),
        "answers": ({w: w for w in labels} if labels else {w: card.answers(None)[w] for w in answers}) or None,
        "answer_form": "label list" if labels else "one answer",
        "json_schema": SCHEMA_FILE if answers else None,
        "grammar": GRAMMAR_FILE if answers else None,
        "decoding": {"temperature": 0.0, "stop": ["\n"]},
        "notes": [
            "`messages` (chat) or `prompt` (completion) is exactly what the study scored; replace {input} "
            "with the text. `messages_with_turns` shows the demonstrations as turns: not what was scored.",
            "The study ranked the answers by calibrated log-likelihood; a serving stack generates. Constrain "
            "generation to the answer set (answers.gbnf / answers.schema.json) and decode greedily; "
            "`optprompt evaluate --constrained` measures how accurate that is.",
        ],
    }
    if labels:
        spec["notes"].append(
            "Multi-label: the answer lists labels separated by ', ' (answers.gbnf), or is a JSON array of them "
            "(answers.schema.json); optprompt.tasks.parse_label_list reads either back."
        )
    if card.retrieval is not None:
        spec["notes"].append(
            "This prompt retrieves its demonstrations per input; the placeholder line stands for them. "
            "Use optprompt.load(...).prompt(text) to build each prompt."
        )
    if not answers:
        spec["notes"].append(
            "The answers depend on each request (multiple-choice options) or are free text: build the schema "
            "or grammar per request with optprompt.export.serving.answer_schema / answer_grammar."
        )
    return spec


def write_serving_files(card: PromptCard, directory: str | Path) -> list[Path]:
    """Write ``serving.json`` (and, for a closed answer set, the schema and grammar) into
    ``directory``; return the files written."""
    directory = Path(directory)
    spec = serving_spec(card)
    written = [atomic_write_json(directory / SERVING_FILE, spec)]
    labels = _label_list(card)
    if labels:
        written.append(atomic_write_json(directory / SCHEMA_FILE, label_list_schema(labels)))
        written.append(
            atomic_write_text(directory / GRAMMAR_FILE, label_list_grammar(labels, leading_space=not card.chat))
        )
    elif spec["answers"]:
        words = list(spec["answers"])
        written.append(atomic_write_json(directory / SCHEMA_FILE, answer_schema(words)))
        written.append(atomic_write_text(directory / GRAMMAR_FILE, answer_grammar(words, leading_space=not card.chat)))
    return written


def write_serving_files_under(directory: str | Path) -> list[Path]:
    """Serving files beside every prompt card in an export ``directory`` (the card of a
    prompt or an adapter; each member card of an ensemble)."""
    from optprompt.kinds.prompt.card import CARD_FILE, load_card

    directory = Path(directory)
    cards = [directory / CARD_FILE] if (directory / CARD_FILE).is_file() else sorted(directory.glob(f"*/{CARD_FILE}"))
    written: list[Path] = []
    for path in cards:
        written.extend(write_serving_files(load_card(path), path.parent))
    return written
