"""The Store: every concern module over one engine (one connection per thread, one transaction)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from ..errors import DatabaseError
from .audit import AuditLog
from .engines import PostgresEngine, SqliteEngine, _sqlite_connection
from .keys import SigningKeys
from .location import DatabaseURL, Location, resolve_db_path
from .roles import Roles
from .settings import SettingsStore
from .targets import Expectations, Targets
from .throttle import LoginAttempts
from .tokens import Tokens
from .users import Users


def _schema() -> tuple[tuple, int]:
    """The migrations and version as the package exposes them (read at call time, so they can be swapped)."""
    package = sys.modules[__package__]
    return package.MIGRATIONS, package.SCHEMA_VERSION


def _location(where: str | os.PathLike | DatabaseURL) -> Location:
    return where if isinstance(where, (Path, DatabaseURL)) else resolve_db_path(where)


class Store(Users, Roles, SigningKeys, Tokens, LoginAttempts, AuditLog, SettingsStore, Targets, Expectations):
    """An open auth database (an SQLite file or a PostgreSQL database). Safe to share between
    threads: each thread gets its own connection."""

    def __init__(self, engine: SqliteEngine | PostgresEngine):
        self.engine = engine
        self.path: Location = engine.location
        self._caches = threading.local()

    @property
    def conn(self) -> Any:
        """This thread's raw driver connection (sqlite3 or psycopg), opened on its first use."""
        return self.engine.conn

    @property
    def connection_id(self) -> int:
        """Tells this thread's connection from the others' (caches are kept per connection)."""
        return self.engine.serial

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def db(self) -> Any:
        """The schema builder the migrations use (sqlite-utils on SQLite, DDL on PostgreSQL)."""
        return self.engine.schema

    # ----------------------------------------------------------------- open / create

    @classmethod
    def create(cls, where: str | os.PathLike | DatabaseURL) -> "Store":
        """A new database at the current schema version: an SQLite file (mode 0600), or the
        tables of an empty PostgreSQL database."""
        location = _location(where)
        engine = PostgresEngine.create(location) if isinstance(location, DatabaseURL) else SqliteEngine.create(location)
        store = cls(engine)
        try:
            store._migrate(0)
        except BaseException:
            engine.discard()
            raise
        return store

    @classmethod
    def open(cls, where: str | os.PathLike | DatabaseURL, *, insecure_permissions: bool = False) -> "Store":
        """Open an existing database; upgrades an older schema, refuses a newer one."""
        location = _location(where)
        engine: SqliteEngine | PostgresEngine
        if isinstance(location, DatabaseURL):
            engine, version = PostgresEngine.open(location, insecure_permissions=insecure_permissions)
        else:
            engine, version = SqliteEngine.open(location, insecure_permissions=insecure_permissions)
        store = cls(engine)
        _, SCHEMA_VERSION = _schema()
        try:
            if version > SCHEMA_VERSION:
                raise DatabaseError(
                    f"{location} has schema version {version}, newer than this authctl understands "
                    f"({SCHEMA_VERSION}); upgrade authctl"
                )
            if version < SCHEMA_VERSION:
                store._migrate(version)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, path: Path) -> "Store":
        """An SQLite file opened with no checks (tests build old files through it)."""
        return cls(SqliteEngine(path, _sqlite_connection(path)))

    def discard(self) -> None:
        """Remove a database that was never finished (``init`` failed after ``create``)."""
        self.engine.discard()

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, destination: str | os.PathLike) -> Path:
        """A consistent private SQLite copy, for live checks that may write."""
        return self.engine.snapshot(Path(destination))

    def _migrate(self, current: int) -> None:
        MIGRATIONS, SCHEMA_VERSION = _schema()
        with self.transaction():
            for number, migration in enumerate(MIGRATIONS[current:], start=current + 1):
                migration(self.db)
                self.engine.set_schema_version(number)
            if current:
                self._audit("schema.migrate", str(self.path), {"from": current, "to": SCHEMA_VERSION})

    @property
    def schema_version(self) -> int:
        return self.engine.schema_version

    # ----------------------------------------------------------------- for app tables beside the store's

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One portable statement (``?`` placeholders) on this thread's connection."""
        return self.engine.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self.engine.executemany(sql, rows)

    def table_names(self) -> list[str]:
        return self.engine.table_names()
