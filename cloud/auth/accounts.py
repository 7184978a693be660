"""Local accounts: username, role, district scope, password hash, enabled or not."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from cloud.auth.principal import Principal, Role
from cloud.auth.tables import users_table

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
DISTRICT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LANGS = ("id", "en")


class AccountError(Exception):
    """Root of the account store's errors."""


class UserExistsError(AccountError):
    """The username is taken."""


class NoSuchUserError(AccountError):
    """No account has that username."""


@dataclass(frozen=True, slots=True)
class User:
    """A stored account."""

    id: int
    username: str
    role: Role
    districts: frozenset[str] | None
    lang: str
    source: str
    disabled: bool
    password_hash: str | None
    created_ns: int

    def principal(self, via: str) -> Principal:
        """This account as the API's ``Principal``."""
        return Principal(
            username=self.username,
            role=self.role,
            districts=self.districts,
            lang=self.lang,
            via=via,
        )


def check_username(username: str) -> str:
    """``username`` if it is a valid account name; ValueError naming the rule otherwise."""
    if not USERNAME.match(username):
        raise ValueError(
            f"username {username!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_districts(districts: Iterable[str] | None) -> frozenset[str] | None:
    """A district scope: None (every district) or a non-empty set of district ids."""
    if districts is None:
        return None
    found = frozenset(districts)
    if not found:
        raise ValueError("give at least one district, or every district")
    bad = sorted(d for d in found if not DISTRICT.match(d))
    if bad:
        raise ValueError(f"not a district id: {', '.join(bad)}")
    return found


class AccountStore:
    """Accounts in the state database."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(
        self,
        username: str,
        *,
        role: Role,
        districts: Iterable[str] | None,
        password_hash: str | None,
        lang: str = "id",
        source: str = "local",
    ) -> User:
        """Create an account; UserExistsError if the name is taken."""
        scope = check_districts(districts)
        if lang not in LANGS:
            raise ValueError(f"language {lang!r}: one of {', '.join(LANGS)}")
        values = {
            "username": check_username(username),
            "password_hash": password_hash,
            "role": role.value,
            "districts": None if scope is None else orjson.dumps(sorted(scope)).decode(),
            "lang": lang,
            "source": source,
            "disabled": False,
            "created_ns": time.time_ns(),
        }
        try:
            with self._engine.begin() as db:
                db.execute(users_table.insert().values(**values))
        except sa.exc.IntegrityError:
            raise UserExistsError(f"user {username!r} exists already") from None
        return self.require(username)

    def get(self, username: str) -> User | None:
        """One account by username."""
        with self._engine.connect() as db:
            row = db.execute(users_table.select().where(users_table.c.username == username)).first()
        return _user(row) if row else None

    def by_id(self, user_id: int) -> User | None:
        """One account by id."""
        with self._engine.connect() as db:
            row = db.execute(users_table.select().where(users_table.c.id == user_id)).first()
        return _user(row) if row else None

    def require(self, username: str) -> User:
        """One account by username; NoSuchUserError if there is none."""
        found = self.get(username)
        if found is None:
            raise NoSuchUserError(f"no user {username!r} (see `pantau users list`)")
        return found

    def all(self) -> list[User]:
        """Every account, by username."""
        with self._engine.connect() as db:
            rows = db.execute(users_table.select().order_by(users_table.c.username))
            return [_user(row) for row in rows]

    def set_disabled(self, username: str, *, disabled: bool) -> User:
        """Disable (sessions and tokens stop working at once) or enable an account."""
        self._update(username, disabled=disabled)
        return self.require(username)

    def set_scope(self, username: str, *, role: Role, districts: Iterable[str] | None) -> None:
        """Replace an account's role and district scope."""
        scope = check_districts(districts)
        self._update(
            username,
            role=role.value,
            districts=None if scope is None else orjson.dumps(sorted(scope)).decode(),
        )

    def set_password_hash(self, username: str, password_hash: str) -> None:
        """Replace an account's password hash."""
        self._update(username, password_hash=password_hash)

    def _update(self, username: str, **values: object) -> None:
        with self._engine.begin() as db:
            result = db.execute(
                users_table.update().where(users_table.c.username == username).values(**values)
            )
        if not result.rowcount:
            raise NoSuchUserError(f"no user {username!r} (see `pantau users list`)")


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping
    districts = m["districts"]
    return User(
        id=int(m["id"]),
        username=m["username"],
        role=Role(m["role"]),
        districts=None if districts is None else frozenset(orjson.loads(districts)),
        lang=m["lang"],
        source=m["source"],
        disabled=bool(m["disabled"]),
        password_hash=m["password_hash"],
        created_ns=int(m["created_ns"]),
    )
