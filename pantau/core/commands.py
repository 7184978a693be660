"""Commands from the command center to a site's agent, and what became of them.

A command travels on the site's ``.../sites/{site}/command/run`` topic as a ``SignedCommand``:
the ``Command``'s JSON text exactly as the cloud signed it (Ed25519, ``pantau.core.signing``)
and the signature. The agent checks the signature before it reads the command, then that it
names this site, is within its validity and carries a nonce not seen before. Whatever it
decides, it answers with a ``CommandReading`` in its next batch (list ``commands``, contract
minor 1): done, failed or refused, and why; the collector stores it as a ``remediation`` point.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, model_validator

from pantau.core.wiretypes import Finite, Ident, Strict, TimestampNs

MAX_COMMAND_LIFETIME_S = 3600
"""The longest validity a command may carry: the agent remembers nonces until expiry, so this
bounds what it must remember (and how long a captured command stays useful to anyone)."""
NONCE_PATTERN = r"^[0-9a-f]{32}$"
_LINE = r"^[^\r\n]*$"


class Action(enum.StrEnum):
    """What a command asks the agent to do to one camera."""

    POWER_CYCLE = "power_cycle"  # PoE off, wait, on (SNMP SET pethPsePortAdminEnable)
    REBOOT = "reboot"  # ONVIF SystemReboot
    ACCEPT_VIEW = "accept_view"  # the current view becomes the learned view (a person said so)


class CommandResult(enum.StrEnum):
    """What became of a command."""

    DONE = "done"  # carried out (``up_after`` says whether the camera came back)
    FAILED = "failed"  # accepted, but the device did not do it
    REFUSED = "refused"  # not carried out: ``reason`` says why


class RefusalReason(enum.StrEnum):
    """Why an agent refused a command."""

    MALFORMED = "malformed"  # not a signed command at all
    UNSIGNED = "unsigned"  # no signature
    BAD_SIGNATURE = "bad_signature"  # signature does not verify with the configured key
    NO_KEY = "no_key"  # the agent has no command key configured: it takes no commands
    OTHER_SITE = "other_site"  # signed, but for another site
    EXPIRED = "expired"  # past its expiry, or issued too far in the future
    REPLAYED = "replayed"  # its nonce was seen before
    UNKNOWN_DEVICE = "unknown_device"  # no such camera at this site
    NOT_SUPPORTED = "not_supported"  # the camera lacks what the action needs (port, ONVIF, stream)
    BUSY = "busy"  # an action on this camera is still running


class Command(Strict):
    """One action on one device of one site, valid from ``issued_ns`` to ``expires_ns``."""

    v: Literal[1] = 1
    site: Ident
    device: Ident = Field(description="the camera acted on")
    action: Action
    nonce: str = Field(pattern=NONCE_PATTERN, description="random, 128 bits: never reused")
    issued_ns: TimestampNs
    expires_ns: TimestampNs
    trigger: str = Field(
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="who or what asked: 'policy' or 'user:<name>'",
    )
    problem: int | None = Field(default=None, ge=0, description="the problem it answers")

    @model_validator(mode="after")
    def _bounded_validity(self) -> Command:
        span_s = (self.expires_ns - self.issued_ns) / 1e9
        if not 0 < span_s <= MAX_COMMAND_LIFETIME_S:
            raise ValueError(f"validity must be within (0, {MAX_COMMAND_LIFETIME_S}] s")
        return self


class SignedCommand(Strict):
    """The envelope on the command topic: ``command`` is the signed text, byte for byte."""

    v: Literal[1] = 1
    command: str = Field(max_length=4000, description="a Command's JSON, as signed")
    sig: str = Field(default="", max_length=200, description="Ed25519 signature, base64")


class CommandReading(Strict):
    """An agent's answer to one command: carried out (and the camera's state after), failed,
    or refused with a reason. ``device`` is ``unknown`` when the command could not be read."""

    device: Ident
    ts: TimestampNs
    result: CommandResult
    action: Action | None = None
    reason: RefusalReason | None = None
    trigger: str | None = Field(default=None, max_length=80, pattern=r"^[A-Za-z0-9_.:@-]+$")
    nonce: str | None = Field(default=None, pattern=NONCE_PATTERN)
    problem: int | None = Field(default=None, ge=0)
    detail: str = Field(default="", max_length=200, pattern=_LINE)
    up_after: bool | None = Field(
        default=None, description="the camera answered (RTSP/snapshot) after the action"
    )
    recovery_s: Finite | None = Field(
        default=None, ge=0, le=86_400, description="from the action's start to the first answer"
    )
