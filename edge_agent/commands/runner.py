"""Carries out the commands the guard lets through and answers every command with a
``commands`` reading: refused (and why), failed, or done with the camera's state afterwards
(probed until it answers or ``recovery_timeout_s`` passes; an accepted view needs no probe: the
stream probe judges the camera again at once)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edge_agent.commands.guard import CommandGuard, Refusal, Verify
from edge_agent.commands.nonces import NonceBook
from edge_agent.commands.views import NoViewError, ViewKeeper
from edge_agent.config import AgentConfig, CameraConfig
from edge_agent.probes.camera import probe_camera
from edge_agent.switch.errors import SwitchError
from pantau.core.commands import (
    Action,
    Command,
    CommandReading,
    CommandResult,
    RefusalReason,
)
from pantau.core.mqtt_types import Message

if TYPE_CHECKING:
    from edge_agent.switch.snmp import SnmpSwitch  # pysnmp loads only where a switch is

from edge_agent.queue_rows import ItemSink as Sink
from edge_agent.queue_rows import StampClock as Clock

log = logging.getLogger(__name__)

INBOX_SIZE = 64  # commands waiting to be checked; beyond, a flood is dropped (and logged)
REBOOT_TIMEOUT_S = 10.0


class CommandRunner:
    """Checks and carries out commands; ``on_message`` takes them from the link."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock,
        switches: dict[str, SnmpSwitch],
        http: Any,
        queue: Sink,
        executor: ThreadPoolExecutor,
        notify: Callable[[], None],
        views: ViewKeeper | None = None,
    ) -> None:
        c = config.commands
        self._config = config
        self._cameras = {cam.id: cam for cam in config.cameras}
        self._nonces = NonceBook(config.queue.path.with_suffix(".nonces.sqlite"))
        self.guard = CommandGuard(
            site=config.site.id,
            verify=_verifier(c.public_key) if c else None,
            nonces=self._nonces,
            max_skew_ns=int((c.max_skew_s if c else 0) * 1e9),
        )
        self._clock = clock
        self._switches = switches
        self._http = http
        self._queue = queue
        self._executor = executor
        self._notify = notify
        self._views = views  # the stream probes' learned views (None: streams not probed)
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(INBOX_SIZE)
        self._busy: set[str] = set()
        self.answered = 0  # commands answered (tests wait on it)

    def on_message(self, message: Message) -> None:
        """A message on the command topic (from the publisher's dispatch)."""
        try:
            self._inbox.put_nowait(message.payload)
        except asyncio.QueueFull:
            log.warning("command inbox full: dropped a command from %s", message.topic)

    async def run(self) -> None:
        """Check commands as they come; each action runs in its own task."""
        try:
            async with asyncio.TaskGroup() as tasks:
                while True:
                    payload = await self._inbox.get()
                    decision = self.guard.check(payload, now_ns=self._clock.now_ns())
                    if isinstance(decision, Refusal):
                        await self._refuse(decision)
                    elif (why := self._cannot(decision)) is not None:
                        await self._refuse(why)
                    else:
                        self._busy.add(decision.device)
                        tasks.create_task(self._carry_out(decision), name=f"cmd-{decision.nonce}")
        finally:
            self._nonces.close()

    def _cannot(self, command: Command) -> Refusal | None:
        camera = self._cameras.get(command.device)
        if camera is None:
            return Refusal(RefusalReason.UNKNOWN_DEVICE, "no such camera here", command)
        if command.device in self._busy:
            return Refusal(RefusalReason.BUSY, "an action on it is running", command)
        if command.action is Action.POWER_CYCLE:
            sw = camera.switch
            if sw is None or not self._config.switches:
                return Refusal(RefusalReason.NOT_SUPPORTED, "camera has no switch port", command)
        elif command.action is Action.ACCEPT_VIEW:
            if self._views is None or not self._views.probes_stream(camera.id):
                return Refusal(RefusalReason.NOT_SUPPORTED, "camera's stream not probed", command)
        elif camera.onvif is None:
            return Refusal(RefusalReason.NOT_SUPPORTED, "camera has no onvif section", command)
        return None

    async def _refuse(self, refusal: Refusal) -> None:
        cmd = refusal.command
        log.warning("refused a command: %s (%s)", refusal.reason.value, refusal.detail)
        await self._answer(
            CommandReading(
                device=cmd.device if cmd else "unknown",
                ts=0,
                result=CommandResult.REFUSED,
                reason=refusal.reason,
                action=cmd.action if cmd else None,
                trigger=cmd.trigger if cmd else None,
                nonce=cmd.nonce if cmd else None,
                problem=cmd.problem if cmd else None,
                detail=refusal.detail,
            )
        )

    async def _carry_out(self, command: Command) -> None:
        camera = self._cameras[command.device]
        log.info("%s of camera %s (%s)", command.action.value, camera.id, command.trigger)
        started = time.monotonic()
        base = CommandReading(
            device=camera.id,
            ts=0,
            result=CommandResult.FAILED,
            action=command.action,
            trigger=command.trigger,
            nonce=command.nonce,
            problem=command.problem,
        )
        try:
            detail = await self._act(command.action, camera)
        except (SwitchError, OSError, NoViewError) as exc:
            reading = base.model_copy(update={"detail": str(exc).replace("\n", " ")[:200]})
        else:
            done: dict[str, object] = {"result": CommandResult.DONE, "detail": detail}
            if command.action is not Action.ACCEPT_VIEW:  # nothing went off: nothing to wait for
                recovery_s = await self._recovery(camera, started)
                done["up_after"] = recovery_s is not None
                done["recovery_s"] = None if recovery_s is None else round(recovery_s, 3)
            reading = base.model_copy(update=done)
        finally:
            self._busy.discard(camera.id)
        await self._answer(reading)

    async def _act(self, action: Action, camera: CameraConfig) -> str:
        c = self._config.commands
        assert c is not None  # the guard refuses every command without a key
        if action is Action.ACCEPT_VIEW:
            assert self._views is not None  # refused before without stream probes
            return await self._views.adopt_view(camera.id)
        if action is Action.POWER_CYCLE:
            assert camera.switch is not None
            switch = self._switches[camera.switch.switch]
            await switch.set_poe(camera.switch.port, enabled=False)
            try:
                await asyncio.sleep(c.power_off_s)
            finally:  # never leave a camera unpowered, even when stopped half-way
                await switch.set_poe(camera.switch.port, enabled=True)
            return (
                f"PoE off {c.power_off_s:g} s on {camera.switch.switch} port {camera.switch.port}"
            )
        # onvif-zeep-async loads only when a reboot is asked for.
        from edge_agent.devices.onvif_check import OnvifTarget  # noqa: PLC0415
        from edge_agent.devices.onvif_reboot import RebootError, reboot_onvif  # noqa: PLC0415

        onvif = camera.onvif
        assert onvif is not None
        url = camera.rtsp_url or camera.snapshot_url or ""
        target = OnvifTarget(
            camera=camera.id,
            host=onvif.host or camera.host or urlsplit(url).hostname or "",
            port=onvif.port,
            username=onvif.username or camera.username,
            password=onvif.password or camera.password,
        )
        try:
            return await reboot_onvif(target, timeout_s=REBOOT_TIMEOUT_S)
        except RebootError as exc:
            raise OSError(str(exc)) from exc

    async def _recovery(self, camera: CameraConfig, started: float) -> float | None:
        """Seconds from the action's start until the camera answered; None if it did not."""
        c = self._config.commands
        assert c is not None
        deadline = started + c.recovery_timeout_s
        timeout_s = self._config.probe.timeout_s
        while time.monotonic() < deadline:
            probe = await probe_camera(camera, self._http, timeout_s=timeout_s)
            if probe.reading.up:
                return time.monotonic() - started
            await asyncio.sleep(min(c.recovery_probe_s, max(0.0, deadline - time.monotonic())))
        return None

    async def _answer(self, reading: CommandReading) -> None:
        # Stamped and submitted in one synchronous step (edge_agent/clock.py, thread rule).
        ts = self._clock.stamp(("command", reading.device), self._clock.boot_ns())
        body = reading.model_copy(update={"ts": ts}).model_dump_json(exclude_none=True).encode()
        append = functools.partial(
            self._queue.append, [("commands", ts, body)], now_ns=self._clock.now_ns()
        )
        await asyncio.get_running_loop().run_in_executor(self._executor, append)
        self.answered += 1
        self._notify()


def _verifier(public_key: str) -> Verify:
    # cryptography loads only at sites that take commands.
    from pantau.core.signing import load_public, verified  # noqa: PLC0415

    return functools.partial(verified, key=load_public(public_key))
