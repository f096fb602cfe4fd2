"""PEFT methods: a soft candidate's description -> a PEFT config, attached and detached.

Prompt tuning, prefix tuning and P-tuning learn virtual tokens in front of the text
("prompt learning"); LoRA learns low-rank updates of the attention weights and is the
strong reference. The base model's own weights never change: LoRA layers are removed
again when a trial ends (:func:`attached`), so the study's discrete scorer keeps scoring
the untouched model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from optprompt.adapters.candidate import METHODS, PROMPT_LEARNING
from optprompt.errors import ConfigError, OptpromptError

if TYPE_CHECKING:
    from peft import PeftConfig, PeftModel

    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.models.loading import LoadedModel

__all__ = [
    "METHODS",
    "PROMPT_LEARNING",
    "INITS",
    "peft_config",
    "attached",
    "detach",
    "adapter_layers",
    "ensure_bare",
    "init_from_text",
    "peft_quiet",
    "trainable_parameters",
    "adapter_digest",
    "merged_lora",
]


#: Prompt-tuning initialisations: from a text's token embeddings, random, sampled vocabulary.
INITS = ("text", "random", "vocab")


@contextlib.contextmanager
def peft_quiet() -> Iterator[None]:
    """Silence what PEFT says on every call that is no news here: it ignores position ids
    for prompt learning (positions follow the virtual tokens, as intended), it asks
    transformers about gradient checkpointing through a deprecated name, and prefix tuning
    hands its key/values to transformers as ``past_key_values`` (renamed ``cache`` in
    transformers 5.24, the old name removed in 5.40: pyproject.toml caps transformers
    below 5.40 for this). These are PEFT's calls, not optprompt's; a user cannot act on them.

    Not silenced: "Both `past_key_values` and `cache` are set", which says the prefix was
    dropped (a real fault, not noise).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]osition ids are not supported.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        warnings.filterwarnings(
            "ignore", message=r"`past_key_values` is deprecated and will be removed", category=FutureWarning
        )
        yield


def _positive(params: dict[str, Any], key: str, what: str, *, integer: bool = True) -> Any:
    value = params.get(key)
    if value is None:
        raise ConfigError(f"adapter hyperparameter {key!r} ({what}) is missing")
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"adapter hyperparameter {key!r} ({what}) must be an integer, got {value!r}")
    if value <= 0:
        raise ConfigError(f"adapter hyperparameter {key!r} ({what}) must be at least 1, got {value!r}")
    return value


def peft_config(candidate: SoftCandidate, loaded: LoadedModel) -> PeftConfig:
    """The PEFT config that ``candidate`` describes, for ``loaded``'s model.

    Raises:
        ConfigError: an unknown method or a hyperparameter out of range, named.
    """
    from peft import LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, TaskType

    if loaded.family != "causal":
        raise ConfigError(
            f"soft prompts and adapters are trained on causal LMs; model {loaded.ref!r} is {loaded.family}"
        )
    p = candidate.param_map
    method = candidate.method
    if method == "lora":
        r = _positive(p, "lora_r", "LoRA rank")
        targets = p.get("lora_targets")
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=r,
            lora_alpha=p.get("lora_alpha", 2 * r),
            lora_dropout=float(p.get("lora_dropout", 0.0)),
            target_modules=list(targets) if targets else None,
        )
    n = _positive(p, "num_virtual_tokens", "number of virtual tokens")
    if method == "prefix_tuning":
        projection = bool(p.get("prefix_projection", False))
        return PrefixTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=n,
            prefix_projection=projection,
            encoder_hidden_size=int(p.get("encoder_hidden_size", loaded.model.config.hidden_size)),
        )
    if method == "p_tuning":
        return PromptEncoderConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=n,
            encoder_hidden_size=_positive(p, "encoder_hidden_size", "P-tuning encoder width"),
        )
    if method == "prompt_tuning":
        from peft import PromptTuningInit

        init = p.get("init", "text")
        if init not in INITS:
            raise ConfigError(f"adapter hyperparameter 'init' must be one of {INITS}, got {init!r}")
        # Text init is done by :func:`attached` from the model's own tokenizer, so the
        # saved adapter config never points at a tokenizer path to reload.
        kind = PromptTuningInit.SAMPLE_VOCAB if init == "vocab" else PromptTuningInit.RANDOM
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=n, prompt_tuning_init=kind)
    raise ConfigError(f"unknown adapter method {method!r}; known: {', '.join(METHODS)}")


def init_from_text(peft_model: PeftModel, loaded: LoadedModel, text: str) -> None:
    """Set prompt-tuning virtual tokens to the embeddings of ``text``'s tokens (repeated
    or cut to the number of virtual tokens), as Lester et al. (2021) initialise them."""
    import torch

    ids = loaded.tokenizer(text.strip(), add_special_tokens=False).input_ids if text and text.strip() else []
    if not ids:
        raise ConfigError("prompt tuning with init 'text' needs a non-empty init text")
    encoder = peft_model.prompt_encoder[peft_model.active_adapter]
    n = encoder.embedding.weight.shape[0]
    ids = (ids * (n // len(ids) + 1))[:n]
    with torch.no_grad():
        words = loaded.model.get_input_embeddings()(torch.tensor(ids, device=loaded.device))
        encoder.embedding.weight.copy_(words.to(encoder.embedding.weight.dtype))


def adapter_layers(model: Any) -> list[str]:
    """The modules of ``model`` that are PEFT adapter layers (LoRA and the like), by name:
    what an adapter injected into it and did not take out again."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def ensure_bare(loaded: LoadedModel, doing: str) -> None:
    """Refuse to put an adapter on a model that still carries another one.

    PEFT would wrap the model a second time ("You are trying to modify a model with PEFT for
    a second time"): the new adapter would sit on top of the old one's layers, and every
    score through it would include the old adapter. Adapters are never stacked here; the
    usual cause is an adapter loaded with ``optprompt.load(DIR, model)`` and not closed.

    Raises:
        OptpromptError: naming the model, one of the leftover layers and what to do.
    """
    layers = adapter_layers(loaded.model)
    if layers:
        raise OptpromptError(
            f"cannot {doing}: model {loaded.ref!r} still carries another PEFT adapter ({len(layers)} adapter "
            f"layers, e.g. {layers[0]!r}), and adapters are not stacked (the new one would score with the old "
            "one's layers included). An adapter loaded onto this model with optprompt.load(DIR, model) stays on it "
            "until it is closed: use `with optprompt.load(DIR, model) as p:` or call p.close() first"
        )


@contextlib.contextmanager
def attached(loaded: LoadedModel, candidate: SoftCandidate, init_text: str | None = None) -> Iterator[PeftModel]:
    """The base model wrapped with a fresh adapter for ``candidate``; the base is
    restored on exit.

    LoRA injects its layers into the base model's modules: they are removed again
    (``unload``, no merge). Prompt-learning wrappers leave the base modules alone.
    Trainable weights are created in float32 whatever the model's dtype. A model that
    still carries another adapter is refused (:func:`ensure_bare`).
    """
    import torch
    from peft import get_peft_model

    config = peft_config(candidate, loaded)
    ensure_bare(loaded, f"train a {candidate.method} adapter")
    model = loaded.model
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    with peft_quiet():
        peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
    for p in peft_model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    try:
        if candidate.method == "prompt_tuning" and candidate.param_map.get("init", "text") == "text":
            init_from_text(peft_model, loaded, init_text or candidate.instruction)
        yield peft_model
    finally:
        detach(peft_model, loaded, flags)


def detach(peft_model: PeftModel, loaded: LoadedModel, flags: dict[str, bool] | None = None) -> None:
    """Remove ``peft_model``'s adapter from ``loaded``'s model (in place)."""
    if not peft_model.peft_config[peft_model.active_adapter].is_prompt_learning:
        peft_model.unload()
    for name, p in loaded.model.named_parameters():
        p.requires_grad_(flags.get(name, False) if flags else False)
    loaded.model.eval()


def trainable_parameters(peft_model: PeftModel) -> int:
    """Parameters the adapter trains."""
    return sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


def adapter_digest(peft_model: PeftModel) -> str:
    """A content hash of the adapter's trainable weights (16 hex digits)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(peft_model.named_parameters()):
        if p.requires_grad or "lora_" in name or "prompt_encoder" in name:
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def merged_lora(peft_model: PeftModel) -> Iterator[bool]:
    """LoRA's updates folded into the base weights while the block runs; yields whether
    they were.

    Decoding runs the model once per new token on a handful of positions, where each
    LoRA layer's two extra small matmuls, scaling and addition cost about as much as the
    layer itself. Merged, a LoRA layer is one matmul (PEFT's own merged state: the layer
    calls its base layer alone). The update is added out of place and the original
    weight tensors are put back on exit, bit for bit, so scoring and training after the
    block see the unmerged model; the merged forward equals the unmerged one up to float
    rounding (summation order).

    Merged only where that is safe and exact enough: plain LoRA on linear layers (no
    DoRA or other variant, no LoRA bias), adapters active and not merged already, float32
    base weights (adding a small update into bfloat16 or float16 weights rounds much of
    it away). Otherwise the block runs on the model as it is and this yields False.
    """
    import torch

    try:
        from peft.tuners.lora import Linear as LoraLinear
        from peft.tuners.lora import LoraLayer
    except ImportError:  # pragma: no cover - peft is a dependency
        yield False
        return
    layers = [m for m in peft_model.modules() if isinstance(m, LoraLayer)]

    def mergeable(m: Any) -> bool:
        active = [a for a in m.active_adapters if a in m.lora_A]
        return (
            type(m) is LoraLinear
            and bool(active)
            and not m.merged
            and not m.disable_adapters
            and m.get_base_layer().weight.dtype == torch.float32
            and not any(a in getattr(m, "lora_variant", {}) or m.lora_bias.get(a) for a in active)
        )

    if not layers or not all(mergeable(m) for m in layers):
        yield False
        return
    saved: list[tuple[Any, Any, list[str]]] = []
    try:
        with torch.no_grad():
            for m in layers:
                weight = m.get_base_layer().weight
                active = [a for a in m.active_adapters if a in m.lora_A]
                delta = sum(m.get_delta_weight(a) for a in active)
                saved.append((m, weight.data, list(m.merged_adapters)))
                weight.data = weight.data + delta.to(weight.dtype)
                m.merged_adapters.extend(active)
        yield True
    finally:
        for m, data, merged in saved:
            m.get_base_layer().weight.data = data
            m.merged_adapters[:] = merged
