"""Model backends: causal, seq2seq and masked LMs, and model servers, behind one
interface (a core plugin).

A backend's ``detect(config)`` says whether it handles a transformers config; the first
non-default match wins and ``causal`` is the fallback. ``scoring.backend`` overrides it.
``served`` detects nothing: a server given as the model (``model: http://HOST:PORT/v1``)
chooses it.
"""

from __future__ import annotations

from typing import Any

from optprompt.plugins.hookspecs import hookimpl
from optprompt.scoring.backends.base import Backend, GenerationSettings, LocalBackend
from optprompt.scoring.backends.causal import CausalLMBackend, naive_loglikelihoods
from optprompt.scoring.backends.factory import make_backend
from optprompt.scoring.backends.masked import MaskedLMBackend
from optprompt.scoring.backends.seq2seq import Seq2SeqBackend
from optprompt.scoring.backends.served import ServedBackend

__all__ = [
    "Backend",
    "CausalLMBackend",
    "GenerationSettings",
    "LocalBackend",
    "MaskedLMBackend",
    "Seq2SeqBackend",
    "ServedBackend",
    "make_backend",
    "naive_loglikelihoods",
]

_MASKED_TYPES = {
    "bert",
    "roberta",
    "distilbert",
    "albert",
    "electra",
    "deberta",
    "deberta-v2",
    "xlm-roberta",
    "camembert",
    "mpnet",
    "modernbert",
}


def _is_seq2seq(config: Any) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


def _is_masked(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    if archs:
        return any(a.endswith("ForMaskedLM") for a in archs)
    return getattr(config, "model_type", "") in _MASKED_TYPES


@hookimpl
def register_backends(register):  # type: ignore[no-untyped-def]
    register(
        "causal",
        CausalLMBackend,
        detect=None,
        description="decoder-only LMs; log-likelihood with prefix reuse; generation",
    )
    register(
        "seq2seq",
        Seq2SeqBackend,
        detect=_is_seq2seq,
        description="encoder-decoder LMs (T5); decoder scores the answer; generation",
    )
    register(
        "masked",
        MaskedLMBackend,
        detect=_is_masked,
        description="masked LMs (BERT); cloze scoring of single-token answers",
    )
    register(
        "served",
        ServedBackend,
        detect=None,
        description="a model behind an OpenAI-compatible server (vLLM, SGLang): prompt log-probabilities; generation",
    )
