"""Scoring: model backends, calibration, metrics, the score cache and evaluation."""

from optprompt.scoring.backends import (
    Backend,
    CausalLMBackend,
    GenerationSettings,
    MaskedLMBackend,
    Seq2SeqBackend,
    naive_loglikelihoods,
)
from optprompt.scoring.cache import CachedBackend, ScoreCache, default_cache_path
from optprompt.scoring.embedding import ModelEmbedder
from optprompt.scoring.evaluate import Evaluation, Evaluator, ExamplePrediction
from optprompt.scoring.metrics import accuracy, macro_f1

CausalLMScorer = CausalLMBackend  # transitional name used by benchmarks/scoring.py

__all__ = [
    "Backend",
    "CachedBackend",
    "CausalLMBackend",
    "Evaluation",
    "Evaluator",
    "ExamplePrediction",
    "GenerationSettings",
    "MaskedLMBackend",
    "ModelEmbedder",
    "ScoreCache",
    "Seq2SeqBackend",
    "accuracy",
    "default_cache_path",
    "macro_f1",
    "naive_loglikelihoods",
]
