"""optprompt's conformance suite, run on this plugin's strategy.

Needs the plugin installed (``pip install -e .``): the strategy is found through its
entry point, exactly as ``optprompt run`` finds it.
"""

from __future__ import annotations

from optprompt.testing import StrategyConformanceTests


class TestKeywordInstructions(StrategyConformanceTests):
    strategy_name = "keyword_instructions"
    # Small enough for seconds per study on the suite's tiny model; `rewrite` also
    # exercises the model-backed rephrasing path.
    strategy_options = {"trials": 5, "rewrite": True, "max_new_tokens": 8}
