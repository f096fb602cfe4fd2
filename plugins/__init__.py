"""optprompt's built-in strategy plugins (installed as the package ``optprompt_plugins``).

Each sub-package is registered through the ``optprompt`` entry-point group in
pyproject.toml, exactly as a third-party plugin would be.
"""
