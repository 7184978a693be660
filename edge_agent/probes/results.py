"""What a probe stage found."""

from __future__ import annotations

from dataclasses import dataclass

from pantau.core.contract import Cause, ProbeStage


class StageFailedError(Exception):
    """A probe stage failed; ``cause`` says why, ``stage`` where."""

    def __init__(
        self,
        cause: Cause,
        detail: str,
        status: int | None = None,
        *,
        stage: ProbeStage = ProbeStage.RTSP,
    ) -> None:
        super().__init__(detail)
        self.cause = cause
        self.status = status
        self.stage = stage


@dataclass(frozen=True, slots=True)
class StageResult:
    """A successful stage: how long it took and what it saw."""

    ms: float
    status: int | None = None
    size: int | None = None


def connect_error_cause(exc: BaseException) -> Cause:
    """Map a connect exception to a cause."""
    if isinstance(exc, TimeoutError):
        return Cause.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return Cause.REFUSED
    return Cause.UNREACHABLE


def rounded(value: float | None) -> float | None:
    """A measured value to 3 decimals: smaller payloads, no false precision."""
    return None if value is None else round(value, 3)
