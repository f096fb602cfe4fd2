"""Discrete template search: the ``template_search`` strategy plugin."""

from optprompt_plugins.template_search.strategy import TemplateSearch, TemplateSearchConfig

from optprompt.plugins import hookimpl

__all__ = ["TemplateSearch", "TemplateSearchConfig"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(TemplateSearch)
