"""Turn a :class:`TaskSpec` into a validated, split :class:`Task`."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from optprompt.config.spec import TaskSpec
from optprompt.errors import ConfigError, DataError
from optprompt.plugins.manager import Plugins
from optprompt.tasks.entities import entities_from_value
from optprompt.tasks.task import DEFAULT_INSTRUCTIONS, DEFAULT_METRICS, DEFAULT_TEMPLATES, Example, Task

__all__ = ["build_task", "resolve_data_path"]

_FILE_SUFFIXES = {".jsonl", ".ndjson", ".csv", ".parquet", ".json"}
_SPLITS = ("train", "dev", "test")


def resolve_data_path(data: str, base_dir: str | None) -> Path | None:
    """Find a local data file: next to the study file first, then in the current directory.

    Returns None when ``data`` does not look like a file and exists nowhere (a hub name).

    Raises:
        DataError: ``data`` looks like a file (known suffix or a path separator) but is
            found in neither place; both places tried are named.
    """
    candidates = []
    p = Path(data).expanduser()
    if p.is_absolute():
        candidates.append(p)
    else:
        if base_dir:
            candidates.append(Path(base_dir) / p)
        candidates.append(Path.cwd() / p)
    for c in candidates:
        if c.is_file():
            return c
    if p.suffix.lower() in _FILE_SUFFIXES or os.sep in data or data.startswith("."):
        tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
        raise DataError(f"data file not found: {data!r} (tried {tried})")
    return None


def _pick_loader(path: Path | None, spec: TaskSpec, plugins: Plugins, data: str):  # type: ignore[no-untyped-def]
    if spec.format:
        return plugins.task_loaders.get(spec.format)
    if path is None:
        return plugins.task_loaders.get("hub")
    for entry in plugins.task_loaders:
        detect = entry.extra.get("detect")
        if detect is not None and detect(path):
            return entry
    known = ", ".join(plugins.task_loaders.names())
    raise DataError(f"{data}: no loader recognises this file type; set task.format to one of: {known}")


def _load_source(data: str, spec: TaskSpec, plugins: Plugins, base_dir: str | None) -> tuple[list[dict[str, Any]], str]:
    path = resolve_data_path(data, base_dir)
    loader = _pick_loader(path, spec, plugins, data)
    rows = loader.obj(str(path) if path else data, spec.subset)
    if not rows:
        raise DataError(f"{path or data}: the data set has no rows")
    return rows, str(path) if path else data


def _as_text(value: Any, *, where: str, column: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: column {column!r} is empty")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _check_columns(rows: list[dict[str, Any]], spec: TaskSpec, source: str) -> None:
    columns = list(rows[0].keys())
    needed = {"task.input": spec.input, "task.label": spec.label}
    if spec.type == "multiple_choice" and spec.options:
        needed["task.options"] = spec.options
    if spec.id:
        needed["task.id"] = spec.id
    for key, col in needed.items():
        if col not in rows[0]:
            hint = ""
            if key == "task.label" and "options" in columns and spec.type != "multiple_choice":
                hint = " (rows have options: set task.type: multiple_choice and task.options: options)"
            raise DataError(
                f"{source}: column {col!r} (from {key}) is not in the data; columns are: "
                f"{', '.join(map(str, columns))}{hint}"
            )


def _make_examples(
    rows: list[dict[str, Any]], spec: TaskSpec, source: str, tag: str
) -> list[tuple[Example, str | None]]:
    """Examples with their raw label; the label index is filled in by build_task."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source} row {i + 1}"
        text = _as_text(row.get(spec.input), where=where, column=spec.input)
        label = row.get(spec.label)
        ex_id = _as_text(row.get(spec.id), where=where, column=spec.id) if spec.id else f"{tag}{i + 1}"
        if spec.type == "extraction":
            entities = entities_from_value(label, text, where=f"{where} column {spec.label!r}")
            gold = "\n".join(f"{e.type}: {e.text}" for e in entities) or "none"
            ex = Example(id=ex_id, input=text, target=gold, target_index=-1, row=where, entities=entities)
            out.append((ex, row.get("__split__")))
            continue
        if spec.type == "generation" and isinstance(label, (list, tuple)) and label:
            label = label[0]  # several references: the first is the one scored
        label = _as_text(label, where=where, column=spec.label)
        options: tuple[str, ...] = ()
        target = label
        target_index = -1
        if spec.type == "multiple_choice":
            raw = row.get(spec.options or "")
            if not isinstance(raw, (list, tuple)) or len(raw) < 2:
                raise DataError(f"{where}: column {spec.options!r} must hold a list of at least two options")
            options = tuple(_as_text(o, where=where, column=spec.options or "") for o in raw)
            if label in options:
                target_index = options.index(label)
            elif label.lstrip("-").isdigit() and 0 <= int(label) < len(options):
                target_index = int(label)
            else:
                raise DataError(
                    f"{where}: label {label!r} is neither one of the options {list(options)} nor an index into them"
                )
            target = options[target_index]
        out.append(
            (
                Example(id=ex_id, input=text, target=target, target_index=target_index, options=options, row=where),
                row.get("__split__"),
            )
        )
    return out


def _stratified_split(
    examples: list[Example], fractions: dict[str, float], seed: int, by_label: bool
) -> dict[str, list[Example]]:
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[ex.target if by_label else ""].append(ex)
    out: dict[str, list[Example]] = {s: [] for s in _SPLITS}
    for key in sorted(groups):
        items = groups[key][:]
        rng.shuffle(items)
        n = len(items)
        n_test = round(n * fractions["test"])
        n_dev = round(n * fractions["dev"])
        out["test"].extend(items[:n_test])
        out["dev"].extend(items[n_test : n_test + n_dev])
        out["train"].extend(items[n_test + n_dev :])
    for s in _SPLITS:  # interleave labels rather than keep them grouped
        rng.shuffle(out[s])
    return out


def _fingerprint(splits: dict[str, list[Example]]) -> str:
    h = hashlib.sha256()
    for s in _SPLITS:
        for ex in splits[s]:
            h.update(json.dumps([s, ex.id, ex.input, ex.target, ex.options]).encode())
            if ex.entities:
                h.update(json.dumps([e.key for e in ex.entities]).encode())
    return h.hexdigest()[:16]


def build_task(
    spec: TaskSpec,
    *,
    plugins: Plugins,
    seed: int = 0,
    base_dir: str | None = None,
    name: str = "task",
    required: tuple[str, ...] = ("dev", "test"),
) -> Task:
    """Load, validate and split the data a :class:`TaskSpec` describes.

    ``required`` names the splits that must not be empty (``optprompt evaluate`` gives
    only a test split: ``data={"test": FILE}``, ``required=("test",)``).

    Raises:
        DataError: missing file or column, empty values, labels the verbalizer lacks,
            an empty dev or test split... each message names the file, row or key.
    """
    if isinstance(spec.data, dict):
        unknown = set(spec.data) - set(_SPLITS)
        if unknown or any(s not in spec.data for s in required):
            raise ConfigError(
                "task.data: a mapping of given splits needs keys dev and test (train optional), "
                f"got {sorted(spec.data)}"
            )
        splits: dict[str, list[Example]] = {}
        sources = []
        for s in _SPLITS:
            if s not in spec.data:
                splits[s] = []
                continue
            rows, source = _load_source(spec.data[s], spec, plugins, base_dir)
            _check_columns(rows, spec, source)
            splits[s] = [ex for ex, _ in _make_examples(rows, spec, source, f"{s}:row")]
            sources.append(source)
        source_desc = ", ".join(sources)
    else:
        rows, source_desc = _load_source(spec.data, spec, plugins, base_dir)
        _check_columns(rows, spec, source_desc)
        pairs = _make_examples(rows, spec, source_desc, "row")
        if spec.max_examples is not None and len(pairs) > spec.max_examples:
            pairs = random.Random(seed).sample(pairs, spec.max_examples)
        given = {hub_split for _, hub_split in pairs}
        if given >= {"dev", "test"} or given >= {"validation", "test"}:
            rename = {"validation": "dev"}
            splits = {s: [] for s in _SPLITS}
            for ex, hub_split in pairs:
                s = rename.get(hub_split or "", hub_split)
                if s in splits:
                    splits[s].append(ex)
        else:
            splits = _stratified_split(
                [ex for ex, _ in pairs],
                {"train": spec.split.train, "dev": spec.split.dev, "test": spec.split.test},
                seed,
                by_label=spec.type == "classification",
            )

    all_examples = [ex for s in _SPLITS for ex in splits[s]]
    seen: dict[str, str] = {}
    for ex in all_examples:
        if ex.id in seen:
            raise DataError(f"{ex.row}: example id {ex.id!r} is not unique (also {seen[ex.id]})")
        seen[ex.id] = ex.row
    for s in required:
        if not splits[s]:
            raise DataError(
                f"{source_desc}: the {s} split is empty ({len(all_examples)} examples in all); "
                f"give it a larger fraction (task.split.{s}) or more data"
            )

    labels: tuple[str, ...] = ()
    verbalizer: dict[str, str] = {}
    if spec.type == "classification":
        data_labels = list(dict.fromkeys(sorted(ex.target for ex in all_examples)))
        if spec.labels is not None:
            labels = tuple(str(lbl) for lbl in spec.labels)
            for ex in all_examples:
                if ex.target not in labels:
                    raise DataError(f"{ex.row}: label {ex.target!r} is not in task.labels {list(labels)}")
        else:
            labels = tuple(data_labels)
        if len(labels) < 2:
            raise DataError(f"{source_desc}: classification needs at least two labels, found {list(labels)}")
        if spec.verbalizer is not None:
            verbalizer = {str(k): v for k, v in spec.verbalizer.items()}
            for k in verbalizer:
                if k not in labels:
                    raise ConfigError(
                        f"task.verbalizer.{k}: {k!r} is not a label of the data; labels are {list(labels)}"
                    )
            for ex in all_examples:
                if ex.target not in verbalizer:
                    raise DataError(
                        f"{ex.row}: label {ex.target!r} has no word in task.verbalizer (it maps {sorted(verbalizer)})"
                    )
        else:
            if all(lbl.lstrip("-").isdigit() for lbl in labels):
                raise ConfigError(
                    f"task.verbalizer: the labels are numbers ({', '.join(labels)}); map each to the word "
                    "the model should answer with, e.g. verbalizer: {0: negative, 1: positive}"
                )
            verbalizer = {lbl: lbl for lbl in labels}
        words = list(verbalizer.values())
        if len(set(words)) != len(words):
            raise ConfigError(f"task.verbalizer: two labels share a word: {verbalizer}")
        index = {lbl: i for i, lbl in enumerate(labels)}
        for s in _SPLITS:
            splits[s] = [
                Example(
                    id=e.id, input=e.input, target=e.target, target_index=index[e.target], options=e.options, row=e.row
                )
                for e in splits[s]
            ]

    descriptions: dict[str, str] = {}
    if spec.type == "extraction":
        labels, verbalizer, descriptions = _entity_types(spec, all_examples, source_desc)

    unlabeled = _unlabeled(spec, plugins, base_dir, seen) if spec.unlabeled else []

    instruction = spec.prompt if spec.prompt is not None else DEFAULT_INSTRUCTIONS[spec.type]
    template = spec.template if spec.template is not None else DEFAULT_TEMPLATES[spec.type]
    return Task(
        name=name,
        type=spec.type,
        train=splits["train"],
        dev=splits["dev"],
        test=splits["test"],
        labels=labels,
        verbalizer=verbalizer,
        instruction=instruction,
        template=template,
        metric=spec.metric or DEFAULT_METRICS[spec.type],
        source=source_desc,
        fingerprint=_fingerprint(splits),
        descriptions=descriptions,
        output_format=spec.output_format if spec.type == "extraction" else "",
        unlabeled=unlabeled,
    )


def _unlabeled(spec: TaskSpec, plugins: Plugins, base_dir: str | None, seen: dict[str, str]) -> list[Example]:
    """The inputs of ``task.unlabeled`` (ids from the id column, else ``unlabeled:rowN``)."""
    rows, source = _load_source(spec.unlabeled or "", spec, plugins, base_dir)
    if spec.input not in rows[0]:
        raise DataError(
            f"{source}: column {spec.input!r} (from task.input) is not in the unlabelled data; columns are: "
            f"{', '.join(map(str, rows[0]))}"
        )
    out = []
    for i, row in enumerate(rows):
        where = f"{source} row {i + 1}"
        text = _as_text(row.get(spec.input), where=where, column=spec.input)
        ex_id = (
            _as_text(row.get(spec.id), where=where, column=spec.id)
            if spec.id and spec.id in row
            else f"unlabeled:row{i + 1}"
        )
        if ex_id in seen:
            raise DataError(f"{where}: example id {ex_id!r} is not unique (also {seen[ex_id]})")
        seen[ex_id] = where
        options: tuple[str, ...] = ()
        if spec.type == "multiple_choice":
            raw = row.get(spec.options or "")
            if not isinstance(raw, (list, tuple)) or len(raw) < 2:
                raise DataError(f"{where}: column {spec.options!r} must hold a list of at least two options")
            options = tuple(_as_text(o, where=where, column=spec.options or "") for o in raw)
        out.append(Example(id=ex_id, input=text, target="", target_index=-1, options=options, row=where))
    return out


def _entity_types(
    spec: TaskSpec, examples: list[Example], source: str
) -> tuple[tuple[str, ...], dict[str, str], dict[str, str]]:
    """Entity types (task.labels, else those in the data), their words and descriptions."""
    in_data = sorted({e.type for ex in examples for e in ex.entities})
    if spec.labels is not None:
        labels = tuple(str(lbl) for lbl in spec.labels)
        for ex in examples:
            for e in ex.entities:
                if e.type not in labels:
                    raise DataError(
                        f"{ex.row}: entity {e.text!r} has type {e.type!r}, not in task.labels {list(labels)}"
                    )
    elif spec.descriptions:
        labels = tuple(dict.fromkeys([*spec.descriptions, *in_data]))
    else:
        labels = tuple(in_data)
    if not labels:
        raise DataError(f"{source}: no entity types: the data has no entities and task.labels is not set")
    for key, table in (("task.descriptions", spec.descriptions or {}), ("task.verbalizer", spec.verbalizer or {})):
        for k in table:
            if k not in labels:
                raise ConfigError(f"{key}.{k}: {k!r} is not an entity type; the types are {list(labels)}")
    verbalizer = {lbl: (spec.verbalizer or {}).get(lbl, lbl) for lbl in labels}
    words = list(verbalizer.values())
    if len({w.lower() for w in words}) != len(words):
        raise ConfigError(f"task.verbalizer: two entity types share a word: {verbalizer}")
    return labels, verbalizer, {lbl: d for lbl, d in (spec.descriptions or {}).items()}
