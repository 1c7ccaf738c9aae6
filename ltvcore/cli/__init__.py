"""The ``ltv`` command line: :func:`main` (see :mod:`ltvcore.cli.main`)."""

from ltvcore.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
