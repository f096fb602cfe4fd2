"""The ``optprompt`` command line."""
