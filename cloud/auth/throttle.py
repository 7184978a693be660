"""Login throttling: too many attempts lock the account name and throttle the address.

Every attempt is counted *before* its password is checked (in the state database, so every API
instance shares the count and concurrent guesses cannot all slip under the limit); a success
clears the account's count and takes its attempt back from the address. A locked name or a
throttled address is refused without hashing anything, so a flood of guesses costs the server
almost nothing and other people's logins are not slowed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.auth.tables import throttle_table

NS = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class ThrottlePolicy:
    """Limits per window. Trade-off: a lower account limit stops guessing sooner but lets an
    attacker lock a person out more easily (the lock lapses by itself; an admin can lift it)."""

    account_attempts: int = 10  # failed logins of one account name per window
    address_attempts: int = 50  # failed logins from one address per window (an office's NAT)
    window_s: float = 900.0
    lock_s: float = 900.0
    # Password checks running at once (per API instance): argon2 is meant to be expensive, so
    # parallel guesses would take the CPU from everyone else's login before the count stops them.
    account_checks: int = 1
    address_checks: int = 2


def account_key(username: str) -> str:
    """The throttle key of an account name (existing or not: both are throttled alike)."""
    return f"user:{username.lower()}"


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return f"addr:{address}"


class InFlight:
    """Password checks running now, per key, in this process (one instance's share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()

    @contextlib.contextmanager
    def slots(self, limits: dict[str, int]) -> Iterator[bool]:
        """Yield True with a slot under every key's limit taken, or False if one is full."""
        with self._lock:
            free = all(self._running[key] < limit for key, limit in limits.items())
            if free:
                self._running.update(limits.keys())
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._running.subtract(limits.keys())
                    self._running = +self._running


class LoginThrottle:
    """Counts login attempts per account name and per address."""

    def __init__(self, engine: sa.Engine, policy: ThrottlePolicy | None = None) -> None:
        self._engine = engine
        self.policy = policy or ThrottlePolicy()
        self._in_flight = InFlight()

    def checking(self, *, username: str, address: str) -> contextlib.AbstractContextManager[bool]:
        """A slot to check a password in: False when this account or address already has its
        share of checks running (the caller refuses at once, as if throttled)."""
        return self._in_flight.slots(
            {
                account_key(username): self.policy.account_checks,
                address_key(address): self.policy.address_checks,
            }
        )

    def attempt(self, *, username: str, address: str, now_ns: int | None = None) -> float:
        """Count one login attempt; the seconds to wait before trying again (0: go ahead)."""
        now = time.time_ns() if now_ns is None else now_ns
        limits = (
            (account_key(username), self.policy.account_attempts),
            (address_key(address), self.policy.address_attempts),
        )
        return max(self._count(key, limit, now) for key, limit in limits)

    def succeeded(self, *, username: str, address: str) -> None:
        """A correct password: clear the account's count, give the address its attempt back."""
        table = throttle_table
        with self._engine.begin() as db:
            db.execute(
                table.delete().where(
                    table.c.key == account_key(username), table.c.locked_until_ns == 0
                )
            )
            db.execute(
                table.update()
                .where(table.c.key == address_key(address), table.c.attempts > 0)
                .values(attempts=table.c.attempts - 1)
            )

    def unlock(self, username: str) -> None:
        """Lift an account's lock (an admin, after checking who was guessing)."""
        with self._engine.begin() as db:
            db.execute(throttle_table.delete().where(throttle_table.c.key == account_key(username)))

    def _count(self, key: str, limit: int, now: int) -> float:
        table = throttle_table
        cutoff = now - int(self.policy.window_s * NS)
        fresh = table.c.window_start_ns < cutoff
        bump = (
            table.update()
            .where(table.c.key == key)
            .values(
                attempts=sa.case((fresh, 1), else_=table.c.attempts + 1),
                window_start_ns=sa.case((fresh, now), else_=table.c.window_start_ns),
            )
        )
        for _ in range(3):  # a concurrent first attempt may insert the row between our steps
            with self._engine.begin() as db:
                if not db.execute(bump).rowcount:
                    try:
                        with db.begin_nested():
                            db.execute(
                                table.insert().values(
                                    key=key, window_start_ns=now, attempts=1, locked_until_ns=0
                                )
                            )
                    except sa.exc.IntegrityError:
                        continue
                row = db.execute(table.select().where(table.c.key == key)).one()._mapping
                if row["locked_until_ns"] > now:
                    return float(row["locked_until_ns"] - now) / NS
                if row["attempts"] > limit:
                    until = now + int(self.policy.lock_s * NS)
                    db.execute(
                        table.update().where(table.c.key == key).values(locked_until_ns=until)
                    )
                    return self.policy.lock_s
                if row["locked_until_ns"]:
                    # A lock that lapsed starts a new count.
                    db.execute(
                        table.update()
                        .where(table.c.key == key)
                        .values(locked_until_ns=0, attempts=1, window_start_ns=now)
                    )
                return 0.0
        raise RuntimeError(f"login throttle row {key!r} kept changing under us")
