"""Edge time: readings stamped at the true time even when the box's clock is wrong.

A cabinet box without a battery-backed clock starts with a wrong time after every power cut, and
NTP may step it minutes later. So the agent does not stamp from the system clock. Its *boot
frame* is the system clock read once at start plus the monotonic clock since (NTP steps do not
move it), and the collector's receipts measure the boot frame's offset (``RoundTrips``:
fastest recent round trip, error at most half of it). A stamp is boot time plus that offset.

Until the first offset of this process is known, readings are *held* (``HoldingQueue``): they
go to the disk queue at once (a power cut keeps them), marked with this start's boot id and in
its boot frame, and the publisher never takes them, so an uncorrected timestamp is never sent:
a point's identity in InfluxDB is its timestamp, and a resend with another one would be a
duplicate. The first good offset releases them: timestamps shifted once and the mark cleared in
one transaction, before any can be sent. Empty messages (``ClockProbe``) ask for that first
receipt; a round trip of at most ``FIRST_RTT_MAX_S`` settles it. After ``publish.clock_hold_s``
(or ``HOLD_MAX_READINGS``) without one, the best sample so far settles it, or none: the held
readings keep the box's own time (the documented fallback). Rows still held by an earlier start
(it died before its offset was measured) are released at the next start at that box time too
(``release_earlier``, logged with their count): a boot frame's offset is measured in that boot
only, since the clock may have been set between the two. Without receipts
(``publish.receipts: false``) nothing is held and stamps follow the system clock, as NTP sets it.

Later offsets (drift, a better round trip) apply to new readings only: a later offset steps
forward at once; backward, stamps advance at ``1 - SLEW`` of real time until caught up, so they
never run back; ``DeviceClock`` keeps each device's stamps strictly increasing regardless.

Thread rule (no lock needed): stamps are taken on the event loop, and a producer stamps and
submits its items to the queue's single worker thread in one synchronous step; the release is
submitted to that thread in the step that settles the clock. The worker runs jobs in order, so
every item meets the holding queue in the frame it was stamped in.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edge_agent.queue_rows import TIMESTAMP_FIELDS, HoldingStore, Item, QueuedReading, shift_item
from edge_agent.roundtrips import RoundTrips

__all__ = [
    "TIMESTAMP_FIELDS",
    "DeviceClock",
    "EdgeClock",
    "HoldingQueue",
    "keep_time",
    "shift_item",
]

log = logging.getLogger(__name__)

MS = 1_000_000
# A first offset measured by a round trip this fast is accepted (error at most half of it);
# slower ones wait for a better one, up to ``publish.clock_hold_s``.
FIRST_RTT_MAX_S = 2.0
# The readings of a start wait at most this many for the first receipt (and at most
# ``publish.clock_hold_s``): the queue's bounds are not enforced on them until released.
HOLD_MAX_READINGS = 20_000
PROBE_EVERY_S = 2.0  # while holding: an empty message asks for a receipt this often
POLL_S = 0.1  # while holding: how often the latest round trip is looked at
FOLLOW_S = 5.0  # afterwards: how often a re-measured offset is applied
SLEW = 0.5  # a backward correction slows stamps to half speed until it is absorbed


class DeviceClock:
    """Edge timestamps in whole milliseconds that strictly increase per device.

    InfluxDB keys points on (measurement, tags, time): two readings of one device with the same
    stamp would overwrite each other, so a tie is broken by moving one millisecond on. Whole
    milliseconds compress: InfluxDB stored ~112 B per camera point with jittered nanoseconds and
    ~73 B with rounded ones.
    """

    STEP_NS = MS

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], int] = {}

    def stamp(self, device: tuple[str, ...], ts_ns: int) -> int:
        """``ts_ns`` rounded down to the millisecond, or one millisecond after the device's
        previous stamp if that is not earlier."""
        ts_ns -= ts_ns % self.STEP_NS
        last = self._last.get(device)
        if last is not None and ts_ns <= last:
            ts_ns = last + self.STEP_NS
        self._last[device] = ts_ns
        return ts_ns

    def shift(self, delta_ns: int) -> None:
        """Move every device's last stamp by ``delta_ns`` (a whole number of milliseconds)."""
        self._last = {device: ts + delta_ns for device, ts in self._last.items()}


class EdgeClock:
    """The agent's time: boot frame plus the offset measured from receipts (see module doc).

    ``wall_ns`` and ``mono_ns`` are the system and monotonic clocks (fakes in unit tests).
    With ``follow_system`` (receipts off) the system clock is used as it is.
    """

    def __init__(
        self,
        *,
        follow_system: bool = False,
        wall_ns: Callable[[], int] = time.time_ns,
        mono_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._wall, self._mono, self._follow = wall_ns, mono_ns, follow_system
        self._origin = wall_ns() - mono_ns()
        self.boot_id = secrets.randbits(62) + 1  # this start's frame: marks its held readings
        self._devices = DeviceClock()
        self._first: int | None = None  # the offset that settled the clock (whole ms)
        self._target = 0  # the latest measured offset (whole ms)
        self._applied = 0  # the offset stamps use now (moves toward the target)
        self._applied_at = 0  # boot time of the last move
        self._measured: int | None = None  # latest measured offset, ns (for the error report)

    @property
    def settled(self) -> bool:
        """Whether stamps carry a correction yet (never with ``follow_system``)."""
        return self._first is not None

    def boot_ns(self) -> int:
        """Now in the boot frame (the system clock without ``follow_system``: as it is)."""
        return self._wall() if self._follow else self._origin + self._mono()

    def now_ns(self) -> int:
        """Now in the frame stamps use: corrected once settled, the boot frame before."""
        boot = self.boot_ns()
        return boot + self._offset_at(boot)

    def stamp(self, device: tuple[str, ...], boot_ns: int) -> int:
        """A stamp for ``device`` for a reading taken at ``boot_ns`` (from ``boot_ns()``):
        corrected by the offset in force now, strictly increasing per device."""
        return self._devices.stamp(device, boot_ns + self._offset_at(self.boot_ns()))

    def settle(self, offset_ns: int | None) -> int:
        """Apply the first offset (``None``: keep the boot frame); return the shift in whole ms
        for what was stamped before. Callers release the held readings in the same step."""
        if self._first is not None:
            raise RuntimeError("the clock is settled once per start")
        shift = 0 if offset_ns is None else round(offset_ns / MS) * MS
        self._first = self._target = self._applied = shift
        self._applied_at = self.boot_ns()
        self._measured = offset_ns
        self._devices.shift(shift)
        return shift

    def observe(self, offset_ns: int) -> None:
        """A re-measured offset: new stamps move to it (forward at once, backward slewed)."""
        if self._first is None:
            raise RuntimeError("settle() comes first")
        self._measured = offset_ns
        self._offset_at(self.boot_ns())  # absorb the slew so far at the old target
        self._target = round(offset_ns / MS) * MS

    def _offset_at(self, boot: int) -> int:
        if self._first is None:
            return 0
        if self._target >= self._applied:
            self._applied = self._target
        else:
            slewed = self._applied - int(SLEW * max(0, boot - self._applied_at))
            self._applied = max(self._target, slewed)
        self._applied_at = boot
        return self._applied

    def error_ms(self) -> float | None:
        """How far the true time (the collector's) is ahead of the system clock, in ms
        (the agent's ``clock_offset_ms``); ``None`` until measured."""
        if self._measured is None:
            return None
        return (self._measured + self.boot_ns() - self._wall()) / MS

    def correction_ms(self) -> float | None:
        """What stamps add to the system clock now, in ms; ``None`` while they carry the
        system clock's time (not settled, settled without a measurement, or following it)."""
        if self._first is None or self._measured is None:
            return None
        return (self.now_ns() - self._wall()) / MS


class HoldingQueue:
    """The disk queue's front door: marks items held (with the boot id) until the clock is
    settled, then releases them shifted, once. Runs on the queue's worker thread, like the
    queue."""

    def __init__(self, queue: HoldingStore, *, boot: int, holding: bool) -> None:
        self._queue = queue
        self.boot = boot
        self.held = 0  # readings of this start waiting for the clock
        self.holding = holding

    def append(self, items: list[Item], *, now_ns: int) -> int:
        """Queue ``items``, held while holding; return readings the queue dropped."""
        if self.holding:
            self.held += len(items)
            return self._queue.append(items, now_ns=now_ns, hold=self.boot)
        return self._queue.append(items, now_ns=now_ns)

    def release(self, shift_ns: int, *, now_ns: int) -> int:
        """Release this start's held items shifted by ``shift_ns`` (one transaction); stop
        holding. Return readings the queue's bounds dropped."""
        held, self.held, self.holding = self.held, 0, False
        if held:
            log.info(
                "clock settled: %d held readings released, shifted by %.3f s",
                held,
                shift_ns / 1e9,
            )
        return self._queue.release(self.boot, shift_ns, now_ns=now_ns)

    def release_earlier(self, *, now_ns: int) -> int:
        """Release rows held by earlier starts at their box's own time (their offset was never
        measured); return how many."""
        earlier = {b: n for b, n in self._queue.held_boots().items() if b != self.boot}
        for boot in earlier:
            self._queue.release(boot, 0, now_ns=now_ns)
        if earlier:
            log.warning(
                "%d readings held by %d earlier start(s) whose clock was never measured are "
                "released at the box's own time",
                sum(earlier.values()),
                len(earlier),
            )
        return sum(earlier.values())

    def take(self, *, after_id: int, upto_id: int | None, limit: int) -> list[QueuedReading]:
        """The queue's ``take`` (never held rows)."""
        return self._queue.take(after_id=after_id, upto_id=upto_id, limit=limit)

    def delete(self, ids: list[int]) -> None:
        """The queue's ``delete``."""
        self._queue.delete(ids)

    def max_id(self) -> int:
        """The queue's ``max_id``."""
        return self._queue.max_id()

    def __len__(self) -> int:
        return len(self._queue)


async def keep_time(
    clock: EdgeClock,
    gate: HoldingQueue,
    round_trips: RoundTrips,
    probe: Callable[[], bool],
    executor: ThreadPoolExecutor,
    *,
    on_settled: Callable[[int], None],
    hold_max_s: float,
) -> None:
    """Settle the clock from the first good receipt (releasing the held readings), then follow
    the re-measured offset; runs until cancelled. ``on_settled(shift)`` runs in the settling
    step, for state stamped before (e.g. when a camera's state began). ``hold_max_s``: the
    longest wait for a good receipt."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    last_probe = started - PROBE_EVERY_S  # the first probe goes at once
    while True:
        sample = round_trips.best
        waited = time.monotonic() - started
        if sample is not None and sample[1] <= FIRST_RTT_MAX_S * 1e9:
            break
        if waited >= hold_max_s or gate.held >= HOLD_MAX_READINGS:
            log.warning(
                "no receipt measured the clock after %.0f s (%d readings held): %s",
                waited,
                gate.held,
                "using the best round trip so far"
                if sample
                else "readings held so far keep the box's own time",
            )
            break
        if time.monotonic() - last_probe >= PROBE_EVERY_S and probe():
            last_probe = time.monotonic()
        await asyncio.sleep(POLL_S)
    # One synchronous step: settle, fix dependent state, submit the release (see module doc).
    shift = clock.settle(None if sample is None else sample[0])
    on_settled(shift)
    release = functools.partial(gate.release, shift, now_ns=clock.now_ns())
    dropped = await loop.run_in_executor(executor, release)
    if dropped:
        log.warning("queue full: dropped the %d oldest readings (reported as a gap)", dropped)
    if sample is not None:
        log.info("clock settled: true time is the box's boot clock %+.3f s", shift / 1e9)
    while True:
        await asyncio.sleep(FOLLOW_S)
        sample = round_trips.best
        if sample is not None:
            clock.observe(sample[0])
