"""``optprompt.load``: any export, loaded back into an object that predicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import read_json
from optprompt.errors import OptpromptError
from optprompt.kinds.base import EXPORT_FILE, Predictor
from optprompt.kinds.registry import candidate_kinds

if TYPE_CHECKING:
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins

__all__ = ["load", "export_kind"]


def export_kind(path: str | os.PathLike[str], plugins: Plugins | None = None) -> str:
    """The name of the kind whose export ``path`` holds."""
    from optprompt.plugins.manager import load_plugins

    path = Path(path)
    plugins = plugins or load_plugins()
    marker = path / EXPORT_FILE
    if marker.is_file():
        return str(read_json(marker, what="export marker")["kind"])
    if not path.exists():
        raise OptpromptError(f"{path}: not found")
    # Exports written before kinds were marked: the kinds that recognise the files.
    found = [name for name in plugins.kinds.names() if candidate_kinds(plugins).get(name).detect(path)]
    if not found:
        raise OptpromptError(f"{path}: not an optprompt export (no {EXPORT_FILE}, and no kind recognises it)")
    # A trained adapter's export holds a prompt card too: the most specific kind wins.
    specific = [n for n in found if n != candidate_kinds(plugins).of_dict({}).name]
    return (specific or found)[0]


def load(
    path: str | os.PathLike[str],
    model: str | LoadedModel | None = None,
    *,
    plugins: Plugins | None = None,
    **options: Any,
) -> Predictor:
    """Load an export (``optprompt export`` output) into an object that predicts.

    ``load(path).predict(texts)`` gives the predictions the study measured on test, for
    every kind of candidate (a prompt card ranks answers by calibrated log-likelihood on
    its model; an adapter is put back onto its base model first).

    Args:
        path: The export directory (or a prompt card's JSON file).
        model: The model: None loads the reference the export names; a string loads that
            reference instead (a local copy); a loaded model is used as it is.
        plugins: Loaded plugins (their candidate kinds); discovered when None.
        options: Passed to the kind's loader (e.g. ``device``, ``dtype``).
    """
    from optprompt.plugins.manager import load_plugins

    plugins = plugins or load_plugins()
    name = export_kind(path, plugins)
    return candidate_kinds(plugins).get(name).load(Path(path), model, plugins=plugins, **options)
