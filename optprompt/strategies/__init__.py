"""Strategies: the base class every strategy plugin subclasses."""

from optprompt.strategies.base import BaseStrategy, Budget, Family, Fidelity, StrategyConfig, StrategyContext
from optprompt.strategies.services import StrategyServices, TextGenerator

__all__ = [
    "BaseStrategy",
    "Budget",
    "Family",
    "Fidelity",
    "StrategyConfig",
    "StrategyContext",
    "StrategyServices",
    "TextGenerator",
]
