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

if TYPE_CHECKING:
    from peft import PeftModel

    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.models.loading import LoadedModel

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "save_adapter",
    "read_manifest",
    "update_manifest",
]

MANIFEST_FILE = "optprompt_adapter.json"
MANIFEST_FORMAT = 1


def save_adapter(peft_model: PeftModel, directory: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write the adapter and its manifest into ``directory``, replacing it atomically.

    A failed write (a full disk) leaves nothing half-written behind and raises an
    :class:`OptpromptError` naming the directory and the reason: the trial fails with it.
    """
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        peft_model.save_pretrained(str(tmp))
        atomic_write_json(
            tmp / MANIFEST_FILE, {"format": MANIFEST_FORMAT, **manifest, "optprompt_version": __version__}
        )
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise OptpromptError(f"cannot save the adapter to {directory}: {reason}") from e
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


def attach_saved(loaded: LoadedModel, directory: str | os.PathLike[str]) -> PeftModel:
    """Put the adapter saved in ``directory`` onto ``loaded``'s model (inference mode).

    Only safetensors weights are read: an adapter folder whose weights are a pickle
    (``adapter_model.bin``), which runs code as it loads, is refused; so is a model that
    still carries another adapter (adapters are not stacked)."""
    from peft import PeftModel

    from optprompt.adapters.methods import ensure_bare, peft_quiet

    weights = Path(directory) / "adapter_model.safetensors"
    if not weights.is_file():
        found = sorted(p.name for p in Path(directory).glob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl"})
        raise OptpromptError(
            f"{directory}: no {weights.name}"
            + (f"; {', '.join(found)} is a pickle, which can run code when loaded: refused" if found else "")
            + ". optprompt loads adapter weights in safetensors only (PEFT's save_pretrained writes them)"
        )

    ensure_bare(loaded, f"load the adapter in {directory}")
    with peft_quiet():
        peft_model = PeftModel.from_pretrained(loaded.model, str(directory), is_trainable=False)
    peft_model.to(loaded.device)
    peft_model.eval()
    return peft_model


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
