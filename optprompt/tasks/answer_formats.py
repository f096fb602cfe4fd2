"""The answers of a closed answer set as a serving stack constrains generation to them: a
JSON schema (vLLM's structured outputs ``json``, Ollama's ``format``, OpenAI-compatible
``response_format``) and a GBNF grammar (llama.cpp's ``--grammar-file``, vLLM's structured
outputs ``grammar``). One source for both the exported files (``answers.schema.json``,
``answers.gbnf``) and what optprompt sends a model server when it measures the winner
under guided decoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["answer_grammar", "answer_schema", "gbnf_literal", "label_list_grammar", "label_list_schema"]


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def answer_grammar(answers: Sequence[str], *, leading_space: bool = False) -> str:
    """A GBNF grammar whose language is exactly ``answers`` (optionally after one space,
    for completion prompts where the answer follows ``Answer:``)."""
    if not answers:
        raise ValueError("a grammar needs at least one answer")
    choices = " | ".join(gbnf_literal(a) for a in answers)
    lines = [f"root ::= {'space ' if leading_space else ''}answer", f"answer ::= {choices}"]
    if leading_space:
        lines.append('space ::= " "?')
    return "\n".join(lines) + "\n"


def answer_schema(answers: Sequence[str], *, title: str = "answer") -> dict[str, Any]:
    """A JSON schema (draft 2020-12) accepting exactly the strings ``answers``."""
    if not answers:
        raise ValueError("a schema needs at least one answer")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "string",
        "enum": list(answers),
    }


def label_list_grammar(labels: Sequence[str], *, separator: str = ", ", leading_space: bool = False) -> str:
    """A GBNF grammar of one or more of ``labels`` separated by ``separator`` (or ``none``),
    as a multi-label prompt answers (optionally after one space)."""
    if not labels:
        raise ValueError("a grammar needs at least one label")
    lines = [
        f"root ::= {'space ' if leading_space else ''}answer",
        f"answer ::= label ({gbnf_literal(separator)} label)* | {gbnf_literal('none')}",
        "label ::= " + " | ".join(gbnf_literal(lbl) for lbl in labels),
    ]
    if leading_space:
        lines.append('space ::= " "?')
    return "\n".join(lines) + "\n"


def label_list_schema(labels: Sequence[str], *, title: str = "labels") -> dict[str, Any]:
    """A JSON schema (draft 2020-12) accepting a list of ``labels`` (possibly empty), at most
    as many items as there are labels. It does not say ``uniqueItems``: vLLM's structured
    outputs refuse that keyword (checked on the real server); a repeated label is read once
    (:func:`~optprompt.tasks.types.parse_label_list`)."""
    if not labels:
        raise ValueError("a schema needs at least one label")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "array",
        "items": {"type": "string", "enum": list(labels)},
        "maxItems": len(labels),
    }
