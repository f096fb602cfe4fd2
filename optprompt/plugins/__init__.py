"""The plugin system: hook specifications, discovery and registries."""

from optprompt.plugins.hookspecs import hookimpl, hookspec
from optprompt.plugins.manager import (
    ENTRY_POINT_GROUP,
    Entry,
    Plugins,
    Registry,
    get_plugin_manager,
    load_plugins,
    load_task_types,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Entry",
    "Plugins",
    "Registry",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "load_plugins",
    "load_task_types",
]
