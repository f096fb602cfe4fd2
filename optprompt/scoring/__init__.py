"""Scoring: log-likelihood ranking with a causal LM, metrics, evaluation of candidates."""

from optprompt.scoring.causal import CausalLMScorer, naive_loglikelihoods
from optprompt.scoring.evaluate import Evaluation, Evaluator, ExamplePrediction
from optprompt.scoring.metrics import accuracy, macro_f1

__all__ = [
    "CausalLMScorer",
    "Evaluation",
    "Evaluator",
    "ExamplePrediction",
    "accuracy",
    "macro_f1",
    "naive_loglikelihoods",
]
