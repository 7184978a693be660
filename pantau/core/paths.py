"""Where services keep their files when not told: one place, overridable.

``PANTAU_DATA_DIR`` if set; else ``/var/lib/pantau`` for root (a service); else the user's
``$XDG_STATE_HOME/pantau`` (``~/.local/state/pantau``). Never the working directory, so a service
started from another directory does not quietly start over with empty files.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_DATA_DIR = Path("/var/lib/pantau")


def data_dir() -> Path:
    """The directory for pantau's own files (read at call time, not at import)."""
    configured = os.environ.get("PANTAU_DATA_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return SYSTEM_DATA_DIR
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "pantau"


def state_db_url() -> str:
    """The default state database (maintenance windows, problems): a SQLite file."""
    return f"sqlite:///{data_dir() / 'state.sqlite'}"


def dead_letter_path() -> Path:
    """The collector's default dead-letter store."""
    return data_dir() / "collector" / "dead-letter.sqlite"
