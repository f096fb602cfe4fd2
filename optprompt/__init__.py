"""optprompt: plugin-based automated prompt optimizer.

Import the main objects from here; heavy libraries (torch, transformers) load only when a
model is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optprompt._version import __version__
from optprompt.errors import CandidateRejected, ConfigError, DataError, ModelError, OptpromptError, PluginError

__all__ = [
    "__version__",
    "BaseStrategy",
    "CandidateKind",
    "CandidateRejected",
    "ConfigError",
    "DataError",
    "ModelError",
    "OptpromptError",
    "PluginError",
    "PromptCandidate",
    "PromptCard",
    "SoftCandidate",
    "SoftPrompt",
    "StrategyConfig",
    "StudySpec",
    "TaskType",
    "evaluate",
    "export_card",
    "load",
    "load_adapter",
    "load_card",
    "load_prompt",
    "load_spec",
    "run_study",
]

_LAZY = {
    "BaseStrategy": "optprompt.strategies",
    "StrategyConfig": "optprompt.strategies",
    "CandidateKind": "optprompt.kinds",
    "TaskType": "optprompt.tasks",
    "load": "optprompt.kinds",
    "evaluate": "optprompt.evaluation",
    "PromptCandidate": "optprompt.prompts",
    "PromptCard": "optprompt.export",
    "export_card": "optprompt.export",
    "load_card": "optprompt.export",
    "load_adapter": "optprompt.kinds.soft",
    "SoftPrompt": "optprompt.kinds.soft",
    "SoftCandidate": "optprompt.adapters",
    "load_prompt": "optprompt.registry",
    "StudySpec": "optprompt.config",
    "load_spec": "optprompt.config",
    "run_study": "optprompt.study",
}

if TYPE_CHECKING:
    from optprompt.adapters import SoftCandidate
    from optprompt.config import StudySpec, load_spec
    from optprompt.evaluation import evaluate
    from optprompt.export import PromptCard, export_card, load_card
    from optprompt.kinds import CandidateKind, load
    from optprompt.kinds.soft import SoftPrompt, load_adapter
    from optprompt.prompts import PromptCandidate
    from optprompt.registry import load_prompt
    from optprompt.strategies import BaseStrategy, StrategyConfig
    from optprompt.study import run_study


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'optprompt' has no attribute {name!r}")
