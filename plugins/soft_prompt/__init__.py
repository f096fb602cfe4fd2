"""Soft-prompt gradient tuning: the ``soft_prompt`` strategy plugin.

Prompt tuning, prefix tuning and P-tuning through PEFT (LoRA as the strong reference),
trained on the train split while the model's weights stay frozen; Optuna searches the
method and its training hyperparameters, one training run per trial.
"""

from optprompt_plugins.soft_prompt.config import SoftPromptConfig
from optprompt_plugins.soft_prompt.strategy import SoftPrompt

from optprompt.plugins import hookimpl

__all__ = ["SoftPrompt", "SoftPromptConfig"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(SoftPrompt)
