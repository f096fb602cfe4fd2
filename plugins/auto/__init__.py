"""One study over template search, evolution and soft prompts / LoRA: the ``auto`` strategy plugin."""

from optprompt_plugins.auto.config import AutoConfig
from optprompt_plugins.auto.strategy import Auto

from optprompt.plugins import hookimpl

__all__ = ["Auto", "AutoConfig"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(Auto)
