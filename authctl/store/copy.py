"""``authctl db copy``: a whole database from one engine to the other (or the same), verified.

Every table of the schema is copied row for row (ids, keys, secrets and the audit log included)
in one destination transaction (and an app's registered tables, such as the demo's, when the
source has them), then both sides are read again and compared: row counts and a
content digest per table. A destination that is not empty is refused (``Store.create``); on any
failure the destination is removed again, so a copy is whole or absent.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from ..errors import DatabaseError
from .location import DatabaseURL, Location, resolve_db_path
from .schema import APP_TABLES, create_app_table

#: Parents before children (foreign keys); every table the migrations create.
TABLES = (
    "users", "roles", "permissions", "role_permissions", "role_inherits", "user_roles", "settings", "audit_log",
    "signing_keys", "revoked_tokens", "login_attempts", "refresh_tokens", "expectations", "targets",
)
IDENTITY_TABLES = ("users", "roles", "permissions", "audit_log")  # integer ids the database assigns


@dataclass(frozen=True)
class TableCopy:
    name: str
    rows: int
    digest: str  # sha256 of the rows in key order, the same on both sides


@dataclass(frozen=True)
class CopyReport:
    source: str
    destination: str
    schema_version: int
    tables: tuple[TableCopy, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "schema_version": self.schema_version,
                "verified": True, "tables": [{"name": t.name, "rows": t.rows, "sha256": t.digest} for t in self.tables]}


def _value(value: Any) -> str:
    """One canonical text per value, whatever the engine returned (bytes/memoryview, int, float, text)."""
    if value is None:
        return "\x00N"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b" + bytes(value).hex()
    if isinstance(value, bool):
        return f"i{int(value)}"
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        return f"f{value!r}"
    return "s" + str(value)


def _columns(store: Any, table: str) -> list[str]:
    cursor = store.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cursor.description]


def _rows(store: Any, table: str, columns: list[str]) -> list[tuple]:
    order = ", ".join(str(i) for i in range(1, len(columns) + 1))
    return store.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()


def table_digest(store: Any, table: str, columns: list[str]) -> tuple[int, str]:
    rows = sorted("\x1f".join(_value(v) for v in row) for row in _rows(store, table, columns))
    digest = hashlib.sha256("\x1e".join(rows).encode("utf-8", "surrogatepass")).hexdigest()
    return len(rows), digest


def copy_database(source: str | os.PathLike | Location, destination: str | os.PathLike | Location) -> CopyReport:
    from .core import Store

    src_location = source if isinstance(source, DatabaseURL) else resolve_db_path(source)
    dst_location = destination if isinstance(destination, DatabaseURL) else resolve_db_path(destination)
    if str(src_location) == str(dst_location) and type(src_location) is type(dst_location):
        raise DatabaseError("source and destination are the same database")
    try:
        opened: Store | None = Store.open(src_location)
    except DatabaseError as exc:
        if exc.hint != "db":  # a foreign or corrupt file, a server that is down: its own words
            raise
        opened = None  # raised below, outside this block: `init` and --db are no advice for a copy's source
    if opened is None:
        raise DatabaseError(f"no authctl database at {src_location}: nothing to copy")
    with opened as src:
        dst = Store.create(dst_location)  # refuses an existing file or a non-empty PostgreSQL database
        try:
            with src.engine.transaction():  # the source held still while it is read (writers wait)
                plan = {table: _columns(src, table) for table in TABLES}
                present = set(src.table_names())
                extra = [name for name in APP_TABLES if name in present]
                plan.update({name: _columns(src, name) for name in extra})
                with dst.transaction():
                    for name in extra:
                        create_app_table(dst.db, name)
                    for table, columns in plan.items():
                        rows = _rows(src, table, columns)
                        if rows:
                            marks = ", ".join("?" for _ in columns)
                            dst.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                    if dst.engine_name == "postgresql":  # the next id follows the copied ones
                        for table in (*IDENTITY_TABLES, *(n for n in extra if APP_TABLES[n].get("pk") == "id")):
                            dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
                dst.engine.refresh_statistics(list(plan))
                tables = []
                for table, columns in plan.items():
                    expected = table_digest(src, table, columns)
                    found = table_digest(dst, table, columns)
                    if expected != found:
                        raise DatabaseError(
                            f"copy of table {table} does not match its source ({found[0]} rows vs {expected[0]}); "
                            "the destination was removed")
                    tables.append(TableCopy(table, *expected))
            report = CopyReport(str(src_location), str(dst_location), dst.schema_version, tuple(tables))
        except BaseException:
            dst.discard()
            raise
        dst.close()
    return report
