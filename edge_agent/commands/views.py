"""What accepting a camera's new view needs of the stream probes (``StreamScheduler``)."""

from __future__ import annotations

from typing import Protocol


class NoViewError(Exception):
    """The camera has no view to adopt yet (no stream probe saw one since the agent started)."""


class ViewKeeper(Protocol):
    """Holds each camera's learned view."""

    def probes_stream(self, camera: str) -> bool:
        """True if ``camera``'s stream is probed here (it has a view to accept)."""
        ...

    async def adopt_view(self, camera: str) -> str:
        """Make ``camera``'s current view its learned view at once; what was done. Raises
        ``NoViewError`` when there is none yet."""
        ...
