"""The ``facesearch`` command (``facesearch.cli:main``): one module per group of commands."""

from facesearch.cli.main import CREATES_HOME, build_parser, main

__all__ = ["CREATES_HOME", "build_parser", "main"]
