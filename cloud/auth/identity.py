"""The identity stores on one state database, and who a credential belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cloud.auth.accounts import AccountStore, User
from cloud.auth.passwords import Passwords
from cloud.auth.principal import Principal
from cloud.auth.sessions import SESSION_TTL_S, Session, SessionStore
from cloud.auth.tables import metadata
from cloud.auth.throttle import LoginThrottle, ThrottlePolicy
from cloud.auth.tokens import TokenStore
from cloud.statedb import create_tables, make_engine


class LoginError(Exception):
    """Root of the login errors."""


class LoginFailedError(LoginError):
    """Wrong username or password, or a disabled account: the caller cannot tell which."""


class LoginThrottledError(LoginError):
    """Too many attempts for this account name or from this address."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many failed logins for this account or from this address; try again in "
            f"{retry_after_s:.0f} s"
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who a request is, and through which session (None for a token)."""

    principal: Principal
    session: Session | None


class Identity:
    """Accounts, tokens, sessions and the login throttle (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        url: str,
        *,
        policy: ThrottlePolicy | None = None,
        session_ttl_s: float = SESSION_TTL_S,
        passwords: Passwords | None = None,
    ) -> None:
        self._engine = make_engine(url)
        create_tables(self._engine, metadata)
        self.accounts = AccountStore(self._engine)
        self.tokens = TokenStore(self._engine)
        self.sessions = SessionStore(self._engine, ttl_s=session_ttl_s)
        self.throttle = LoginThrottle(self._engine, policy)
        self.passwords = passwords or Passwords()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (the OIDC login state shares it)."""
        return self._engine

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def login(self, username: str, password: str, *, address: str) -> User:
        """The account if ``password`` is right; throttled before any hashing."""
        with self.throttle.checking(username=username, address=address) as free:
            if not free:
                raise LoginThrottledError(1.0)
            wait = self.throttle.attempt(username=username, address=address)
            if wait > 0:
                raise LoginThrottledError(wait)
            user = self.accounts.get(username)
            ok = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            raise LoginFailedError("wrong username or password")
        self.throttle.succeeded(username=username, address=address)
        if user.password_hash and self.passwords.needs_rehash(user.password_hash):
            self.accounts.set_password_hash(username, self.passwords.hash(password))
        return user

    def by_token(self, bearer: str) -> Authenticated | None:
        """Who a personal API token belongs to (None: unknown, expired, revoked, disabled)."""
        token = self.tokens.check(bearer)
        user = self.accounts.by_id(token.user_id) if token else None
        if user is None or user.disabled:
            return None
        return Authenticated(user.principal("token"), None)

    def by_session(self, cookie: str) -> Authenticated | None:
        """Who a session cookie belongs to (None: unknown, expired, user disabled)."""
        session = self.sessions.find(cookie)
        user = self.accounts.by_id(session.user_id) if session else None
        if session is None or user is None or user.disabled:
            return None
        return Authenticated(user.principal(session.via), session)
