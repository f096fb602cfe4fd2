"""Data loaders, registered through the ``register_task_loaders`` hook.

A loader turns a source (file path or hub name) into a list of plain row dicts. Local
JSONL/CSV/Parquet go through ``datasets``; BIG-bench ``task.json`` files are parsed here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optprompt.errors import DataError
from optprompt.plugins.hookspecs import hookimpl

__all__ = [
    "load_rows_jsonl",
    "load_rows_csv",
    "load_rows_parquet",
    "load_rows_bigbench",
    "load_rows_conll",
    "load_rows_hub",
]


def _via_datasets(builder: str, path: Path) -> list[dict[str, Any]]:
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as e:
        raise DataError(f"{path}: could not be read as {builder.upper()}: {e}") from None
    return [dict(r) for r in ds]


def load_rows_jsonl(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (one object per line)."""
    path = Path(source)
    # Name the offending line; datasets' own message does not.
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n}: not valid JSON: {e.msg}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path} line {n}: expected a JSON object, got {type(obj).__name__}")
    return _via_datasets("json", path)


def load_rows_csv(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header line."""
    return _via_datasets("csv", Path(source))


def load_rows_parquet(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a Parquet file."""
    return _via_datasets("parquet", Path(source))


def load_rows_bigbench(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a BIG-bench style ``task.json``.

    Each example becomes ``{"input", "label", "options"}``: with ``target_scores`` the
    options are its keys and the label the highest-scoring one; with ``target`` (a string
    or a list whose first item counts) the label is the target and there are no options.
    """
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise DataError(f"{path}: a BIG-bench task.json needs a list under 'examples'")
    rows = []
    for i, ex in enumerate(examples):
        where = f"{path} examples[{i}]"
        if not isinstance(ex, dict) or "input" not in ex:
            raise DataError(f"{where}: needs an 'input'")
        if "target_scores" in ex:
            scores = ex["target_scores"]
            if not isinstance(scores, dict) or len(scores) < 2:
                raise DataError(f"{where}: 'target_scores' must map at least two options to scores")
            best = max(scores, key=lambda k: scores[k])
            rows.append({"input": ex["input"], "label": best, "options": list(scores)})
        elif "target" in ex:
            target = ex["target"]
            if isinstance(target, list):
                if not target:
                    raise DataError(f"{where}: 'target' is an empty list")
                target = target[0]
            rows.append({"input": ex["input"], "label": target, "options": None})
        else:
            raise DataError(f"{where}: needs 'target_scores' or 'target'")
    return rows


def load_rows_conll(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CoNLL-style file: one token per line with its BIO tag in the last column,
    a blank line between sentences (``-DOCSTART-`` lines and ``#`` comments skipped).

    Each sentence becomes ``{"input": tokens joined by spaces, "label": [entity spans],
    "tokens": [...], "tags": [...]}`` (entity spans as ``{start, end, type, text}``), so an
    extraction task reads it with the default columns.

    Raises:
        DataError: a line with a single column, or a tag that is not BIO; the message
            names the file and line.
    """
    from optprompt.tasks.entities import bio_to_spans

    path = Path(source)
    rows: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    first = 0

    def flush() -> None:
        if tokens:
            text, spans = bio_to_spans(tokens, tags, where=f"{path} line {first}")
            rows.append(
                {"input": text, "label": [e.to_dict() for e in spans], "tokens": list(tokens), "tags": list(tags)}
            )
        tokens.clear()
        tags.clear()

    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                flush()
                continue
            if parts[0] == "-DOCSTART-" or line.startswith("#"):
                continue
            if len(parts) < 2:
                raise DataError(f"{path} line {n}: expected a token and its tag, got {line.strip()!r}")
            if not tokens:
                first = n
            tokens.append(parts[0])
            tags.append(parts[-1])
    flush()
    return rows


def load_rows_hub(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """All rows of every split of a ``datasets`` hub data set, with a ``__split__`` column."""
    import datasets

    datasets.disable_progress_bars()
    try:
        dsd = datasets.load_dataset(source, subset)
    except Exception as e:
        raise DataError(f"data {source!r} is not a local file and could not be loaded from the hub: {e}") from None
    rows = []
    for split_name, ds in dsd.items():
        rows.extend({**dict(r), "__split__": split_name} for r in ds)
    return rows


def _suffix_is(*suffixes: str):  # type: ignore[no-untyped-def]
    return lambda path: Path(path).suffix.lower() in suffixes


@hookimpl
def register_task_loaders(register):  # type: ignore[no-untyped-def]
    register(
        "jsonl",
        load_rows_jsonl,
        detect=_suffix_is(".jsonl", ".ndjson"),
        description="JSON lines file, through datasets",
    )
    register("csv", load_rows_csv, detect=_suffix_is(".csv"), description="CSV file, through datasets")
    register("parquet", load_rows_parquet, detect=_suffix_is(".parquet"), description="Parquet file, through datasets")
    register(
        "bigbench",
        load_rows_bigbench,
        detect=_suffix_is(".json"),
        description="BIG-bench style task.json (examples with target_scores or target)",
    )
    register(
        "conll",
        load_rows_conll,
        detect=_suffix_is(".conll", ".bio", ".iob", ".iob2"),
        description="CoNLL-style token/BIO-tag file (extraction tasks)",
    )
    register("hub", load_rows_hub, detect=None, description="datasets hub name (needs network)")
