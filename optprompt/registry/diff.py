"""Readable differences between two prompt cards."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any

from optprompt.kinds.prompt.card import PromptCard

__all__ = ["diff_cards"]

_PLAIN_FIELDS = (
    "instruction",
    "template",
    "separator",
    "chat",
    "task_type",
    "choice_format",
    "verbalizer",
    "study",
    "seed",
    "optprompt_version",
)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value and value.strip() == value and "\n" not in value:
        return value if " " not in value else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _calibration(card: PromptCard) -> str:
    cal = card.calibration or {}
    offsets = cal.get("offsets")
    shown = f" [{', '.join(f'{o:.4f}' for o in offsets)}]" if offsets else ""
    return f"{cal.get('method', 'none')}{shown}"


def _retrieval(card: PromptCard) -> str:
    """How a card retrieves demonstrations per input, in a few words ("-": it shows fixed ones)."""
    r = card.retrieval
    if not r:
        return "-"
    embedder = (r.get("embedder") or {}).get("ref")
    pool = len(r.get("pool") or [])
    vectors = (r.get("vectors") or {}).get("data", "")
    return (
        f"k={r.get('k')} mmr={r.get('mmr')} balance={_show(r.get('balance'))} order={r.get('order')} "
        f"pool={pool} similarity={r.get('similarity', 'embedding')} embedder={_show(embedder)} "
        f"vectors={hashlib.sha256(vectors.encode()).hexdigest()[:8]}"
    )


def _score(scores: dict[str, Any], split: str) -> tuple[float | None, str | None]:
    s = scores.get(split)
    return (s.get("value"), s.get("metric")) if isinstance(s, dict) else (None, None)


def _field_changes(a: PromptCard, b: PromptCard) -> list[str]:
    out = [
        f"{f}: {_show(getattr(a, f))} -> {_show(getattr(b, f))}"
        for f in _PLAIN_FIELDS
        if getattr(a, f) != getattr(b, f)
    ]
    if a.demos != b.demos:
        same_len = len(a.demos) == len(b.demos)
        out.append(f"demos: {len(a.demos)} -> {len(b.demos)}" + (" (content or order changed)" if same_len else ""))
    ra, rb = _retrieval(a), _retrieval(b)
    if ra != rb:
        out.append(f"demonstrations retrieved per input: {ra} -> {rb}")
    if _calibration(a) != _calibration(b):
        out.append(f"calibration: {_calibration(a)} -> {_calibration(b)}")
    for label, sa, sb in (
        ("scores", a.scores, b.scores),
        ("baseline_scores", a.baseline_scores, b.baseline_scores),
    ):
        for split in ("dev", "test"):
            (va, ma), (vb, mb) = _score(sa or {}, split), _score(sb or {}, split)
            if (va, ma) == (vb, mb):
                continue
            metric = ma if ma == mb else f"{_show(ma)} -> {_show(mb)}"
            delta = f" ({vb - va:+.4f})" if isinstance(va, int | float) and isinstance(vb, int | float) else ""
            out.append(f"{label}.{split} ({metric}): {_show(va)} -> {_show(vb)}{delta}")
    ma, mb, ta, tb = a.model or {}, b.model or {}, a.task or {}, b.task or {}
    for label, va, vb in (
        ("model.ref", ma.get("ref"), mb.get("ref")),
        ("model.fingerprint", ma.get("fingerprint"), mb.get("fingerprint")),
        ("data.task", ta.get("name"), tb.get("name")),
        ("data.fingerprint", ta.get("fingerprint"), tb.get("fingerprint")),
    ):
        if va != vb:
            out.append(f"{label}: {_show(va)} -> {_show(vb)}")
    return out


def diff_cards(a: PromptCard, b: PromptCard, *, a_label: str = "a", b_label: str = "b") -> str:
    """A unified diff of the rendered prompt text, then one line per other changed field.

    The prompt text is the card's ``prompt.txt`` (``card.template_text()``). Field lines
    read ``field: OLD -> NEW`` (verbalizer, calibration, demos, scores, model and data
    fingerprints...). Two identical cards give ``no differences``.
    """
    text = list(
        difflib.unified_diff(
            a.template_text().splitlines(),
            b.template_text().splitlines(),
            fromfile=f"{a_label}/prompt.txt",
            tofile=f"{b_label}/prompt.txt",
            lineterm="",
        )
    )
    fields = _field_changes(a, b)
    if not text and not fields:
        return f"no differences between {a_label} and {b_label}"
    lines = text or [f"prompt text: identical in {a_label} and {b_label}"]
    if fields:
        lines += ["", f"changed fields ({a_label} -> {b_label}):", *(f"  {f}" for f in fields)]
    return "\n".join(lines)
