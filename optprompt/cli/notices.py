"""optprompt's own warnings, as the command line shows them: one-line messages.

A library user gets :class:`~optprompt.errors.OptpromptWarning` (and its subclasses, such
as :class:`~optprompt.errors.ExperimentalWarning`) as Python warnings to filter by
category. Someone running ``optprompt`` reads them as the CLI's other notices,
``optprompt: WARNING: ...``, without the file name, line number and source line of the
code that warned. Other libraries' warnings are shown as Python shows them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from optprompt.errors import OptpromptWarning

__all__ = ["warnings_as_messages"]

logger = logging.getLogger("optprompt")


@contextmanager
def warnings_as_messages() -> Iterator[None]:
    """While inside, an :class:`OptpromptWarning` that Python's filters let through is
    logged as a warning message (the CLI's ``optprompt: WARNING: ...`` line)."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, OptpromptWarning):
            logger.warning("%s", message)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
