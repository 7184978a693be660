"""``python -m pantau`` runs the CLI."""

from pantau.cli import app

app()
