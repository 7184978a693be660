"""The state database's engine (maintenance windows, problems): a SQLite file by default, or
PostgreSQL for several API and problems instances (``postgresql://user@host/db``, psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

SQLITE_LOCK_TIMEOUT_S = 30  # several processes share one file: wait for the write lock


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; ``postgresql://`` uses psycopg 3 (``pantau[cloud]`` installs it)."""
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = SQLITE_LOCK_TIMEOUT_S
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url.removeprefix(plain)
    return sa.create_engine(url, future=True, connect_args=connect_args, pool_pre_ping=True)


SCHEMA_LOCK_KEY = 0x70616E746175  # "pantau": one advisory lock for creating the state tables


def create_tables(engine: sa.Engine, *metadatas: sa.MetaData) -> None:
    """Create the tables of ``metadatas`` that are missing, safely when several processes
    start at once: on PostgreSQL two concurrent ``CREATE TABLE`` of one name fail on the
    catalogue's unique index, so creators take turns under an advisory lock."""
    with engine.begin() as connection:
        lock_schema(connection)
        for metadata in metadatas:
            metadata.create_all(connection)


def lock_schema(connection: sa.Connection) -> None:
    """Hold the schema lock until ``connection``'s transaction ends (PostgreSQL; SQLite
    serializes writers by itself), so processes change the tables one at a time."""
    if connection.dialect.name == "postgresql":
        lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
        connection.execute(lock, {"key": SCHEMA_LOCK_KEY})
