"""Adapters on disk: PEFT's ``save_pretrained`` files plus an optprompt manifest.

A saved adapter directory holds ``adapter_config.json`` and ``adapter_model.safetensors``
(PEFT's own format, loadable with ``PeftModel.from_pretrained``) and
``optprompt_adapter.json``: the base model's reference and fingerprint, the text around
the input (a prompt card), the verbalizer, the task, the method and hyperparameters,
training figures and the dev (and, for a study's winner, test) scores.

:func:`load_adapter` puts an adapter back onto its base model and returns a
:class:`SoftPrompt` that scores, predicts and generates exactly as the study did.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json, read_json
from optprompt._version import __version__
from optprompt.errors import OptpromptError
from optprompt.kinds.prompt.card import PromptCard
from optprompt.kinds.prompt.predictor import CardPredictor

if TYPE_CHECKING:
    from peft import PeftModel

    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.models.loading import LoadedModel

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "save_adapter",
    "read_manifest",
    "update_manifest",
    "load_adapter",
    "SoftPrompt",
]

MANIFEST_FILE = "optprompt_adapter.json"
MANIFEST_FORMAT = 1


def save_adapter(peft_model: PeftModel, directory: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write the adapter and its manifest into ``directory``, replacing it atomically."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(str(tmp))
    atomic_write_json(tmp / MANIFEST_FILE, {"format": MANIFEST_FORMAT, **manifest, "optprompt_version": __version__})
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)
    return directory


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the adapter in ``directory`` (a clear error when it is not one)."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise OptpromptError(f"{directory}: not an optprompt adapter directory ({MANIFEST_FILE} missing)")
    data = read_json(path, what="adapter manifest")
    if data.get("format") != MANIFEST_FORMAT:
        raise OptpromptError(f"{path}: unsupported adapter manifest format {data.get('format')!r}")
    for key in ("model", "card", "candidate"):
        if key not in data:
            raise OptpromptError(f"{path}: manifest key {key!r} is missing")
    return data


def update_manifest(directory: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the manifest of the adapter in ``directory``."""
    data = read_manifest(directory)
    data.update(fields)
    atomic_write_json(Path(directory) / MANIFEST_FILE, data)
    return data


class SoftPrompt(CardPredictor):
    """A trained adapter on its base model: score, predict and generate with it.

    Build it with :func:`load_adapter`. It renders inputs through its prompt card exactly
    as a card does (:class:`~optprompt.kinds.prompt.CardPredictor`), and scores through
    the adapted model. Use it as a context manager (or call :meth:`close`) to take the
    adapter off the base model again (LoRA changes the model's modules in place while it
    is loaded).
    """

    def __init__(self, manifest: dict[str, Any], card: PromptCard, loaded: LoadedModel, peft_model: PeftModel) -> None:
        from optprompt.adapters.backend import AdapterBackend
        from optprompt.plugins.manager import load_plugins

        super().__init__(card, loaded, AdapterBackend(loaded, peft_model))
        self.manifest = manifest
        self.peft_model = peft_model
        # Read by its kind: a trained adapter or a prompt + adapter (a SoftCandidate subclass).
        self.candidate: SoftCandidate = load_plugins().candidate_kinds.from_dict(manifest["candidate"])
        self._closed = False

    # --- lifetime -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise OptpromptError("this SoftPrompt was closed")

    def close(self) -> None:
        """Take the adapter off the base model (restores LoRA-wrapped modules)."""
        from optprompt.adapters.methods import detach

        if not self._closed:
            detach(self.peft_model, self.loaded)
            self._closed = True

    def __enter__(self) -> SoftPrompt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def attach_saved(loaded: LoadedModel, directory: str | os.PathLike[str]) -> PeftModel:
    """Put the adapter saved in ``directory`` onto ``loaded``'s model (inference mode)."""
    from peft import PeftModel

    from optprompt.adapters.methods import peft_quiet

    with peft_quiet():
        peft_model = PeftModel.from_pretrained(loaded.model, str(directory), is_trainable=False)
    peft_model.to(loaded.device)
    peft_model.eval()
    return peft_model


def load_adapter(
    directory: str | os.PathLike[str],
    model: str | LoadedModel | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    check_fingerprint: bool = True,
) -> SoftPrompt:
    """Load an exported (or a study's) adapter onto its base model.

    Args:
        directory: The adapter directory (``optprompt export`` output or
            ``OUTPUT/adapters/<hash>``).
        model: The base model: None loads the manifest's model reference; a string
            loads that reference instead (a local copy); a :class:`LoadedModel` is used
            as it is (its module is modified in place while LoRA is loaded).
        check_fingerprint: Refuse a base model whose fingerprint differs from the one
            the adapter was trained on.
    """
    from optprompt.models.loading import LoadedModel, load_model
    from optprompt.plugins.manager import load_plugins

    manifest = read_manifest(directory)
    if not isinstance(model, LoadedModel):
        model = load_model(
            model or manifest["model"]["ref"], load_plugins(), device=device, dtype=dtype, progress=False
        )
    want = manifest["model"].get("fingerprint")
    if check_fingerprint and want and model.fingerprint != want:
        raise OptpromptError(
            f"{directory}: adapter was trained on base model fingerprint {want}, "
            f"but {model.ref!r} has {model.fingerprint} (pass check_fingerprint=False to load anyway)"
        )
    card = PromptCard.from_dict(manifest["card"], source=str(Path(directory) / MANIFEST_FILE))
    return SoftPrompt(manifest, card, model, attach_saved(model, directory))


def manifest_for(
    candidate: SoftCandidate,
    card: PromptCard,
    loaded: LoadedModel,
    *,
    task: dict[str, Any],
    training: dict[str, Any],
    dev: dict[str, Any],
    study: str = "",
    seed: int = 0,
) -> dict[str, Any]:
    """The manifest written next to a trained adapter."""
    return {
        "method": candidate.method,
        "params": candidate.param_map,
        "candidate": candidate.to_dict(),
        "hash": candidate.hash,
        "card": card.to_dict(),
        "model": {
            "ref": loaded.ref,
            "fingerprint": loaded.fingerprint,
            "family": loaded.family,
            "dtype": str(loaded.dtype).replace("torch.", ""),
        },
        "task": task,
        "verbalizer": dict(candidate.verbalizer),
        "training": training,
        "scores": {"dev": dev, "test": None},
        "study": study,
        "seed": seed,
    }
