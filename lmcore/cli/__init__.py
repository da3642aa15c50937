"""The ``lmcore`` command line, one module per command group."""
