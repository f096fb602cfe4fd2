"""Strategies: the base class every strategy plugin subclasses."""

from optprompt.strategies.base import BaseStrategy, Budget, StrategyConfig, StrategyContext

__all__ = ["BaseStrategy", "Budget", "StrategyConfig", "StrategyContext"]
