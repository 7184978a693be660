"""Helpers shared by the CLI's command modules."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console


def secret(value: str | None, path: Path | None, option: str) -> str | None:
    """A secret from ``path`` if given, else ``value``; warn when it was typed on the command
    line, where every local user can read it (``ps``, shell history)."""
    if path is not None:
        try:
            return path.read_text().strip() or None
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}") from None
    if any(arg == option or arg.startswith(option + "=") for arg in sys.argv[1:]):
        Console(stderr=True).print(
            f"[yellow]warning:[/yellow] {option} on the command line is visible to every local "
            "user; use its environment variable or a file instead",
            highlight=False,
        )
    return value


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; return the exit (code 2) to raise."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)
