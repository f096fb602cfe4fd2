"""How many gold names keep their input tokens in the answer an adapter is trained on.

    python benchmarks/copy_tokens.py studies/data/slots.jsonl [--model DIR] [--formats spans inline lines]

A model copies a name most easily when the answer repeats the very tokens the input has.
With a byte-level BPE (SmolLM2, GPT-2, Llama 3) a word's token carries its leading space:
" running" in the input, but "running" after a tag (``<SONG>running``) or at the start of a
line (``spans``: every name after the first), so the answer spells the first word with
another token than the input. This counts, per output format, the gold names whose input
tokens (with the space before them) occur in the serialised answer (after the space the
training target starts with).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def count(rows: list[dict], tokenizer, fmt: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(names, names whose input tokens occur in the answer) over ``rows``."""
    from optprompt.prompts.entity_formats import serialize_entities
    from optprompt.tasks.entities import Entity

    names = kept = 0
    for r in rows:
        text = r["text"]
        ents = [Entity(e["start"], e["end"], e["type"], text[e["start"] : e["end"]]) for e in r["entities"]]
        answer = tokenizer(" " + serialize_entities(text, ents, fmt, {}), add_special_tokens=False)["input_ids"]
        for e in ents:
            space = (
                " " if e.start == 0 or text[e.start - 1] == " " else ""
            )  # the template puts a space before the input
            names += 1
            kept += _contains(answer, tokenizer(space + e.text, add_special_tokens=False)["input_ids"])
    return names, kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a JSONL file with text and character-span entities")
    ap.add_argument("--model", default=str(Path.home() / ".cache/optprompt/models/smollm2-135m-instruct"))
    ap.add_argument("--formats", nargs="+", default=["lines", "spans", "inline"])
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    for fmt in args.formats:
        names, kept = count(rows, tokenizer, fmt)
        print(f"{fmt:7} {kept} of {names} names keep their input tokens in the answer ({kept / names:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
