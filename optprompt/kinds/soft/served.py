"""An exported LoRA adapter served by a model server (vLLM ``--enable-lora``), loaded back.

vLLM serves LoRA adapters beside their base model (``--lora-modules NAME=DIR``, or loaded
at run time through ``/v1/load_lora_adapter``) and applies one to a request whose ``model``
names it. :func:`load_served_adapter` finds which served adapter is the export's: the one
the served model reference names (``model: {url: ..., adapter: NAME}``, ``--adapter``),
else the one the server read from the export's own directory (or from a copy with the same
weights). The export's prompt card renders every input as in-process, and the served
backend scores through the adapter: the same predictions as the adapter loaded on local
weights (the real-server test compares the two).

Prompt-learning adapters (prompt tuning, prefix tuning, p-tuning) are not served by vLLM:
they are refused with an error that says how to evaluate them (in-process).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.adapters.artifact import MANIFEST_FILE
from optprompt.errors import ModelError, OptpromptError
from optprompt.kinds.prompt.card import PromptCard
from optprompt.kinds.prompt.predictor import CardPredictor

if TYPE_CHECKING:
    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.models.served import ServedModel
    from optprompt.plugins.manager import Plugins

__all__ = ["ServedAdapter", "load_served_adapter", "SERVED_METHODS"]

log = logging.getLogger(__name__)

#: The adapter methods a model server applies per request.
SERVED_METHODS = ("lora",)
#: The files of an adapter that decide what it computes.
_WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")


class ServedAdapter(CardPredictor):
    """An exported LoRA adapter scored through the server that serves it: predicts as
    :class:`~optprompt.kinds.soft.predictor.SoftPrompt` does on local weights. Use it as a
    context manager (or call :meth:`close`) to close its connection."""

    def __init__(
        self,
        manifest: dict[str, Any],
        card: PromptCard,
        served: ServedModel,
        plugins: Plugins | None = None,
        *,
        owned: bool = True,
    ) -> None:
        from optprompt.kinds.registry import candidate_kinds
        from optprompt.plugins.manager import load_plugins
        from optprompt.scoring.backends.served import ServedBackend

        super().__init__(card, served, ServedBackend(served))  # type: ignore[arg-type]
        self.manifest = manifest
        self.served = served
        self._owned = owned  # whether the connection is this object's to close
        self.candidate: SoftCandidate = candidate_kinds(plugins or load_plugins()).from_dict(manifest["candidate"])

    @property
    def adapter(self) -> str:
        """The adapter's name on the server."""
        return str(self.served.model_id)

    def close(self) -> None:
        """Close the connection to the server when it was opened for this adapter."""
        if self._owned:
            self.served.close()

    def __enter__(self) -> ServedAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _digest(directory: Path) -> str | None:
    """A hash of the adapter's weights and configuration; None when they are not all here."""
    h = hashlib.sha256()
    for name in _WEIGHT_FILES:
        f = directory / name
        if not f.is_file():
            return None
        h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _same_adapter(root: str, directory: Path, want: str | None) -> bool | None:
    """Whether the served adapter read from ``root`` is the export in ``directory``: the same
    directory, or the same weights; None when ``root`` is not on this machine."""
    path = Path(root).expanduser()
    if not path.is_dir():
        return None
    if path.resolve() == directory.resolve():
        return True
    return want is not None and _digest(path) == want


def _pick(served: ServedModel, directory: Path) -> ServedModel:
    """``served`` on the adapter that is the export in ``directory``."""
    want = _digest(directory)
    if want is None:
        raise OptpromptError(f"{directory}: no {' and '.join(_WEIGHT_FILES)}: not a LoRA adapter a server can load")
    if served.adapter is not None:
        same = _same_adapter(served.adapter_root or "", directory, want)
        if same is False:
            raise ModelError(
                f"{directory}: the server {served.ref} serves adapter {served.adapter!r} from {served.adapter_root}, "
                "whose weights are not this export's"
            )
        if same is None:
            where = served.adapter_root
            log.info("%s: adapter %r read from %s (not on this machine)", served.ref, served.adapter, where)
        return served
    adapters = served.adapters()
    found = [name for name, root in adapters.items() if _same_adapter(root, directory, want)]
    if len(found) == 1:
        return served.with_adapter(found[0])
    listed = ", ".join(f"{n} ({r})" for n, r in adapters.items()) or "none"
    if found:
        hint = f"several served adapters are this export ({', '.join(found)}): name one"
    else:
        hint = f"none of the adapters it serves is this export (it serves: {listed})"
    raise ModelError(
        f"{directory}: the server {served.ref} must serve this LoRA adapter: {hint}. Start vLLM with "
        f"--enable-lora --lora-modules NAME={directory} (and --max-lora-rank at least the adapter's rank), then "
        "evaluate with --adapter NAME (model: {url: ..., adapter: NAME})"
    )


def load_served_adapter(
    directory: str | os.PathLike[str], manifest: dict[str, Any], model: Any, *, plugins: Plugins | None = None
) -> ServedAdapter:
    """An exported (or a study's) LoRA adapter through the server that serves it.

    Args:
        directory: The adapter directory.
        manifest: Its manifest (read by the caller).
        model: The served model: a :class:`~optprompt.models.served.ServedModel` or a
            served reference (a URL or mapping, ``adapter:`` naming the served adapter).
        plugins: Where candidate kinds are registered (discovered when None).

    Raises:
        OptpromptError: the adapter is not LoRA (servers apply LoRA only), or the server does
            not serve it (the message names the adapters it serves and the vLLM options).
    """
    from optprompt.models.served import ServedModel, connect

    directory = Path(directory)
    method = (manifest.get("candidate") or {}).get("method")
    if method not in SERVED_METHODS:
        raise OptpromptError(
            f"{directory}: a {method} adapter cannot be served (model servers apply LoRA adapters only: vLLM no "
            "longer serves prompt-learning adapters); evaluate it in-process on the base model's weights (--model DIR)"
        )
    given = model if isinstance(model, ServedModel) else None
    served = given or connect(model)
    picked = _pick(served, directory)
    if picked is not served and given is None:
        served.close()
    card = PromptCard.from_dict(manifest["card"], source=str(directory / MANIFEST_FILE))
    return ServedAdapter(manifest, card, picked, plugins, owned=picked is not given)
