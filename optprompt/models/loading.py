"""Resolve a model reference and load it with its tokenizer, device and dtype."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.errors import ModelError
from optprompt.models.home import optprompt_home
from optprompt.models.text import TOKENIZER_FILES, chat_formatter

if TYPE_CHECKING:
    import torch

    from optprompt.plugins.manager import Plugins

__all__ = [
    "LoadedModel",
    "load_model",
    "select_family",
    "resolve_model_path",
    "select_device",
    "select_dtype",
    "fingerprint_dir",
    "chat_formatter",
]

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready to score: the module, its tokenizer and where it runs."""

    ref: str
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    fingerprint: str
    family: str = "causal"

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self):  # type: ignore[no-untyped-def]
        """messages -> prompt text through the tokenizer's chat template."""
        return chat_formatter(self.tokenizer)

    @property
    def context_tokens(self) -> int | None:
        """The positions the model knows (its config), else the tokenizer's
        ``model_max_length`` when it is a real figure; None when there is no limit to tell
        (e.g. T5's relative positions)."""
        config = getattr(self.model, "config", None)
        for key in _CONFIG_KEYS:
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < 1_000_000:
            return limit
        return None


_CONFIG_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")


def select_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Anything else is passed to torch."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as e:
        raise ModelError(f"scoring.device: {requested!r} is not a torch device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"scoring.device: {requested!r} was asked for but CUDA is not available here")
    return device


def select_dtype(requested: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on CUDA, float32 elsewhere."""
    import torch

    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[requested]


def fingerprint_dir(path: Path) -> str:
    """A cheap, stable fingerprint of a model directory.

    Pulled models carry their own (the source file's hash). Otherwise: config.json's
    bytes plus each weight file's name, size and first and last MiB.
    """
    marker = path / "optprompt-model.json"
    if marker.is_file():
        return json.loads(marker.read_text())["fingerprint"]
    h = hashlib.sha256()
    cfg = path / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(path.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".pt", ".gguf"}:
            size = f.stat().st_size
            h.update(f"{f.name}:{size}".encode())
            with f.open("rb") as fh:
                h.update(fh.read(1 << 20))
                if size > (1 << 20):
                    fh.seek(max(size - (1 << 20), 0))
                    h.update(fh.read(1 << 20))
    return f"{path.name}:{h.hexdigest()[:16]}"


def refuse_remote_code(path: Path, ref: str) -> None:
    """Refuse a model directory whose config asks to run code shipped with it (``auto_map``):
    optprompt never sets ``trust_remote_code``."""
    cfg = path / "config.json"
    try:
        config = json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {}
    except (OSError, ValueError):
        return  # transformers reports an unreadable config itself
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if auto_map:
        raise ModelError(
            f"model {ref!r} ({cfg}) asks to run its own code (auto_map: {', '.join(map(str, auto_map))}); "
            "optprompt never runs code shipped with a model (trust_remote_code stays off): use a model whose "
            "architecture transformers itself provides"
        )


def resolve_model_path(ref: str, plugins: Plugins, *, progress: bool = True) -> tuple[str, Path | None]:
    """Return ``(kind, path)``: a registered name, a local dir or a GGUF file gives a path; a hub id gives None.

    A ``.gguf`` file, or a directory holding one and no ``config.json``, is converted once
    into the model cache (see :mod:`optprompt.models.gguf`); the path is the converted copy.
    """
    from optprompt._suggest import did_you_mean
    from optprompt.models.gguf import find_gguf, resolve_gguf

    if ref in plugins.models:
        return "registered", plugins.models.get(ref).obj(optprompt_home(), progress=progress)
    p = Path(ref).expanduser()
    if p.exists() and find_gguf(p) is not None:
        return "gguf", resolve_gguf(p, optprompt_home(), progress=progress)
    if p.is_dir():
        return "local", p
    if p.exists():
        raise ModelError(
            f"model {ref!r} is a file but not a .gguf file; give a GGUF file or a transformers model directory"
        )
    known = ", ".join(plugins.models.names())
    if "/" not in ref or ref.startswith((".", "/", "~")):
        raise ModelError(
            f"unknown model {ref!r}{did_you_mean(ref, plugins.models.names())}: not a registered name "
            f"(known: {known}), not a local directory and not a .gguf file"
        )
    return "hub", None


def select_family(config: Any, plugins: Plugins, requested: str = "auto") -> str:
    """The backend for a model config: ``requested``, else the first backend whose
    ``detect`` accepts it, else ``causal``."""
    if requested != "auto":
        entry = plugins.backends.get(requested)  # unknown name: error listing the known ones
        if not getattr(entry.obj, "auto_class", None):
            raise ModelError(
                f"scoring.backend: {requested!r} scores through a model server; it is chosen by giving a server "
                "as the model (model: http://HOST:PORT/v1)"
            )
        return requested
    for entry in plugins.backends:
        detect = entry.extra.get("detect")
        if detect is not None and detect(config):
            return entry.name
    return "causal"


def load_model(
    ref: str,
    plugins: Plugins,
    *,
    device: str = "auto",
    dtype: str = "auto",
    backend: str = "auto",
    progress: bool = True,
) -> LoadedModel:
    """Load a model by short name, local path or hub id. ``trust_remote_code`` stays off.

    The model family (causal, seq2seq, masked...) is read from its config unless
    ``backend`` names one; the family's backend says which transformers Auto class loads it.
    A served model (an http(s) URL or a :class:`~optprompt.models.served.ServedModelSpec`)
    is connected to and probed instead (:func:`optprompt.models.served.connect`).
    """
    from optprompt.models.served import connect, is_served_ref

    if is_served_ref(ref):
        if backend not in ("auto", "served"):
            raise ModelError(f"scoring.backend: {backend!r} runs weights in-process; model {ref} is served")
        return connect(ref, plugins)  # type: ignore[return-value]
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    kind, path = resolve_model_path(ref, plugins, progress=progress)
    dev = select_device(device)
    dt = select_dtype(dtype, dev)
    source = str(path) if path is not None else ref
    if path is not None and not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(
            f"model directory {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}): copy the "
            "tokenizer files saved with the model (tokenizer.save_pretrained) next to its config.json"
        )
    if path is not None:
        refuse_remote_code(path, ref)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        family = select_family(config, plugins, backend)
        auto = getattr(transformers, plugins.backends.get(family).obj.auto_class)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        model = auto.from_pretrained(source, dtype=dt, trust_remote_code=False)
    except (OSError, ValueError) as e:
        known = ", ".join(plugins.models.names())
        hint = " (no model hub is reachable from this machine)" if kind == "hub" else ""
        raise ModelError(f"could not load model {ref!r}{hint}: {e}. Registered names: {known}") from None
    model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    fp = (
        fingerprint_dir(path)
        if path is not None
        else f"hub:{ref}@{getattr(model.config, '_commit_hash', None) or 'unknown'}"
    )
    return LoadedModel(ref=ref, model=model, tokenizer=tokenizer, device=dev, dtype=dt, fingerprint=fp, family=family)
