"""Load a study YAML file into a :class:`StudySpec`, with errors that name file, line and key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from optprompt.config.spec import StudySpec
from optprompt.errors import ConfigError

__all__ = ["load_spec", "spec_from_dict", "format_validation_error"]


def _keys_at(model: type[BaseModel] | None, path: tuple[Any, ...]) -> list[str]:
    """The keys the (nested) pydantic model at ``path`` accepts; [] when it cannot be told."""
    for part in path:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        candidates = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type)]
        model = next((a for a in candidates if issubclass(a, BaseModel)), None)
    if model is None:
        return []
    return [k for name, f in model.model_fields.items() for k in (name, f.alias) if k]


def format_validation_error(
    err: ValidationError, *, source: str, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """Turn a pydantic error into lines of ``source: key.path: message``.

    With ``model`` (the class that was validated), an unknown key gets a did-you-mean
    suggestion from the keys accepted at its place: ``task.promtp: unknown key (did you
    mean 'prompt'?)``.
    """
    from optprompt._suggest import did_you_mean

    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            key = e["loc"][-1] if e["loc"] else ""
            hint = did_you_mean(key, _keys_at(model, tuple(e["loc"][:-1]))) if isinstance(key, str) else ""
            msg = f"unknown key{hint}"
        elif e["type"] == "missing":
            msg = "missing required key"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def spec_from_dict(data: Any, *, source: str = "<spec>", base_dir: str | None = None, plugins: Any = None) -> StudySpec:
    """Validate a plain mapping (as loaded from YAML) into a :class:`StudySpec`.

    ``task.type`` must name a task type of ``plugins`` (loaded :class:`~optprompt.plugins.Plugins`;
    by default those of the installed plugins).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a study must be a mapping of keys, got {type(data).__name__}")
    if base_dir is not None and "base_dir" not in data:
        data = {**data, "base_dir": base_dir}
    if plugins is None:
        from optprompt.plugins.manager import load_task_types

        task_types = load_task_types()
    else:
        task_types = plugins.task_types
    try:
        return StudySpec.model_validate(data, context={"task_types": task_types})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source=source, model=StudySpec)) from None


def load_spec(path: str | os.PathLike[str], *, plugins: Any = None) -> StudySpec:
    """Read and validate a study YAML file.

    Raises:
        ConfigError: the file is missing, is not valid YAML (file, line and column are
            named) or has unknown, missing or invalid keys (their key paths are named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"study file not found: {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"YAML syntax error in {where}: {problem}") from None
    return spec_from_dict(data, source=str(path), base_dir=str(path.resolve().parent), plugins=plugins)
