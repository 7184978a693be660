"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 10  # long enough that the lockout, not the length, is what stops guessing


class PasswordPolicyError(ValueError):
    """A new password is too weak to store."""


class Passwords:
    """Hash and check passwords; one instance per process (the hasher holds its parameters)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Checked against when the user does not exist, so both cases cost the same time.
        self._dummy = self._hasher.hash("pantau-no-such-user")

    def hash(self, password: str) -> str:
        """An argon2id PHC string for ``password``; refuses one that is too short."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True if ``password`` matches ``stored``; ``None`` (no such user or no password) costs
        the same time and is False."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True if ``stored`` was made with weaker parameters than today's."""
        return self._hasher.check_needs_rehash(stored)
