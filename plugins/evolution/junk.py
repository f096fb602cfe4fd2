"""Cleaning a rewriter's output into an instruction, or rejecting it as junk.

Small rewriters return preambles ("Here is the new instruction:"), quotes, the operator
prompt echoed back, loops of one sentence, an ``{input}`` placeholder the template
already holds, a lost ``{labels}``, or an example from the data with its answer. Each
problem is either repaired (and named in ``repairs``) or the text is rejected (and
``rejected`` names the reason); nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from optprompt.prompts import fits_answers

__all__ = ["JunkFilter", "Verdict", "JUNK_REASONS", "REPAIRS", "normalize"]

# Reasons a rewrite is rejected, and repairs that make one usable (trial attribute values).
JUNK_REASONS = (
    "empty",
    "contradicts_answers",
    "garbled",
    "unchanged",
    "leaked_input",
    "leaked_answer",
    "runaway_length",
    "echoed_operator",
    "meta_reply",
)
REPAIRS = (
    "extracted",
    "stripped_preamble",
    "stripped_quotes",
    "removed_input_placeholder",
    "removed_stray_placeholder",
    "restored_labels_placeholder",
    "deduplicated",
    "truncated",
    "closed_sentence",
    "dropped_fragment",
)

_PLACEHOLDER = re.compile(r"\{[^{}\s]{1,40}\}")
_TAGGED = re.compile(r"<prompt>(.*?)(?:</prompt>|$)", re.S | re.I)
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly|of course)[,.!]?\s*)?"
    r"(?:(?:here(?:'s| is| are)|this is|below is)\b[^:\n]{0,60}:|"
    r"(?:new|final|improved|rewritten|revised|combined|better|the)?\s*(?:instruction|prompt)\s*(?:\d\s*)?:)\s*",
    re.I,
)
_ECHO = re.compile(r"^\s*(?:instruction\s*(?:\d|[ab])\b|best instruction)\s*:", re.I)  # operator prompt lines
# Talk about the rewriting task instead of an instruction ("I will rephrase it to:").
_META = re.compile(
    r"\bI (?:will|would|should|have|had|changed|can|could|am|think)\b|\bI'(?:m|ll|ve|d)\b|"
    r"\b(?:rephrase[ds]?|rephrasing|rewrite|rewritten|rewriting|original instruction|"
    r"new instruction|this instruction|the instruction|best instruction|"
    r"instructions? (?:\d|[ab])\b|combine them)\b",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9']+")
_SHINGLE = 6  # words: an instruction sharing this many consecutive words with an example leaks it


def _garbled(text: str) -> bool:
    """Broken bytes, control characters, or too few letters: not an instruction."""
    if "\ufffd" in text or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        return True
    plain = sum(ch.isalnum() or ch.isspace() or ch in ".,;:!?'\"()-{}" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    return plain < 0.9 * len(text) or letters < 0.6 * len(text.replace(" ", ""))


def normalize(text: str) -> str:
    """Lower-case words only: what two instructions are compared on."""
    return " ".join(_WORD.findall(text.lower()))


@dataclass
class Verdict:
    """The outcome of :meth:`JunkFilter.check`: ``text`` when usable, else ``rejected``."""

    text: str | None
    rejected: str | None = None
    repairs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.text is not None


class JunkFilter:
    """Detects, repairs or rejects junk rewrites.

    Args:
        examples: Inputs of the examples the instruction must not quote (train and dev).
        answer_words: The task's answer words (verbalizer); an instruction that pins one
            of them to one case ("the answer is positive") leaks an answer.
        max_chars: Longer texts are cut at a sentence end, or rejected when the first
            sentence is already too long.
        allowed_placeholders: Placeholders an instruction may hold (``{labels}``).
    """

    def __init__(
        self,
        examples: Iterable[str],
        answer_words: Sequence[str],
        *,
        max_chars: int = 400,
        allowed_placeholders: Sequence[str] = ("{labels}",),
    ) -> None:
        self.max_chars = max_chars
        self.allowed = tuple(allowed_placeholders)
        self.answer_words = tuple(dict.fromkeys(w.strip().lower() for w in answer_words if w.strip()))
        self._shingles: set[tuple[str, ...]] = set()
        self._short: set[str] = set()
        for text in examples:
            words = normalize(text).split()
            if len(words) >= _SHINGLE:
                self._shingles.update(tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1))
            elif len(words) >= 3:  # short inputs leak only when quoted whole
                self._short.add(" ".join(words))
        words = "|".join(re.escape(w) for w in self.answer_words)
        self._pinned = (
            re.compile(
                rf"\b(?:is|was|are|were)\s+(?:\w+\s+){{0,2}}[\"']?(?:{words})\b|(?:=|:)\s*[\"']?(?:{words})\b"
                rf"|^\W*(?:{words})\W*$",
                re.I,
            )
            if words
            else None
        )

    # --- the pipeline ---------------------------------------------------------------
    def check(self, raw: str, parents: Sequence[str] = ()) -> Verdict:
        """Clean ``raw`` (a rewriter's reply) into an instruction, or reject it.

        ``parents`` are the instructions it was made from: a copy of one is rejected as
        ``unchanged``; a ``{labels}`` placeholder that every parent has is restored.
        """
        repairs: list[str] = []
        if sum(bool(_ECHO.match(line)) for line in (raw or "").splitlines()) >= 2:
            return Verdict(None, "echoed_operator", repairs)
        text = self._extract(raw or "", repairs)
        text = self._strip_placeholders(text, repairs)
        text = self._dedupe_sentences(text, repairs)
        if normalize(text) in self.answer_words:  # the reply is just an answer word
            return Verdict(None, "leaked_answer", repairs)
        if len(_WORD.findall(text.lower())) < 2:
            return Verdict(None, "empty", repairs)
        if _garbled(text):
            return Verdict(None, "garbled", repairs)
        leak = self.leak(text)
        if leak:
            return Verdict(None, leak, repairs)
        if _META.search(text):
            return Verdict(None, "meta_reply", repairs)
        if not fits_answers(text, self.answer_words):  # "answer with one word" for phrase answers
            return Verdict(None, "contradicts_answers", repairs)
        if len(text) > self.max_chars:
            cut = self._truncate(text)
            if cut is None:
                return Verdict(None, "runaway_length", repairs)
            text = cut
            repairs.append("truncated")
        text = self._close(text, repairs)
        text = self._restore_labels(text, parents, repairs)
        if normalize(text) in {normalize(p) for p in parents}:
            return Verdict(None, "unchanged", repairs)
        return Verdict(text, None, repairs)

    def leak(self, text: str) -> str | None:
        """``leaked_input`` / ``leaked_answer``: ``text`` quotes an example, or pins an answer."""
        words = normalize(text).split()
        norm = " ".join(words)
        quoted = any(tuple(words[i : i + _SHINGLE]) in self._shingles for i in range(len(words) - _SHINGLE + 1))
        quoted = quoted or any(s in norm for s in self._short)
        if quoted:
            return (
                "leaked_answer"
                if any(re.search(rf"\b{re.escape(w)}\b", norm) for w in self.answer_words)
                else "leaked_input"
            )
        if self._pinned is not None and self._pinned.search(text):
            # "Answer with positive or negative" names every answer; "it is positive" pins one.
            named = [w for w in self.answer_words if re.search(rf"\b{re.escape(w)}\b", norm)]
            if len(named) < min(2, len(self.answer_words)):
                return "leaked_answer"
        return None

    # --- steps ----------------------------------------------------------------------
    @staticmethod
    def _extract(raw: str, repairs: list[str]) -> str:
        text = raw.replace("\r\n", "\n").strip()
        m = _TAGGED.search(text)
        if m and m.group(1).strip():
            text = m.group(1).strip()
            repairs.append("extracted")
        text = text.replace("**", "").replace("__", "")
        # The first non-empty paragraph after a preamble line is the answer.
        stripped = _PREAMBLE.sub("", text, count=1).strip()
        if stripped != text:
            repairs.append("stripped_preamble")
            text = stripped
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        if paragraphs:
            text = paragraphs[0]
        lines = [ln.strip().lstrip("-*• ").strip() for ln in text.splitlines() if ln.strip()]
        text = " ".join(lines)
        text = text.strip()
        pairs = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`"}
        while len(text) > 2 and text[0] in pairs and text.endswith(pairs[text[0]]):
            text = text[1:-1].strip()
            if "stripped_quotes" not in repairs:
                repairs.append("stripped_quotes")
        return text

    def _strip_placeholders(self, text: str, repairs: list[str]) -> str:
        def repl(m: re.Match[str]) -> str:
            token = m.group(0)
            if token in self.allowed:
                return token
            repairs.append("removed_input_placeholder" if token == "{input}" else "removed_stray_placeholder")
            return ""

        out = _PLACEHOLDER.sub(repl, text)
        out = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", out)).strip()
        out = re.sub(r"[:\-]\s*$", ".", out) if out != text else out
        return out

    @staticmethod
    def _dedupe_sentences(text: str, repairs: list[str]) -> str:
        sentences = [s for s in _SENTENCE.split(text) if s.strip()]
        seen: set[str] = set()
        kept = []
        for s in sentences:
            key = normalize(s)
            if key and key in seen:
                continue
            seen.add(key)
            kept.append(s)
        if len(kept) < len(sentences):
            repairs.append("deduplicated")
            return " ".join(kept)
        return text

    def _restore_labels(self, text: str, parents: Sequence[str], repairs: list[str]) -> str:
        if not parents or "{labels}" in text or not all("{labels}" in p for p in parents):
            return text
        norm = normalize(text)
        if self.answer_words and all(re.search(rf"\b{re.escape(w)}\b", norm) for w in self.answer_words):
            return text  # names every answer word itself
        repairs.append("restored_labels_placeholder")
        text = text.rstrip()
        stop = "" if text.endswith((".", "!", "?")) else "."
        return f"{text}{stop} Answer with one of: {{labels}}."

    @staticmethod
    def _close(text: str, repairs: list[str]) -> str:
        """A reply cut off mid-sentence (the token limit) loses the fragment, or is closed."""
        if text[-1] in ".!?":
            return text
        sentences = _SENTENCE.split(text)
        if len(sentences) > 1:
            repairs.append("dropped_fragment")
            return " ".join(sentences[:-1])
        repairs.append("closed_sentence")
        return text.rstrip(":;,- ") + "."

    def _truncate(self, text: str) -> str | None:
        out = ""
        for s in _SENTENCE.split(text):
            if len(out) + len(s) + 1 > self.max_chars:
                break
            out = f"{out} {s}".strip()
        return out or None
