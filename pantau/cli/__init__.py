"""The ``pantau`` command line: the top of the import graph (nothing imports it)."""

from pantau.cli.main import app

__all__ = ["app"]
