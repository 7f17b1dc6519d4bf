"""The two engines under one Store: connections, transactions, change stamps, schema DDL.

Concern modules write one portable SQL text (SQLite's spelling: ``?`` placeholders,
``INSERT OR IGNORE``, ``group_concat``); ``PostgresEngine`` translates it once per statement
(``pg_sql``). Everything engine-specific — the file rules of SQLite, the pool, the schema
marker and the write lock of PostgreSQL — lives here and nowhere else.
"""

from __future__ import annotations

import contextvars
import functools
import sqlite3
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import Conflict, DatabaseError
from ..files import touch_private
from .location import DatabaseURL

APPLICATION_ID = 0x41435431  # "ACT1": tells an authctl database from any other SQLite file
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 5.0
PG_META = "authctl_schema"  # PostgreSQL's stand-in for SQLite's application_id / user_version / data_version
PG_POOL_MAX = 50
PG_CONNECT_TIMEOUT_S = 5.0
POOL_WAIT_S = 1.0  # then one direct connection instead (see PostgresEngine.conn)
STAMP_READ_TIMEOUT_S = 5.0  # an awaited stamp read (connecting included) that takes longer is a 503
STAMP_REUSE_S = 0.005  # how long the stamp read by a request's token lookup stands for that request

#: The change stamp a request awaited before its synchronous checks (``stamp_given``): read after
#: the request arrived, so its token lookup may take it instead of reading the stamp again.
_GIVEN_STAMP: contextvars.ContextVar[Any] = contextvars.ContextVar("authctl_given_stamp", default=None)


# --------------------------------------------------------------------------- dialect


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """Portable (SQLite-spelled) SQL in PostgreSQL's spelling."""
    text = sql.replace("%", "%%").replace("?", "%s")
    text = text.replace("group_concat(", "string_agg(")
    if "INSERT OR IGNORE INTO" in text:
        text = text.replace("INSERT OR IGNORE INTO", "INSERT INTO")
        if " RETURNING " in text:
            head, tail = text.split(" RETURNING ", 1)
            text = f"{head} ON CONFLICT DO NOTHING RETURNING {tail}"
        else:
            text += " ON CONFLICT DO NOTHING"
    return text


_PG_TYPES = {int: "BIGINT", str: "TEXT", float: "DOUBLE PRECISION", bytes: "BYTEA"}


# --------------------------------------------------------------------------- SQLite


def peek_names(path: str, query: str) -> list[str]:
    """The first column of ``query`` on a SQLite file opened read-only, waiting briefly (shell completion)."""
    conn = sqlite3.connect(_file_uri(Path(path), "ro"), uri=True, timeout=0.2)
    try:
        return [str(row[0]) for row in conn.execute(query)]
    finally:
        conn.close()


def _check_file(path: Path, insecure_permissions: bool) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DatabaseError(f"no database at {path}: run `authctl init`", hint="db") from None
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DatabaseError(f"{path} is not a regular file")
    if info.st_mode & 0o077 and not insecure_permissions:
        mode = stat.S_IMODE(info.st_mode)
        raise DatabaseError(
            f"{path} is readable or writable by group/others (mode {mode:04o}); "
            f"fix with `chmod 600 {path}`", hint="insecure_permissions"
        )
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        raise DatabaseError(f"{path} is not an SQLite database (left untouched)")


def _file_uri(path: Path, mode: str) -> str:
    """A ``file:`` URI naming exactly ``path``: percent-encoded, so ``#``, ``?`` or ``%`` in it
    cannot cut the name short and open (or create) another file."""
    return f"{path.resolve().as_uri()}?mode={mode}"


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    """A connection with authctl's settings; closable from any thread (``Store.close``)."""
    try:
        conn = sqlite3.connect(
            _file_uri(path, "rw"), uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path}: {exc}") from None
    return conn


class SqliteSchema:
    """Migrations' DDL on SQLite: sqlite-utils, as the files written by every earlier authctl."""

    insertion_order = "rowid"

    def __init__(self, conn: sqlite3.Connection):
        import sqlite_utils

        self.conn = conn
        self.utils = sqlite_utils.Database(conn, execute_plugins=False)

    def __getitem__(self, table: str) -> Any:  # sqlite-utils' own table API, as migrations used it before
        return self.utils[table]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def create_table(self, name: str, columns: dict, *, pk: Any, not_null: Any = (), defaults: dict | None = None,
                     foreign_keys: Sequence = (), if_not_exists: bool = False) -> None:
        self.utils.table(name).create(columns, pk=pk, not_null=set(not_null), defaults=defaults or {},
                                foreign_keys=list(foreign_keys), if_not_exists=if_not_exists)

    def create_index(self, table: str, columns: list[str], *, unique: bool = False, if_not_exists: bool = False) -> None:
        self.utils.table(table).create_index(columns, unique=unique, if_not_exists=if_not_exists)

    def has_column(self, table: str, column: str) -> bool:
        return column in self.utils.table(table).columns_dict

    def add_column(self, table: str, column: str, kind: type) -> None:
        self.utils.table(table).add_column(column, kind)


class SqliteEngine:
    """Each thread its own connection, so a write waiting for another process's lock never holds
    up the reads of other threads (a server's event loop); WAL readers never wait for writers."""

    name = "sqlite"
    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
    no_limit = "-1"

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.location = path
        self.write_lock = threading.RLock()
        self._connections = [conn]
        self._connections_lock = threading.Lock()
        self.local = threading.local()
        self._adopt(conn, 0)

    def _adopt(self, conn: sqlite3.Connection, serial: int) -> None:
        self.local.conn, self.local.serial, self.local.schema = conn, serial, None

    @property
    def conn(self) -> sqlite3.Connection:
        try:
            return self.local.conn
        except AttributeError:
            conn = _sqlite_connection(self.path)
            with self._connections_lock:
                self._connections.append(conn)
                serial = len(self._connections) - 1
            self._adopt(conn, serial)
            return conn

    @property
    def serial(self) -> int:
        self.conn
        return self.local.serial

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self.conn.executemany(sql, rows)

    @property
    def schema(self) -> SqliteSchema:
        self.conn
        if self.local.schema is None:
            self.local.schema = SqliteSchema(self.conn)
        return self.local.schema

    # ----------------------------------------------------------------- open / create

    @classmethod
    def create(cls, path: Path) -> "SqliteEngine":
        touch_private(path)  # refuses an existing file: nothing of it is touched or removed
        try:
            engine = cls(path, _sqlite_connection(path))
            engine.conn.execute("PRAGMA journal_mode=WAL")
            engine.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        except BaseException:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise
        return engine

    @classmethod
    def open(cls, path: Path, *, insecure_permissions: bool = False) -> tuple["SqliteEngine", int]:
        """The engine and the file's schema version; refuses a foreign or damaged file."""
        _check_file(path, insecure_permissions)
        engine = cls(path, _sqlite_connection(path))
        try:
            app_id, version = engine.conn.execute(
                "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version"
            ).fetchone()
            if app_id != APPLICATION_ID:
                raise DatabaseError(f"{path} is an SQLite file but not an authctl database (left untouched)")
        except sqlite3.DatabaseError as exc:
            engine.close()
            folder = path.resolve().parent
            import os

            cannot_create = "unable to open" in str(exc) or getattr(exc, "sqlite_errorname", "").startswith(
                ("SQLITE_CANTOPEN", "SQLITE_READONLY")  # SQLITE_READONLY_DIRECTORY: no room for -wal/-shm
            )
            if cannot_create and not os.access(folder, os.W_OK):
                raise DatabaseError(
                    f"cannot open {path}: its directory {folder} is not writable "
                    f"(SQLite's WAL journal keeps {path.name}-wal and -shm files beside it)"
                ) from None
            raise DatabaseError(f"{path} is not a usable SQLite database ({exc}); left untouched") from None
        except BaseException:
            engine.close()
            raise
        return engine, version

    def discard(self) -> None:
        """Remove a database that was never finished (``init`` failed half-way)."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()

    # ----------------------------------------------------------------- version and stamp

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, number: int) -> None:
        self.conn.execute(f"PRAGMA user_version={int(number)}")

    def change_stamp(self) -> tuple[int, int, int]:
        """``data_version`` moves on other connections' (and processes') commits, ``total_changes``
        on this one's; both count per connection, so the stamp names the connection too."""
        conn = self.conn
        return self.local.serial, conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes

    stamp_from = "pragma_data_version AS dv"
    stamp_column = "dv.data_version"

    def stamp_of(self, value: Any) -> tuple[int, int, int]:
        return self.local.serial, value, self.conn.total_changes

    token_row_cache = False  # an in-process lookup is as cheap as the stamp read that would guard a cache

    def read_stamp(self) -> tuple[int, int, int]:
        return self.change_stamp()

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """Nothing to do: SQLite plans from the schema's indexes, not from gathered statistics."""

    async def fresh_stamp(self) -> None:
        """Nothing to await: a local file's stamp is read where it is needed, in microseconds."""
        return None

    # ----------------------------------------------------------------- transactions

    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        with self.write_lock:
            if self.conn.in_transaction:
                yield
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._write_error(exc) from None
            try:
                yield
            except sqlite3.IntegrityError as exc:
                self.conn.rollback()
                raise Conflict(f"conflicting change: {exc}") from None
            except sqlite3.OperationalError as exc:
                self.conn.rollback()
                raise self._write_error(exc) from None
            except BaseException:
                self.conn.rollback()
                raise
            else:
                try:
                    self.conn.commit()
                except sqlite3.Error as exc:  # a full disk often shows only here, when the WAL is written
                    try:
                        self.conn.rollback()
                    except sqlite3.Error:
                        pass
                    raise self._write_error(exc) from None

    def _write_error(self, exc: sqlite3.Error) -> DatabaseError:
        """One line for a write that failed (and was rolled back): busy, read-only or I/O."""
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return DatabaseError(f"database is busy ({exc}); try again")
        if name.startswith("SQLITE_READONLY"):
            return DatabaseError(
                f"cannot write {self.path} ({exc}): check the permissions of the file, "
                f"its -wal and -shm files and its directory"
            )
        if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
            return DatabaseError(f"cannot write {self.path} ({exc}; is the disk full?); nothing was written")
        return DatabaseError(f"database error: {exc}; nothing was written")

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def snapshot(self, destination: Path) -> Path:
        touch_private(destination)
        target = sqlite3.connect(destination)
        try:
            self.conn.backup(target)
        finally:
            target.close()
        return destination


# --------------------------------------------------------------------------- PostgreSQL


class PostgresSchema:
    """Migrations' DDL on PostgreSQL: the same tables, columns and index names as SQLite's."""

    insertion_order = "kid"  # a PostgreSQL database always had the seq column (migration 8 finds no keys)

    def __init__(self, engine: "PostgresEngine"):
        self.engine = engine

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.engine.execute(sql, params)

    def create_table(self, name: str, columns: dict, *, pk: Any, not_null: Any = (), defaults: dict | None = None,
                     foreign_keys: Sequence = (), if_not_exists: bool = False) -> None:
        defaults = defaults or {}
        parts = []
        for column, kind in columns.items():
            if pk == column and kind is int:
                parts.append(f"{column} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
                continue
            text = f"{column} {_PG_TYPES[kind]}"
            if pk == column:
                text += " PRIMARY KEY"
            if column in not_null:
                text += " NOT NULL"
            if column in defaults:
                value = defaults[column]
                text += f" DEFAULT {value!r}" if not isinstance(value, str) else f" DEFAULT '{value}'"
            parts.append(text)
        if isinstance(pk, tuple):
            parts.append(f"PRIMARY KEY ({', '.join(pk)})")
        for column, other, other_column in foreign_keys:
            parts.append(f"FOREIGN KEY ({column}) REFERENCES {other}({other_column})")
        exists = "IF NOT EXISTS " if if_not_exists else ""
        self.engine.execute(f"CREATE TABLE {exists}{name} ({', '.join(parts)})")

    def create_index(self, table: str, columns: list[str], *, unique: bool = False, if_not_exists: bool = False) -> None:
        name = f"idx_{table}_{'_'.join(columns)}"
        self.engine.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX {'IF NOT EXISTS ' if if_not_exists else ''}{name} "
            f"ON {table} ({', '.join(columns)})"
        )

    def has_column(self, table: str, column: str) -> bool:
        return self.engine.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? AND column_name = ?", (table, column)).fetchone() is not None

    def add_column(self, table: str, column: str, kind: type) -> None:
        self.engine.execute(f"ALTER TABLE {table} ADD COLUMN {column} {_PG_TYPES[kind]}")


def _pg_message(url: DatabaseURL, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    raw = url.raw
    if raw in text:
        text = text.replace(raw, str(url))
    from urllib.parse import urlsplit

    password = urlsplit(raw).password
    if password:
        text = text.replace(password, "***")
    return text


class PostgresEngine:
    """A psycopg pool; each thread keeps one autocommit connection (a transaction is an explicit
    BEGIN … COMMIT). Every write transaction first bumps the stamp row: that row lock makes writers
    take turns, as SQLite's ``BEGIN IMMEDIATE`` does, and moves the stamp every process's caches read.
    A broken connection goes back to the pool and the error becomes a ``DatabaseError`` (a 503)."""

    name = "postgresql"
    no_limit = "ALL"
    stamp_from = f"{PG_META} AS dv"
    stamp_column = "dv.stamp"

    def __init__(self, url: DatabaseURL):
        import psycopg
        from psycopg_pool import ConnectionPool

        self.psycopg = psycopg
        self.integrity_errors = (psycopg.errors.IntegrityError,)
        self.url = url
        self.location = url
        self.write_lock = threading.RLock()
        self.local = threading.local()
        self._serials = 0
        self._serial_lock = threading.Lock()
        self._direct: list[Any] = []  # connections made outside the pool (see ``conn``)
        self._stamps: dict[Any, Any] = {}  # each event loop's stamp reader (``fresh_stamp``)
        import logging

        # the pool logs each failed attempt; with no logging set up Python would print those to stderr
        # beside authctl's own one-line error. An app that configures logging still receives them.
        logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
        try:  # one direct attempt first: a wrong URL or a server that is down fails now, with its reason
            psycopg.connect(url.raw, connect_timeout=int(PG_CONNECT_TIMEOUT_S)).close()
        except psycopg.Error as exc:
            reason = url_safe(url, exc).replace("connection failed: ", "")
            raise DatabaseError(f"cannot connect to {url}: {reason}") from None
        self.pool = ConnectionPool(
            url.raw, min_size=1, max_size=PG_POOL_MAX, open=False, timeout=PG_CONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": int(PG_CONNECT_TIMEOUT_S)},
            check=ConnectionPool.check_connection, name="authctl",
        )
        try:
            self.pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT_S)
        except Exception:
            self.pool.close()
            raise DatabaseError(f"cannot connect to {url}: the server did not answer in time; try again") from None

    @property
    def conn(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            from psycopg_pool import PoolTimeout

            try:
                conn, pooled = self.pool.getconn(timeout=POOL_WAIT_S), True
            except PoolTimeout:
                # the pool is empty: all in use, or backing off after an outage. One direct connection
                # (closed when dropped) makes a server that is back answer at once, not after the backoff.
                try:
                    conn = self.psycopg.connect(self.url.raw, autocommit=True, connect_timeout=int(PG_CONNECT_TIMEOUT_S))
                except self.psycopg.Error as exc:
                    raise DatabaseError(f"database unavailable ({url_safe(self.url, exc)}); try again") from None
                pooled = False
                with self._serial_lock:
                    self._direct.append(conn)
            except Exception as exc:
                raise DatabaseError(f"database unavailable ({url_safe(self.url, exc)}); try again") from None
            with self._serial_lock:
                self._serials += 1
                self.local.serial = self._serials
            self.local.conn, self.local.depth, self.local.pooled = conn, 0, pooled
        return conn

    @property
    def serial(self) -> int:
        self.conn
        return self.local.serial

    def _drop(self) -> None:
        """Hand a broken connection back (the pool discards it); the next statement gets a fresh one."""
        conn = getattr(self.local, "conn", None)
        self.local.conn = None
        self.local.depth = 0
        if conn is not None:
            try:
                if getattr(self.local, "pooled", True):
                    self.pool.putconn(conn)
                else:
                    with self._serial_lock:
                        self._direct = [c for c in self._direct if c is not conn]
                    conn.close()
            except Exception:
                pass

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One statement; outside a transaction a dead connection (a server restart) is replaced and
        the statement tried once more, so a recovered server answers the very next request."""
        psycopg = self.psycopg
        text, values = pg_sql(sql), tuple(params)
        for attempt in (1, 2):
            in_tx = getattr(self.local, "depth", 0) > 0
            try:
                return self.conn.execute(text, values)
            except psycopg.OperationalError as exc:
                if in_tx:  # the transaction is lost: transaction() rolls back and reports it
                    raise DatabaseError(f"database unavailable ({url_safe(self.url, exc)}); nothing was written") from None
                self._drop()
                if attempt == 2:
                    raise DatabaseError(f"database unavailable ({url_safe(self.url, exc)}); try again") from None
        raise AssertionError("unreachable")

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cursor = self.conn.cursor()
        cursor.executemany(pg_sql(sql), [tuple(r) for r in rows])
        return cursor

    @property
    def schema(self) -> PostgresSchema:
        return PostgresSchema(self)

    # ----------------------------------------------------------------- open / create

    def tables(self) -> list[str]:
        return [r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1")]

    table_names = tables

    @classmethod
    def create(cls, url: DatabaseURL) -> "PostgresEngine":
        """Mark an empty database as authctl's (version 0); refuse one that holds any table."""
        engine = cls(url)
        try:
            tables = engine.tables()
            if PG_META in tables:
                raise DatabaseError(f"{url} already holds an authctl database (left untouched)")
            if tables:
                raise DatabaseError(
                    f"{url} is not empty (it holds {len(tables)} other table(s), e.g. {tables[0]!r}): "
                    "authctl creates its tables only in an empty database (left untouched)")
            engine.execute(
                f"CREATE TABLE {PG_META} (id INTEGER PRIMARY KEY CHECK (id = 1), application TEXT NOT NULL, "
                "version INTEGER NOT NULL, stamp BIGINT NOT NULL)")
            engine.execute(f"INSERT INTO {PG_META} VALUES (1, 'authctl', 0, 0)")
        except BaseException:
            engine.close()
            raise
        return engine

    @classmethod
    def open(cls, url: DatabaseURL, *, insecure_permissions: bool = False) -> tuple["PostgresEngine", int]:
        engine = cls(url)
        try:
            tables = engine.tables()
            if PG_META not in tables:
                if tables:
                    raise DatabaseError(f"{url} holds tables but not an authctl database (left untouched)")
                raise DatabaseError(f"no authctl database at {url}: run `authctl init`", hint="db")
            row = engine.execute(f"SELECT application, version FROM {PG_META}").fetchone()
            if row is None or row[0] != "authctl":
                raise DatabaseError(f"{url} is not an authctl database (left untouched)")
        except BaseException:
            engine.close()
            raise
        return engine, row[1]

    def discard(self) -> None:
        """Drop what ``create`` made (``init`` failed half-way): the database is empty again."""
        try:
            self.local.depth = 0
            tables = self.tables()
            if tables:
                self.execute(f"DROP TABLE IF EXISTS {', '.join(tables)} CASCADE")
        finally:
            self.close()

    def close(self) -> None:
        self.local.conn = None
        with self._serial_lock:
            readers, self._stamps = list(self._stamps.values()), {}
        for reader in readers:
            reader.close()
        with self._serial_lock:
            direct, self._direct = self._direct, []
        for conn in direct:
            conn.close()
        self.pool.close()

    # ----------------------------------------------------------------- version and stamp

    @property
    def schema_version(self) -> int:
        return self.execute(f"SELECT version FROM {PG_META}").fetchone()[0]

    def set_schema_version(self, number: int) -> None:
        self.execute(f"UPDATE {PG_META} SET version = ?", (int(number),))

    def change_stamp(self) -> tuple[int, int, int]:
        """The stamp row moves on every committed write of any process.

        The stamp a request's token lookup (``token_state``) just read, or was given, serves that
        request's later checks (access, settings) for ``STAMP_REUSE_S`` on this thread: one read per
        request at most, as on SQLite."""
        given = _GIVEN_STAMP.get()
        if given is not None and not getattr(self.local, "depth", 0):
            return 0, given, 0
        fresh = getattr(self.local, "fresh", None)
        if fresh is not None and time.monotonic() - fresh[1] < STAMP_REUSE_S and not getattr(self.local, "depth", 0):
            return 0, fresh[0], 0
        return 0, self.execute(f"SELECT stamp FROM {PG_META}").fetchone()[0], 0

    def stamp_of(self, value: Any) -> tuple[int, int, int]:
        self.local.fresh = (value, time.monotonic())
        return 0, value, 0

    token_row_cache = True  # a round trip costs more than the lookup it carries (Tokens.token_state)

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """ANALYZE after a bulk write: until autovacuum gets to a table that grew from a hundred rows
        to a hundred thousand, the planner's guesses make a user lookup take twice as long."""
        self.execute(f"ANALYZE {', '.join(tables)}")

    def read_stamp(self) -> tuple[int, int, int]:
        """The stamp read now, or the one this request awaited since it arrived (``fresh_stamp``);
        never the reused one ``change_stamp`` may give. Later checks of this request reuse it."""
        given = _GIVEN_STAMP.get()
        if given is not None:
            return self.stamp_of(given)
        return self.stamp_of(self.execute(f"SELECT stamp FROM {PG_META}").fetchone()[0])

    async def fresh_stamp(self) -> int | None:
        """The stamp, read on the event loop after this call began; concurrent requests share reads.
        ``None`` off asyncio (e.g. trio): the token lookup then reads it itself."""
        import asyncio  # here, not at the top: every CLI command imports this module

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        stamps = self._stamps.get(loop)
        if stamps is None:
            from .stamps import PostgresStamps

            with self._serial_lock:
                for old in [old for old in self._stamps if old.is_closed()]:
                    self._stamps.pop(old).close()
                stamps = self._stamps.setdefault(loop, PostgresStamps(
                    self.url, f"SELECT stamp FROM {PG_META}", STAMP_READ_TIMEOUT_S,
                    lambda exc: url_safe(self.url, exc)))
        return await stamps.fresh()

    # ----------------------------------------------------------------- transactions

    def in_transaction(self) -> bool:
        self.conn
        return self.local.depth > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN, the stamp row locked and bumped (writers take turns), COMMIT; nested calls join."""
        psycopg = self.psycopg
        with self.write_lock:
            conn = self.conn
            if self.local.depth > 0:
                self.local.depth += 1
                try:
                    yield
                finally:
                    self.local.depth -= 1
                return
            for attempt in (1, 2):  # a connection found dead at BEGIN is replaced once: nothing was sent yet
                try:
                    conn.execute("BEGIN")
                    self.local.depth = 1
                    conn.execute(f"UPDATE {PG_META} SET stamp = stamp + 1")
                    break
                except psycopg.Error as exc:
                    self._abort()
                    if attempt == 2 or not isinstance(exc, psycopg.OperationalError):
                        raise DatabaseError(
                            f"database unavailable ({url_safe(self.url, exc)}); nothing was written") from None
                    self._drop()
                    conn = self.conn
            try:
                yield
            except self.integrity_errors as exc:
                self._abort()
                raise Conflict(f"conflicting change: {url_safe(self.url, exc)}") from None
            except psycopg.Error as exc:
                self._abort()
                raise DatabaseError(f"database error ({url_safe(self.url, exc)}); nothing was written") from None
            except BaseException:
                self._abort()
                raise
            else:
                try:
                    conn.execute("COMMIT")
                    self.local.depth = 0
                    self.local.fresh = None  # this thread's own write moved the stamp
                except psycopg.Error as exc:
                    self._abort()
                    raise DatabaseError(
                        f"database unavailable at commit ({url_safe(self.url, exc)}); nothing was written") from None

    def _abort(self) -> None:
        conn = getattr(self.local, "conn", None)
        self.local.depth = 0
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken:
                conn.execute("ROLLBACK")
                return
        except Exception:
            pass
        self._drop()

    def snapshot(self, destination: Path) -> Path:
        """A private SQLite copy of this database (``db copy``'s code), for live checks that may write."""
        from .copy import copy_database

        copy_database(self.url, destination)
        return destination


@contextmanager
def stamp_given(stamp: Any) -> Iterator[None]:
    """Within: the token lookup takes ``stamp`` (awaited by ``fresh_stamp``) as the stamp read now."""
    if stamp is None:
        yield
        return
    marker = _GIVEN_STAMP.set(stamp)
    try:
        yield
    finally:
        _GIVEN_STAMP.reset(marker)


def url_safe(url: DatabaseURL, exc: BaseException) -> str:
    return _pg_message(url, exc)
