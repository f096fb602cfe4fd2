"""Turn a :class:`TaskSpec` into a validated, split :class:`Task`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from optprompt.config.spec import TaskSpec
from optprompt.errors import BadRowError, ConfigError, DataError
from optprompt.plugins.manager import Plugins
from optprompt.tasks.bad_rows import BadRows
from optprompt.tasks.task import Example, Task
from optprompt.tasks.types import LabelSet, TaskType, cell_text

__all__ = ["build_task", "resolve_data_path", "data_columns", "EXPORTED_COLUMNS"]

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


def _check_columns(
    rows: list[dict[str, Any]], spec: TaskSpec, source: str, task_type: TaskType, plugins: Plugins
) -> None:
    columns = list(rows[0].keys())
    needed = {"task.input": spec.input, "task.label": spec.label, **task_type.columns(spec)}
    if spec.id:
        needed["task.id"] = spec.id
    for key, col in needed.items():
        if col not in rows[0]:
            hint = ""
            takers = [e.name for e in plugins.task_types if e.obj.has_options]
            if key == "task.label" and "options" in columns and not task_type.has_options and takers:
                hint = f" (rows have options: set task.type: {takers[0]} and task.options: options)"
            raise DataError(
                f"{source}: column {col!r} (from {key}) is not in the data; columns are: "
                f"{', '.join(map(str, columns))}{hint}"
            )


def _make_examples(
    rows: list[dict[str, Any]], spec: TaskSpec, task_type: TaskType, source: str, tag: str, bad: BadRows
) -> list[tuple[Example, str | None]]:
    """Examples with their hub split; the task type reads each row's label. Bad rows raise,
    or are dropped and counted in ``bad`` (``task.bad_rows: skip``)."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source} row {i + 1}"
        ex = bad.check(lambda: _example(row, i, spec, task_type, where, tag), where)  # noqa: B023 (called at once)
        if ex is not None:
            out.append((ex, row.get("__split__")))
    return out


def _example(row: dict[str, Any], i: int, spec: TaskSpec, task_type: TaskType, where: str, tag: str) -> Example:
    """One row as an example; a row the task cannot use raises a :class:`BadRowError` naming why."""
    try:
        text = cell_text(row.get(spec.input), where=where, column=spec.input)
    except DataError as e:
        raise BadRowError(str(e), "empty_input") from None
    ex_id = cell_text(row.get(spec.id), where=where, column=spec.id) if spec.id else f"{tag}{i + 1}"
    try:
        return task_type.example(row, spec, ex_id=ex_id, text=text, where=where)
    except DataError as e:
        raise BadRowError(str(e), _bad_label_reason(row, spec, task_type)) from None


def _bad_label_reason(row: dict[str, Any], spec: TaskSpec, task_type: TaskType) -> str:
    """Why the task type could not read a row's answer: its label cell is empty, its options
    are not a list of at least two non-empty texts, or its label is not one the task knows."""
    label = row.get(spec.label)
    if label is None or (isinstance(label, str) and not label.strip()) or label == []:
        return "missing_label"
    if task_type.has_options:
        options = row.get(spec.options or "")
        if (
            not isinstance(options, (list, tuple))
            or len(options) < 2
            or any(o is None or (isinstance(o, str) and not o.strip()) for o in options)
        ):
            return "bad_options"
    return "unknown_label"


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
        PluginError: ``spec.type`` is no task type of ``plugins``.
    """
    task_type: TaskType = plugins.task_types.get(spec.type).obj
    given_type = task_type
    bad = BadRows(spec.bad_rows)
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
            _check_columns(rows, spec, source, task_type, plugins)
            splits[s] = [ex for ex, _ in _make_examples(rows, spec, task_type, source, f"{s}:row", bad)]
            sources.append(source)
        source_desc = ", ".join(sources)
    else:
        rows, source_desc = _load_source(spec.data, spec, plugins, base_dir)
        _check_columns(rows, spec, source_desc, task_type, plugins)
        pairs = _make_examples(rows, spec, task_type, source_desc, "row", bad)
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
                by_label=task_type.has_fixed_labels,
            )

    if task_type.has_fixed_labels and (spec.labels is not None or spec.verbalizer is not None):
        splits = _known_labels(splits, spec, bad)
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

    shared = _shared_options(all_examples) if task_type.labels_form and spec.options_as_labels else None
    if shared is not None:  # the same options everywhere: searched as the labels of a classification
        task_type = plugins.task_types.get(task_type.labels_form).obj
        words = {str(k): v for k, v in (spec.verbalizer or {}).items()}
        label_set = LabelSet(labels=shared, verbalizer={o: words.get(o, o) for o in shared})
        for s in _SPLITS:  # listed in one order, as a card lists them
            splits[s] = [dataclasses.replace(task_type.with_labels(e, label_set), options=shared) for e in splits[s]]
    else:
        label_set = task_type.label_set(spec, all_examples, source_desc)
        for s in _SPLITS:
            splits[s] = [task_type.with_labels(e, label_set) for e in splits[s]]

    unlabeled = _unlabeled(spec, task_type, plugins, base_dir, seen) if spec.unlabeled else []

    instruction = spec.prompt if spec.prompt is not None else task_type.default_instruction
    template = spec.template if spec.template is not None else task_type.default_template
    return Task(
        name=name,
        type=task_type,
        train=splits["train"],
        dev=splits["dev"],
        test=splits["test"],
        labels=label_set.labels,
        verbalizer=label_set.verbalizer,
        instruction=instruction,
        template=template,
        metric=spec.metric or task_type.default_metric,
        source=source_desc,
        fingerprint=_fingerprint(splits),
        descriptions=label_set.descriptions,
        output_format=spec.output_format if task_type.extracts_entities else "",
        unlabeled=unlabeled,
        bad_rows=bad.summary() if bad.skipping else {},
        given_type=given_type.name if given_type is not task_type else "",
        columns=data_columns(spec),
    )


#: The column options of a study's ``task:`` block an export carries (not ``id``: new data
#: need not have one; not ``format``: new data may come in another file type).
EXPORTED_COLUMNS = ("input", "label", "options", "label_separator")


def data_columns(spec: TaskSpec) -> dict[str, str]:
    """The column mapping ``spec`` reads its data with (the keys of :data:`EXPORTED_COLUMNS` it sets)."""
    return {k: getattr(spec, k) for k in EXPORTED_COLUMNS if getattr(spec, k) is not None}


def _unlabeled(
    spec: TaskSpec, task_type: TaskType, plugins: Plugins, base_dir: str | None, seen: dict[str, str]
) -> list[Example]:
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
        text = cell_text(row.get(spec.input), where=where, column=spec.input)
        ex_id = (
            cell_text(row.get(spec.id), where=where, column=spec.id)
            if spec.id and spec.id in row
            else f"unlabeled:row{i + 1}"
        )
        if ex_id in seen:
            raise DataError(f"{where}: example id {ex_id!r} is not unique (also {seen[ex_id]})")
        seen[ex_id] = where
        out.append(task_type.unlabeled_example(row, spec, ex_id=ex_id, text=text, where=where))
    return out


def _shared_options(examples: list[Example]) -> tuple[str, ...] | None:
    """The options every example offers (in the order most examples list them) when they
    are one set of distinct, non-numeric texts; None when they differ per example."""
    if not examples:
        return None
    first = Counter(ex.options for ex in examples).most_common(1)[0][0]
    if len(set(first)) != len(first) or all(o.strip().lstrip("-").isdigit() for o in first):
        return None
    want = set(first)
    if any(set(ex.options) != want or len(ex.options) != len(first) for ex in examples):
        return None
    return tuple(first)


def _known_labels(splits: dict[str, list[Example]], spec: TaskSpec, bad: BadRows) -> dict[str, list[Example]]:
    """Classification: drop (or stop at) examples whose label is not in ``task.labels`` or
    has no word in ``task.verbalizer``."""
    labels = [str(lbl) for lbl in spec.labels] if spec.labels is not None else None
    words = {str(k) for k in spec.verbalizer} if spec.verbalizer is not None else None
    out: dict[str, list[Example]] = {}
    for s, examples in splits.items():
        out[s] = []
        for ex in examples:
            if labels is not None and ex.target not in labels:
                bad.reject(f"{ex.row}: label {ex.target!r} is not in task.labels {labels}", "unknown_label", ex.row)
            elif words is not None and ex.target not in words:
                bad.reject(
                    f"{ex.row}: label {ex.target!r} has no word in task.verbalizer (it maps {sorted(words)})",
                    "unknown_label",
                    ex.row,
                )
            else:
                out[s].append(ex)
    return out
