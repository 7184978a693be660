"""Whether a command on the site's command topic may be carried out: signed by the command
center's key, for this site, within its validity, and never seen before. The signature is
checked before anything in the command is read, so an unsigned text cannot even make the agent
look up a camera."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from edge_agent.commands.nonces import NonceBook
from pantau.core.commands import Command, RefusalReason, SignedCommand

Verify = Callable[[SignedCommand], bool]
"""True if the envelope's signature holds (``pantau.core.signing.verified`` with the key)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A command not carried out; ``command`` is set once the signature held."""

    reason: RefusalReason
    detail: str
    command: Command | None = None


@dataclass(frozen=True, slots=True)
class CommandGuard:
    """The checks, with the agent's site, signature check (``None``: no key, no commands
    taken) and nonce book."""

    site: str
    verify: Verify | None
    nonces: NonceBook
    max_skew_ns: int

    def check(self, payload: bytes, *, now_ns: int) -> Command | Refusal:
        """The command to carry out, or why not (``now_ns``: the agent's corrected clock)."""
        try:
            envelope = SignedCommand.model_validate_json(payload)
        except ValidationError as exc:
            return Refusal(RefusalReason.MALFORMED, _first_error(exc))
        if not envelope.sig:
            return Refusal(RefusalReason.UNSIGNED, "no signature")
        if self.verify is None:
            return Refusal(RefusalReason.NO_KEY, "no commands.public_key in site.yaml")
        if not self.verify(envelope):
            return Refusal(RefusalReason.BAD_SIGNATURE, "signature does not match the key")
        try:
            command = Command.model_validate_json(envelope.command)
        except ValidationError as exc:
            return Refusal(RefusalReason.MALFORMED, _first_error(exc))
        if command.site != self.site:
            return Refusal(RefusalReason.OTHER_SITE, f"for site {command.site}", command)
        if now_ns > command.expires_ns:
            late_s = (now_ns - command.expires_ns) / 1e9
            return Refusal(RefusalReason.EXPIRED, f"expired {late_s:.0f} s ago", command)
        if command.issued_ns > now_ns + self.max_skew_ns:
            ahead_s = (command.issued_ns - now_ns) / 1e9
            return Refusal(RefusalReason.EXPIRED, f"issued {ahead_s:.0f} s ahead", command)
        if not self.nonces.take(command.nonce, expires_ns=command.expires_ns, now_ns=now_ns):
            return Refusal(RefusalReason.REPLAYED, "nonce seen before", command)
        return command


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}"[:200].replace("\n", " ")
