"""The agent's connection sequence number (Sparkplug B's ``bdSeq``), kept on disk.

Every connect attempt takes the next number and registers a Last Will carrying it; the birth
published on that connection carries the same number. The cloud can then tell a will of an
older connection, delivered late (a broker restart), from the will of the connection now up.

The number must never repeat, across restarts and reboots, whatever the wall clock says: the
next one is the stored one plus one, or the wall clock in milliseconds if that is larger. The
clock only helps where the file cannot: a lost or rolled-back file on a box whose clock is
right still continues above every number used before. A wrong clock never lowers the count.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SEQ = 2**63 - 2  # the contract's bound (an InfluxDB integer field)


class ConnectionSeq:
    """Hands out strictly increasing connection numbers and keeps the latest in ``path``.

    Thread-safe: the MQTT network thread takes a number before each connect attempt.
    """

    def __init__(self, path: Path, *, clock_ms: Callable[[], int] | None = None) -> None:
        self._path = path
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last = self._load()
        self.current: int | None = None  # the number of the latest attempt, None before any

    def _load(self) -> int:
        try:
            text = self._path.read_text().strip()
        except FileNotFoundError:
            return -1
        except OSError as exc:
            log.warning(
                "cannot read connection sequence %s (%s); counting from the clock", self._path, exc
            )
            return -1
        try:
            value = int(text)
        except ValueError:
            log.warning(
                "connection sequence %s is unreadable (%r); counting from the clock",
                self._path,
                text[:40],
            )
            return -1
        return value if 0 <= value <= MAX_SEQ else -1

    def next(self) -> int:
        """Take the number for a new connect attempt, stored before it is returned.

        A store that fails (a full or read-only disk) is logged and the number used anyway:
        the agent must keep connecting, and the clock still moves the next count on.
        """
        with self._lock:
            seq = min(MAX_SEQ, max(self._last + 1, self._clock_ms()))
            self._store(seq)
            self._last = self.current = seq
            return seq

    def _store(self, seq: int) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            with tmp.open("w") as out:
                out.write(f"{seq}\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("could not keep connection sequence %d in %s: %s", seq, self._path, exc)
