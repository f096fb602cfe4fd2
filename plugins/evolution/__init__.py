"""Evolutionary prompt search: the ``evolution`` strategy plugin.

EvoPrompt's GA and DE with an LLM rewriter, GrIPS's model-free phrase edits, lineage
stored as trial attributes (see :data:`ATTR`).
"""

from optprompt_plugins.evolution.config import EvolutionConfig, OperatorTemplates
from optprompt_plugins.evolution.population import ATTR
from optprompt_plugins.evolution.strategy import Evolution

from optprompt.plugins import hookimpl

__all__ = ["ATTR", "Evolution", "EvolutionConfig", "OperatorTemplates"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(Evolution)
