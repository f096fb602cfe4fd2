"""Count the kinds of errors in an extraction study's test predictions.

    python benchmarks/extraction_errors.py runs/slots-demo [--role best] [--show 20]

Each predicted entity is matched to the gold entities of its sentence: ``exact`` (span
and type), ``type`` (the same span, another type), ``shorter`` / ``longer`` / ``shifted``
(a span overlapping a gold one of the same type but not the same: words left out, extra
words, both), ``boundary+type`` (overlapping, another type), ``not in input`` (text the
parser could not find in the input: a miscopied name), ``spurious`` (overlapping nothing).
Gold entities no prediction overlaps are ``missed``; outputs nothing could be read from
are format failures. Then, per gold type: how many of its entities were found exactly,
found with another type (and which), found with other boundaries, or missed.

``--reparse FORMAT --data FILE`` reads each answer (``output``) again with the current
parser (types as written in the data) before counting, and prints the entity F1 as
recorded and as re-read: a change to parsing measured on the very outputs of a run.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def classify(gold: list[dict], pred: list[dict] | None) -> tuple[Counter, list[tuple[str, dict]]]:
    """Error counts of one sentence and the labelled predictions."""
    counts: Counter = Counter()
    labelled: list[tuple[str, dict]] = []
    if pred is None:
        counts["format failure"] += 1
        counts["missed"] += len(gold)
        return counts, labelled
    for p in pred:
        if p["start"] < 0:
            kind = "not in input"
        else:
            same = [g for g in gold if (g["start"], g["end"]) == (p["start"], p["end"])]
            over = [g for g in gold if _overlap(g, p)]
            if same:
                kind = "exact" if any(g["type"] == p["type"] for g in same) else "type"
            elif over:
                g = over[0]
                if g["type"] != p["type"]:
                    kind = "boundary+type"
                elif g["start"] <= p["start"] and p["end"] <= g["end"]:
                    kind = "shorter"
                elif p["start"] <= g["start"] and g["end"] <= p["end"]:
                    kind = "longer"
                else:
                    kind = "shifted"
            else:
                kind = "spurious"
        counts[kind] += 1
        labelled.append((kind, p))
    placed = [p for p in pred if p["start"] >= 0]
    counts["missed"] += sum(1 for g in gold if not any(_overlap(g, p) for p in placed))
    return counts, labelled


def by_gold_type(gold: list[dict], pred: list[dict] | None) -> list[tuple[str, str]]:
    """(gold type, outcome) per gold entity: ``exact``, ``as TYPE`` (the same span typed
    otherwise), ``boundary`` (overlapped by a prediction of other bounds) or ``missed``."""
    placed = [p for p in pred or [] if p["start"] >= 0]
    out = []
    for g in gold:
        same = [p for p in placed if (p["start"], p["end"]) == (g["start"], g["end"])]
        if any(p["type"] == g["type"] for p in same):
            outcome = "exact"
        elif same:
            outcome = f"as {same[0]['type']}"
        elif any(_overlap(g, p) for p in placed):
            outcome = "boundary"
        else:
            outcome = "missed"
        out.append((g["type"], outcome))
    return out


def micro_f1(rows: list[dict]) -> float:
    gold = {(r["id"], g["start"], g["end"], g["type"]) for r in rows for g in r["gold"]}
    # a name not in the input (start -1) is a false positive too
    pred = {(r["id"], p["start"], p["end"], p["type"], p["text"] if p["start"] < 0 else "") for r in rows
            for p in r["pred"] or []}  # fmt: skip
    tp = len(gold & {p[:4] for p in pred if p[1] >= 0})
    return 2 * tp / (len(gold) + len(pred)) if gold or pred else 1.0


def reparse(rows: list[dict], data: Path, fmt: str) -> list[dict]:
    """``rows`` with ``pred`` read again from ``output`` by the current parser."""
    from optprompt.prompts.entity_formats import parse_entities

    texts = {}
    types: set[str] = set()
    for line in data.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts[row["id"]] = row["text"]
        types |= {e["type"] for e in row["entities"]}
    out = []
    for r in rows:
        found = parse_entities(r.get("output") or "", texts[r["id"]], fmt, {t: t for t in types})
        out.append({**r, "pred": None if found is None else [e.to_dict() for e in found]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--role", default="best")
    ap.add_argument("--show", type=int, default=15, help="print this many non-exact predictions")
    ap.add_argument("--reparse", metavar="FORMAT", help="read the outputs again in this format")
    ap.add_argument("--data", type=Path, help="the study's data file (with --reparse)")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in (args.run / "predictions.jsonl").read_text().splitlines() if line]
    rows = [r for r in rows if r["role"] == args.role]
    if args.reparse:
        before = micro_f1(rows)
        rows = reparse(rows, args.data, args.reparse)
        print(f"entity F1 as recorded {before:.3f}, re-read by the current parser {micro_f1(rows):.3f}")
    total: Counter = Counter()
    shown = 0
    for r in rows:
        counts, labelled = classify(r["gold"], r["pred"])
        total += counts
        for kind, p in labelled:
            if kind != "exact" and shown < args.show:
                gold = "; ".join(f"{g['text']} ({g['type']})" for g in r["gold"])
                print(f"{kind:14} pred {p['text']!r} ({p['type']})  gold: {gold}")
                shown += 1
        if counts["missed"] and shown < args.show:
            print(f"{'missed':14} output {r.get('output')!r}  gold: {[g['text'] for g in r['gold']]}")
            shown += 1
    n_gold = sum(len(r["gold"]) for r in rows)
    n_pred = sum(v for k, v in total.items() if k not in ("missed", "format failure"))
    print(f"\n{len(rows)} sentences, {n_gold} gold entities, {n_pred} predicted")
    for kind, n in total.most_common():
        print(f"  {kind:15} {n}")
    per_type: dict[str, Counter] = {}
    for r in rows:
        for gtype, outcome in by_gold_type(r["gold"], r["pred"]):
            per_type.setdefault(gtype, Counter())[outcome] += 1
    print("\nby gold type:")
    for gtype, outcomes in sorted(per_type.items()):
        parts = ", ".join(f"{k} {n}" for k, n in outcomes.most_common())
        print(f"  {gtype:10} {sum(outcomes.values()):3}: {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
