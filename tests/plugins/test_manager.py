from __future__ import annotations

import pytest

from optprompt.errors import PluginError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.strategies import BaseStrategy


def test_builtin_strategy_comes_through_the_entry_point_group(plugins) -> None:
    entry = plugins.strategies.get("template_search")
    assert entry.source.startswith("entry point optprompt:template_search in optprompt ")
    assert {"accuracy", "macro_f1"} <= set(plugins.metrics.names())
    assert "smollm2-135m-instruct" in plugins.models
    assert {"jsonl", "csv", "parquet", "bigbench", "hub"} <= set(plugins.task_loaders.names())


def test_each_manager_is_fresh() -> None:
    a, b = get_plugin_manager(), get_plugin_manager()
    assert a is not b
    assert load_plugins(a).strategies is not load_plugins(b).strategies


def test_duplicate_strategy_name_raises_naming_both_plugins() -> None:
    class Dup(BaseStrategy):
        name = "template_search"

        def propose(self, trial):  # type: ignore[no-untyped-def]
            raise AssertionError

    class DupPlugin:
        @hookimpl
        def register_strategies(self, register):  # type: ignore[no-untyped-def]
            register(Dup)

    with pytest.raises(PluginError, match=r"strategy 'template_search' is registered twice"):
        load_plugins(get_plugin_manager(extra_plugins=[DupPlugin()]))


def test_registering_a_non_strategy_is_an_error() -> None:
    class Bad:
        @hookimpl
        def register_strategies(self, register):  # type: ignore[no-untyped-def]
            register(object)

    with pytest.raises(PluginError, match="not a BaseStrategy subclass"):
        load_plugins(get_plugin_manager(extra_plugins=[Bad()]))


def test_unknown_hook_in_plugin_is_rejected() -> None:
    class Typo:
        @hookimpl
        def register_strategy(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginError, match="register_strategy"):
        get_plugin_manager(extra_plugins=[Typo()])
