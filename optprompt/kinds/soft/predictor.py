"""Loading a trained adapter back: :func:`load_adapter` and the :class:`SoftPrompt` it returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.adapters.artifact import MANIFEST_FILE, attach_saved, read_manifest
from optprompt.errors import OptpromptError
from optprompt.kinds.prompt.card import PromptCard
from optprompt.kinds.prompt.predictor import CardPredictor

if TYPE_CHECKING:
    from peft import PeftModel

    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins

__all__ = ["SoftPrompt", "load_adapter"]


class SoftPrompt(CardPredictor):
    """A trained adapter on its base model: score, predict and generate with it.

    Build it with :func:`load_adapter`. It renders inputs through its prompt card exactly
    as a card does (:class:`~optprompt.kinds.prompt.CardPredictor`), and scores through
    the adapted model. Use it as a context manager (or call :meth:`close`) to take the
    adapter off the base model again (LoRA changes the model's modules in place while it
    is loaded).
    """

    def __init__(
        self,
        manifest: dict[str, Any],
        card: PromptCard,
        loaded: LoadedModel,
        peft_model: PeftModel,
        plugins: Plugins | None = None,
    ) -> None:
        from optprompt.adapters.backend import AdapterBackend
        from optprompt.kinds.registry import candidate_kinds
        from optprompt.plugins.manager import load_plugins

        super().__init__(card, loaded, AdapterBackend(loaded, peft_model))
        self.manifest = manifest
        self.peft_model = peft_model
        # Read by its kind: a trained adapter or a prompt + adapter (a SoftCandidate subclass).
        self.candidate: SoftCandidate = candidate_kinds(plugins or load_plugins()).from_dict(manifest["candidate"])
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


def load_adapter(
    directory: str | os.PathLike[str],
    model: str | LoadedModel | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    check_fingerprint: bool = True,
    plugins: Plugins | None = None,
) -> SoftPrompt:
    """Load an exported (or a study's) adapter onto its base model.

    Args:
        directory: The adapter directory (``optprompt export`` output or
            ``OUTPUT/adapters/<hash>``).
        model: The base model: None loads the manifest's model reference; a string
            loads that reference instead (a local copy); a :class:`LoadedModel` is used
            as it is (its module is modified in place while LoRA is loaded). A served
            model (a URL, a mapping or a connected one) scores through the server's copy of
            the adapter instead (a LoRA adapter served by vLLM:
            :func:`~optprompt.kinds.soft.served.load_served_adapter`).
        check_fingerprint: Refuse a base model whose fingerprint differs from the one
            the adapter was trained on.
        plugins: Where model loaders are registered (discovered when None).
    """
    from optprompt.models.loading import LoadedModel, load_model
    from optprompt.models.served import is_served_ref
    from optprompt.plugins.manager import load_plugins

    manifest = read_manifest(directory)
    if is_served_ref(model) or getattr(model, "family", None) == "served":
        from optprompt.kinds.soft.served import load_served_adapter

        return load_served_adapter(directory, manifest, model, plugins=plugins)  # type: ignore[return-value]
    if not isinstance(model, LoadedModel):
        model = load_model(
            model or manifest["model"]["ref"], plugins or load_plugins(), device=device, dtype=dtype, progress=False
        )
    want = manifest["model"].get("fingerprint")
    if check_fingerprint and want and model.fingerprint != want:
        raise OptpromptError(
            f"{directory}: adapter was trained on base model fingerprint {want}, "
            f"but {model.ref!r} has {model.fingerprint} (pass check_fingerprint=False to load anyway)"
        )
    card = PromptCard.from_dict(manifest["card"], source=str(Path(directory) / MANIFEST_FILE))
    return SoftPrompt(manifest, card, model, attach_saved(model, directory), plugins)
