"""The auth database: SQLite through sqlite-utils.

Reads use the plain ``sqlite3`` connection (cheap: no sqlite-utils import on the
hot path of ``user show`` or a request); schema changes and writes go through
``sqlite_utils.Database`` on the same connection. Every multi-row change runs in
one ``BEGIN IMMEDIATE`` transaction together with its audit-log row.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import stat
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

from . import config
from .errors import Conflict, DatabaseError, InvalidInput, NotFound
from .clock import utcnow
from .files import touch_private
from .names import new_username, quoted, shown_name, skeleton, username_key, validate_permission, validate_role

APPLICATION_ID = 0x41435431  # "ACT1": tells an authctl database from any other SQLite file
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_DB = "authctl.db"
BUSY_TIMEOUT_S = 5.0
ACCESS_CACHE_SIZE = 4096
MAX_LEEWAY_S = 300  # the largest `leeway` setting


def resolve_db_path(option: str | os.PathLike | None = None) -> Path:
    """``--db PATH`` > ``AUTHCTL_DB`` > ``./authctl.db``."""
    return Path(option or os.environ.get("AUTHCTL_DB") or DEFAULT_DB)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class User:
    id: int
    uid: str
    username: str
    disabled: bool
    token_version: int
    created_at: str
    updated_at: str
    password_changed_at: str | None
    last_login_at: str | None
    roles: tuple[str, ...] = ()
    password_hash: str | None = field(default=None, repr=False)

    @property
    def status(self) -> Literal["active", "disabled"]:
        return "disabled" if self.disabled else "active"


@dataclass(frozen=True)
class Access:
    """A user's roles (direct and inherited) and effective permissions.

    ``roles`` maps each role to the role that included it (``None`` when assigned
    directly); ``permissions`` maps each permission to the role that grants it.
    """

    direct_roles: tuple[str, ...]
    roles: dict[str, str | None]
    permissions: dict[str, str]


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    created_at: str
    permissions: tuple[str, ...]
    inherits: tuple[str, ...]
    members: int


@dataclass(frozen=True)
class Permission:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]


KeyStatus = Literal["active", "verifying", "retired"]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    status: KeyStatus
    created_at: str
    retired_at: str | None
    fingerprint: str
    public_jwk: dict[str, Any]
    private_material: bytes = field(repr=False)


# --------------------------------------------------------------------------- migrations


def _migration_1(db: Any) -> None:
    """Users, roles, permissions, grants, inheritance, assignments, settings, audit."""
    db["users"].create(
        {
            "id": int, "uid": str, "username": str, "username_key": str, "password_hash": str,
            "disabled": int, "token_version": int, "created_at": str, "updated_at": str,
            "password_changed_at": str, "last_login_at": str,
        },
        pk="id", not_null={"uid", "username", "username_key", "disabled", "token_version"},
        defaults={"disabled": 0, "token_version": 1},
    )
    db["users"].create_index(["username_key"], unique=True)
    db["users"].create_index(["uid"], unique=True)
    db["roles"].create(
        {"id": int, "name": str, "description": str, "created_at": str},
        pk="id", not_null={"name"}, defaults={"description": ""},
    )
    db["roles"].create_index(["name"], unique=True)
    db["permissions"].create({"id": int, "name": str}, pk="id", not_null={"name"})
    db["permissions"].create_index(["name"], unique=True)
    db["role_permissions"].create(
        {"role_id": int, "permission_id": int}, pk=("role_id", "permission_id"),
        foreign_keys=[("role_id", "roles", "id"), ("permission_id", "permissions", "id")],
    )
    db["role_inherits"].create(
        {"role_id": int, "included_id": int}, pk=("role_id", "included_id"),
        foreign_keys=[("role_id", "roles", "id"), ("included_id", "roles", "id")],
    )
    db["user_roles"].create(
        {"user_id": int, "role_id": int}, pk=("user_id", "role_id"),
        foreign_keys=[("user_id", "users", "id"), ("role_id", "roles", "id")],
    )
    db["user_roles"].create_index(["role_id"])
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["audit_log"].create(
        {"id": int, "at": str, "actor": str, "action": str, "target": str, "details": str}, pk="id"
    )


def _migration_2(db: Any) -> None:
    """Signing keys, token revocations and login throttling."""
    db["signing_keys"].create(
        {
            "kid": str, "alg": str, "status": str, "created_at": str, "retired_at": str,
            "fingerprint": str, "public_jwk": str, "private_material": bytes,
        },
        pk="kid", not_null={"alg", "status", "private_material"},
    )
    db["revoked_tokens"].create(
        {"jti": str, "expires_at": int, "revoked_at": str, "reason": str}, pk="jti"
    )
    db["revoked_tokens"].create_index(["expires_at"])
    db["login_attempts"].create(
        {"username_key": str, "failures": int, "last_failure_at": float, "locked": int},
        pk="username_key", defaults={"failures": 0, "locked": 0},
    )


def _migration_3(db: Any) -> None:
    """Refresh-token families: rotation on use, and reuse detection."""
    db["refresh_tokens"].create(
        {"jti": str, "family": str, "user_id": int, "expires_at": int, "used_at": str},
        pk="jti", not_null={"family", "user_id", "expires_at"},
    )
    db["refresh_tokens"].create_index(["family"])


def _migration_4(db: Any) -> None:
    """Username keys by compatibility caseless match (``names.username_key``); a clash is refused."""
    changed: list[tuple[str, int, str]] = []
    owners: dict[str, str] = {}
    for user_id, username, old in db.execute("SELECT id, username, username_key FROM users").fetchall():
        try:
            key = username_key(username)
        except InvalidInput:
            key = old
        if key in owners:
            raise DatabaseError(
                f"users {owners[key]!r} and {username!r} are one name to this authctl (they differ only in "
                "case or Unicode form); remove one with the previous version, then upgrade"
            )
        owners[key] = username
        if key != old:
            changed.append((key, user_id, old))
    for key, user_id, old in changed:  # through a placeholder: a new key may be another row's old one
        db.execute("UPDATE users SET username_key = ? WHERE id = ?", (f"\0{user_id}", user_id))
    for key, user_id, old in changed:
        db.execute("UPDATE users SET username_key = ? WHERE id = ?", (key, user_id))
        db.execute("UPDATE OR REPLACE login_attempts SET username_key = ? WHERE username_key = ?", (key, old))


def _migration_5(db: Any) -> None:
    """Expectation tables of the policy file (``authctl policy``): route x user -> expected outcome."""
    db["expectations"].create(
        {"route": str, "username": str, "expected": str}, pk=("route", "username"), not_null={"expected"},
        if_not_exists=True,
    )


def _migration_6(db: Any) -> None:
    """Username skeletons (UTS #39, ``names.skeleton``), indexed: a new name that looks like an
    existing one is found by one lookup. Not unique: older files may hold look-alikes already."""
    if "username_skeleton" not in db["users"].columns_dict:
        db["users"].add_column("username_skeleton", str)
    rows = db.execute("SELECT id, username FROM users").fetchall()
    for user_id, username in rows:
        try:
            value = skeleton(username)
        except InvalidInput:  # a name an older authctl let in: its key stands in
            value = None
        db.execute("UPDATE users SET username_skeleton = ? WHERE id = ?", (value, user_id))
    db["users"].create_index(["username_skeleton"], if_not_exists=True)


def _migration_7(db: Any) -> None:
    """Targets: how authctl authenticates to an app with its own security (secrets kept like key material).

    Idempotent: a file marked with an older schema version may already hold the table.
    """
    db["targets"].create(
        {"name": str, "config": str, "secret": bytes, "created_at": str},
        pk="name", not_null={"config", "secret"}, if_not_exists=True,
    )


MIGRATIONS = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7)
SCHEMA_VERSION = len(MIGRATIONS)

# Foreign keys in sqlite-utils' create() carry no ON DELETE clause, so deletes
# cascade explicitly in the same transaction (see remove_user / remove_role).


# --------------------------------------------------------------------------- the store


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


def _connection(path: Path) -> sqlite3.Connection:
    """A connection with authctl's settings; closable from any thread (``Store.close``)."""
    try:
        conn = sqlite3.connect(
            f"file:{path.resolve()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path}: {exc}") from None
    return conn


class Store:
    """An open auth database. Safe to share between threads: each thread gets its own
    connection, so a write waiting for another process's lock never holds up the reads
    of other threads (a server's event loop); WAL readers never wait for writers."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.path = path
        self._write_lock = threading.RLock()
        self._connections = [conn]
        self._connections_lock = threading.Lock()
        self._local = threading.local()
        self._adopt(conn, serial=0)

    def _adopt(self, conn: sqlite3.Connection, serial: int) -> None:
        local = self._local
        local.conn, local.serial, local.db = conn, serial, None
        local.access_cache, local.access_stamp = {}, None

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on its first use."""
        try:
            return self._local.conn
        except AttributeError:
            conn = _connection(self.path)
            with self._connections_lock:
                self._connections.append(conn)
                serial = len(self._connections) - 1
            self._adopt(conn, serial)
            return conn

    @property
    def connection_id(self) -> int:
        """Tells this thread's connection from the others' (caches are kept per connection)."""
        self.conn  # opens this thread's connection on its first use
        return self._local.serial

    # ----------------------------------------------------------------- open / create

    @classmethod
    def create(cls, path: str | os.PathLike) -> "Store":
        """Create a new database file (mode 0600) at the current schema version."""
        path = Path(path)
        touch_private(path)
        try:
            store = cls._connect(path)
            store.conn.execute("PRAGMA journal_mode=WAL")
            store.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            store._migrate(0)
        except BaseException:
            path.unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, *, insecure_permissions: bool = False) -> "Store":
        """Open an existing database; upgrades an older schema, refuses a newer one."""
        path = Path(path)
        _check_file(path, insecure_permissions)
        store = cls._connect(path)
        try:
            app_id, version = store.conn.execute(
                "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version"
            ).fetchone()
            if app_id != APPLICATION_ID:
                raise DatabaseError(f"{path} is an SQLite file but not an authctl database (left untouched)")
            if version > SCHEMA_VERSION:
                raise DatabaseError(
                    f"{path} has schema version {version}, newer than this authctl understands "
                    f"({SCHEMA_VERSION}); upgrade authctl"
                )
            if version < SCHEMA_VERSION:
                store._migrate(version)
        except sqlite3.DatabaseError as exc:
            store.close()
            folder = path.resolve().parent
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
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, path: Path) -> "Store":
        return cls(_connection(path), path)

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, destination: str | os.PathLike) -> Path:
        """A consistent private copy (SQLite backup API), for live checks that may write."""
        destination = Path(destination)
        touch_private(destination)
        target = sqlite3.connect(destination)
        try:
            self.conn.backup(target)
        finally:
            target.close()
        return destination

    @property
    def db(self) -> Any:
        """sqlite-utils over the same connection, imported on first write."""
        conn = self.conn
        if self._local.db is None:
            import sqlite_utils

            self._local.db = sqlite_utils.Database(conn, execute_plugins=False)
        return self._local.db

    def _migrate(self, current: int) -> None:
        with self.transaction():
            for number, migration in enumerate(MIGRATIONS[current:], start=current + 1):
                migration(self.db)
                self.conn.execute(f"PRAGMA user_version={number}")
            if current:
                self._audit("schema.migrate", str(self.path), {"from": current, "to": SCHEMA_VERSION})

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        with self._write_lock:
            if self.conn.in_transaction:
                yield self
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._write_error(exc) from None
            try:
                yield self
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

    def _audit(self, action: str, target: str, details: dict[str, Any] | None = None, actor: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (utcnow(), actor or _os_user(), action, target, json.dumps(details or {}, sort_keys=True)),
        )

    # ----------------------------------------------------------------- settings

    def stored_settings(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self.conn.execute("SELECT key, value FROM settings")}

    def settings(self, overrides: dict[str, Any] | None = None) -> config.Settings:
        return config.resolve(self.stored_settings(), overrides)

    def set_setting(self, key: str, value: Any) -> Any:
        parsed = config.parse_setting(key, value)
        with self.transaction():
            old = self.stored_settings()
            candidate = {**old, key: parsed}
            config.resolve(candidate, environ={})  # cross-checks (ttl <= max_ttl) before writing
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(parsed)),
            )
            self._audit("config.set", key, {"old": old.get(key), "new": parsed})
        return parsed

    def unset_setting(self, key: str) -> bool:
        """Back to the default (``policy apply --prune``); True when a stored value was removed."""
        with self.transaction():
            old = self.stored_settings().get(key)
            cursor = self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            if cursor.rowcount:
                self._audit("config.unset", key, {"old": old})
        return bool(cursor.rowcount)

    # ----------------------------------------------------------------- users

    _USER_COLUMNS = (
        "u.id, u.uid, u.username, u.disabled, u.token_version, u.created_at, u.updated_at, "
        "u.password_changed_at, u.last_login_at, "
        "(SELECT group_concat(name, ',') FROM (SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
        "WHERE ur.user_id = u.id ORDER BY r.name)), u.password_hash"
    )

    @staticmethod
    def _user(row: Sequence[Any]) -> User:
        return User(
            id=row[0], uid=row[1], username=row[2], disabled=bool(row[3]), token_version=row[4],
            created_at=row[5], updated_at=row[6], password_changed_at=row[7], last_login_at=row[8],
            roles=tuple(row[9].split(",")) if row[9] else (), password_hash=row[10],
        )

    def find_user(self, name: str) -> User | None:
        try:
            key = username_key(name)
        except InvalidInput:
            return None
        row = self.conn.execute(
            f"SELECT {self._USER_COLUMNS} FROM users u WHERE u.username_key = ?", (key,)
        ).fetchone()
        return self._user(row) if row else None

    def get_user(self, name: str) -> User:
        user = self.find_user(name)
        if user is None:
            raise NotFound(f"no user named {quoted(name)}")
        return user

    def find_user_by_uid(self, uid: str) -> User | None:
        row = self.conn.execute(f"SELECT {self._USER_COLUMNS} FROM users u WHERE u.uid = ?", (uid,)).fetchone()
        return self._user(row) if row else None

    def find_look_alike(self, name: str) -> User | None:
        """Another user whose name has the same UTS #39 skeleton as ``name`` (one indexed lookup)."""
        key = username_key(name)
        row = self.conn.execute(
            f"SELECT {self._USER_COLUMNS} FROM users u WHERE u.username_skeleton = ? AND u.username_key != ? LIMIT 1",
            (skeleton(name), key),
        ).fetchone()
        return self._user(row) if row else None

    def refuse_look_alike(self, username: str) -> str:
        """The skeleton of a new name, or Conflict naming the existing user it looks like."""
        other = self.find_look_alike(username)
        if other is not None:
            raise Conflict(
                f"user {shown_name(username)} looks like existing user {shown_name(other.username)} "
                "(Unicode confusables); choose another name"
            )
        return skeleton(username)

    def add_user(
        self, name: str, password_hash: str | None, roles: Iterable[str] = (), *, disabled: bool = False,
        allow_mixed_script: bool = False,
    ) -> User:
        username = new_username(name, allow_mixed_script=allow_mixed_script)
        now = utcnow()
        with self.transaction():
            role_ids = [self._role_id(role) for role in roles]
            if self.find_user(username) is not None:
                raise Conflict(f"user {username!r} already exists")
            shape = self.refuse_look_alike(username)
            try:
                cursor = self.conn.execute(
                    "INSERT INTO users (uid, username, username_key, username_skeleton, password_hash, disabled, "
                    "token_version, created_at, updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (uuid.uuid4().hex, username, username_key(username), shape, password_hash, int(disabled), now,
                     now, now if password_hash else None),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"user {username!r} already exists") from None
            for role_id in role_ids:
                self.conn.execute("INSERT OR IGNORE INTO user_roles VALUES (?, ?)", (cursor.lastrowid, role_id))
            self._audit("user.add", username, {"roles": sorted(roles), "disabled": disabled})
        return self.get_user(username)

    def add_users(
        self, records: Sequence[tuple[str, str, Sequence[str], bool]], *, allow_mixed_script: bool = False
    ) -> int:
        """Bulk add (username, hash, roles, disabled) in one transaction: all or nothing."""
        now = utcnow()
        with self.transaction():
            role_ids = {row[0]: row[1] for row in self.conn.execute("SELECT name, id FROM roles")}
            for username, password_hash, roles, disabled in records:
                username = new_username(username, allow_mixed_script=allow_mixed_script)
                if self.find_user(username) is not None:
                    raise Conflict(f"user {username!r} already exists")
                shape = self.refuse_look_alike(username)  # also against the rows inserted before it
                try:
                    cursor = self.conn.execute(
                        "INSERT INTO users (uid, username, username_key, username_skeleton, password_hash, disabled, "
                        "token_version, created_at, updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                        (uuid.uuid4().hex, username, username_key(username), shape, password_hash, int(disabled), now,
                         now, now),
                    )
                except sqlite3.IntegrityError:
                    raise Conflict(f"user {username!r} already exists") from None
                for role in roles:
                    if role not in role_ids:
                        raise NotFound(f"no role named {quoted(role)}")
                    self.conn.execute("INSERT OR IGNORE INTO user_roles VALUES (?, ?)", (cursor.lastrowid, role_ids[role]))
            self._audit("user.import", f"{len(records)} users", {"count": len(records)})
        return len(records)

    def list_users(
        self, *, role: str | None = None, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[User]:
        clauses: list[str] = []
        params: list[Any] = []
        if role is not None:
            clauses.append("u.id IN (SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = ?)")
            params.append(role)
        if status is not None:
            if status not in ("active", "disabled"):
                raise InvalidInput(f"unknown status {status[:20]!r}: use active or disabled")
            clauses.append("u.disabled = ?")
            params.append(int(status == "disabled"))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {self._USER_COLUMNS} FROM users u {where} ORDER BY u.username_key LIMIT ? OFFSET ?"
        rows = self.conn.execute(sql, (*params, -1 if limit is None else limit, offset))
        return [self._user(row) for row in rows]

    def _update_user(self, name: str, action: str, sql: str, params: tuple = (), details: dict | None = None) -> User:
        user = self.get_user(name)
        with self.transaction():
            self.conn.execute(f"UPDATE users SET {sql}, updated_at = ? WHERE id = ?", (*params, utcnow(), user.id))
            self._audit(action, user.username, details)
        return self.get_user(user.username)

    def set_password_hash(self, name: str, password_hash: str, *, reason: str = "user.passwd") -> User:
        """A new password also ends every earlier token (token version bump)."""
        now = utcnow()
        return self._update_user(
            name, reason, "password_hash = ?, password_changed_at = ?, token_version = token_version + 1",
            (password_hash, now),
        )

    def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Swap an outdated hash after a successful login; no token bump, no race with a passwd."""
        with self.transaction():
            cursor = self.conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", (new_hash, user_id, old_hash)
            )
            if cursor.rowcount:
                self._audit("user.rehash", str(user_id), {}, actor="login")
        return bool(cursor.rowcount)

    def set_disabled(self, name: str, disabled: bool) -> User:
        return self._update_user(name, "user.disable" if disabled else "user.enable", "disabled = ?", (int(disabled),))

    def bump_token_version(self, name: str) -> User:
        return self._update_user(name, "user.logout", "token_version = token_version + 1")

    def record_login(self, user_id: int) -> None:
        with self.transaction():
            self.conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (utcnow(), user_id))

    def remove_user(self, name: str) -> None:
        user = self.get_user(name)
        with self.transaction():
            self.conn.execute("DELETE FROM user_roles WHERE user_id = ?", (user.id,))
            self.conn.execute("DELETE FROM expectations WHERE username = ?", (user.username,))
            self.conn.execute("DELETE FROM login_attempts WHERE username_key = ?", (username_key(user.username),))
            self.conn.execute("DELETE FROM users WHERE id = ?", (user.id,))
            self._audit("user.remove", user.username)

    def assign(self, name: str, roles: Sequence[str]) -> User:
        user = self.get_user(name)
        with self.transaction():
            for role in roles:
                cursor = self.conn.execute(
                    "INSERT OR IGNORE INTO user_roles VALUES (?, ?)", (user.id, self._role_id(role))
                )
                if cursor.rowcount:
                    self._audit("user.assign", user.username, {"role": role})
        return self.get_user(user.username)

    def unassign(self, name: str, roles: Sequence[str]) -> User:
        user = self.get_user(name)
        with self.transaction():
            for role in roles:
                cursor = self.conn.execute(
                    "DELETE FROM user_roles WHERE user_id = ? AND role_id = ?", (user.id, self._role_id(role))
                )
                if not cursor.rowcount:
                    raise NotFound(f"user {user.username!r} does not have role {role!r}")
                self._audit("user.unassign", user.username, {"role": role})
        return self.get_user(user.username)

    def access(self, user: User) -> Access:
        """Roles (direct and inherited, cycles impossible) and effective permissions.

        Remembered until the database changes (any commit, from any connection, moves
        the change stamp), so a request pays for the role walk only after a change.
        """
        stamp = self.change_stamp()
        local = self._local
        if local.access_stamp != stamp:
            local.access_cache = {}
            local.access_stamp = stamp
        cache = local.access_cache
        cached = cache.get(user.id)
        if cached is not None and cached.direct_roles == user.roles:
            return cached
        access = self._load_access(user)
        if len(cache) >= ACCESS_CACHE_SIZE:
            cache.clear()
        cache[user.id] = access
        return access

    def _load_access(self, user: User) -> Access:
        rows = self.conn.execute(_ACCESS_SQL, (user.id,)).fetchall()
        roles: dict[str, str | None] = {}
        permissions: dict[str, str] = {}
        for role, via, permission in rows:
            roles.setdefault(role, via)
            if permission is not None:
                permissions.setdefault(permission, role)
        return Access(direct_roles=user.roles, roles=roles, permissions=permissions)

    def user_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM users").fetchone()[0]

    # ----------------------------------------------------------------- login throttling

    def login_failures(self, key: str) -> tuple[int, bool]:
        row = self.conn.execute(
            "SELECT failures, locked FROM login_attempts WHERE username_key = ?", (key,)
        ).fetchone()
        return (row[0], bool(row[1])) if row else (0, False)

    def record_login_failure(self, key: str, now: float, lock_after: int) -> tuple[int, bool]:
        """Atomically count one failure; returns (failures, locked)."""
        with self.transaction():
            failures, locked = self.conn.execute(
                "INSERT INTO login_attempts (username_key, failures, last_failure_at, locked) VALUES (?, 1, ?, 0) "
                "ON CONFLICT(username_key) DO UPDATE SET failures = failures + 1, last_failure_at = excluded.last_failure_at "
                "RETURNING failures, locked",
                (key, now),
            ).fetchone()
            if lock_after and failures >= lock_after and not locked:
                self.conn.execute("UPDATE login_attempts SET locked = 1 WHERE username_key = ?", (key,))
                self._audit("user.lock", key, {"failures": failures}, actor="login")
                locked = True
        return failures, bool(locked)

    def clear_login_failures(self, key: str) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM login_attempts WHERE username_key = ? AND locked = 0", (key,))

    def unlock(self, name: str) -> User:
        user = self.get_user(name)
        with self.transaction():
            self.conn.execute("DELETE FROM login_attempts WHERE username_key = ?", (username_key(user.username),))
            self._audit("user.unlock", user.username)
        return user

    # ----------------------------------------------------------------- roles

    def _role_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM roles WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no role named {quoted(name)}")
        return row[0]

    def add_role(self, name: str, description: str = "", inherits: Sequence[str] = ()) -> Role:
        validate_role(name)
        with self.transaction():
            try:
                self.conn.execute(
                    "INSERT INTO roles (name, description, created_at) VALUES (?, ?, ?)", (name, description, utcnow())
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"role {name!r} already exists") from None
            self._audit("role.add", name, {"description": description})
            self.include_roles(name, inherits)
        return self.get_role(name)

    def include_roles(self, name: str, included: Sequence[str]) -> None:
        """Make ``name`` inherit every permission of ``included``; cycles are refused."""
        with self.transaction():
            role_id = self._role_id(name)
            for other in included:
                other_id = self._role_id(other)
                if other_id == role_id or role_id in self._included_closure(other_id):
                    raise Conflict(f"role {other!r} already includes {name!r}; inheriting it would make a cycle")
                cursor = self.conn.execute("INSERT OR IGNORE INTO role_inherits VALUES (?, ?)", (role_id, other_id))
                if cursor.rowcount:
                    self._audit("role.inherit", name, {"includes": other})

    def exclude_roles(self, name: str, included: Sequence[str]) -> None:
        with self.transaction():
            role_id = self._role_id(name)
            for other in included:
                cursor = self.conn.execute(
                    "DELETE FROM role_inherits WHERE role_id = ? AND included_id = ?", (role_id, self._role_id(other))
                )
                if not cursor.rowcount:
                    raise NotFound(f"role {name!r} does not inherit {other!r}")
                self._audit("role.uninherit", name, {"includes": other})

    def _included_closure(self, role_id: int) -> set[int]:
        rows = self.conn.execute(
            "WITH RECURSIVE c(id) AS (SELECT ? UNION SELECT ri.included_id FROM role_inherits ri JOIN c ON ri.role_id = c.id) "
            "SELECT id FROM c",
            (role_id,),
        )
        return {row[0] for row in rows}

    def get_role(self, name: str) -> Role:
        role_id = self._role_id(name)
        return self._role_record(role_id)

    def _role_record(self, role_id: int) -> Role:
        name, description, created_at = self.conn.execute(
            "SELECT name, description, created_at FROM roles WHERE id = ?", (role_id,)
        ).fetchone()
        permissions = tuple(
            row[0] for row in self.conn.execute(
                "SELECT p.name FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id "
                "WHERE rp.role_id = ? ORDER BY p.name", (role_id,)
            )
        )
        inherits = tuple(
            row[0] for row in self.conn.execute(
                "SELECT r.name FROM role_inherits ri JOIN roles r ON r.id = ri.included_id WHERE ri.role_id = ? ORDER BY r.name",
                (role_id,),
            )
        )
        members = self.conn.execute("SELECT count(*) FROM user_roles WHERE role_id = ?", (role_id,)).fetchone()[0]
        return Role(name, description or "", created_at, permissions, inherits, members)

    def list_roles(self) -> list[Role]:
        return [self._role_record(row[0]) for row in self.conn.execute("SELECT id FROM roles ORDER BY name").fetchall()]

    def role_permissions(self, name: str) -> dict[str, str]:
        """Effective permissions of a role (its own and inherited) -> granting role."""
        rows = self.conn.execute(
            "WITH RECURSIVE c(id) AS (SELECT id FROM roles WHERE name = ? "
            "UNION SELECT ri.included_id FROM role_inherits ri JOIN c ON ri.role_id = c.id) "
            "SELECT p.name, r.name FROM c JOIN roles r ON r.id = c.id "
            "JOIN role_permissions rp ON rp.role_id = c.id JOIN permissions p ON p.id = rp.permission_id",
            (name,),
        )
        result: dict[str, str] = {}
        for permission, role in rows:
            result.setdefault(permission, role)
        return result

    def remove_role(self, name: str, *, force: bool = False) -> int:
        """Remove a role; an assigned or inherited role needs ``force`` and cascades. Returns users affected."""
        with self.transaction():
            role = self.get_role(name)
            role_id = self._role_id(name)
            includers = self.conn.execute(
                "SELECT count(*) FROM role_inherits WHERE included_id = ?", (role_id,)
            ).fetchone()[0]
            if (role.members or includers) and not force:
                raise Conflict(
                    f"role {name!r} is assigned to {role.members} user(s) and inherited by {includers} role(s)",
                    hint="force",
                )
            self.conn.execute("DELETE FROM user_roles WHERE role_id = ?", (role_id,))
            self.conn.execute("DELETE FROM role_inherits WHERE role_id = ? OR included_id = ?", (role_id, role_id))
            self.conn.execute("DELETE FROM role_permissions WHERE role_id = ?", (role_id,))
            self.conn.execute("DELETE FROM roles WHERE id = ?", (role_id,))
            self._audit("role.remove", name, {"members": role.members, "force": force})
        return role.members

    def grant(self, role: str, permissions: Sequence[str]) -> Role:
        for permission in permissions:
            validate_permission(permission)
        with self.transaction():
            role_id = self._role_id(role)
            for permission in permissions:
                self.conn.execute("INSERT OR IGNORE INTO permissions (name) VALUES (?)", (permission,))
                permission_id = self.conn.execute(
                    "SELECT id FROM permissions WHERE name = ?", (permission,)
                ).fetchone()[0]
                cursor = self.conn.execute("INSERT OR IGNORE INTO role_permissions VALUES (?, ?)", (role_id, permission_id))
                if cursor.rowcount:
                    self._audit("role.grant", role, {"permission": permission})
        return self.get_role(role)

    def revoke(self, role: str, permissions: Sequence[str]) -> Role:
        with self.transaction():
            role_id = self._role_id(role)
            for permission in permissions:
                cursor = self.conn.execute(
                    "DELETE FROM role_permissions WHERE role_id = ? AND permission_id = "
                    "(SELECT id FROM permissions WHERE name = ?)", (role_id, permission)
                )
                if not cursor.rowcount:
                    raise NotFound(f"role {role!r} is not granted {quoted(permission)}")
                self._audit("role.revoke", role, {"permission": permission})
        return self.get_role(role)

    def list_permissions(self) -> list[Permission]:
        rows = self.conn.execute(
            "SELECT p.name, (SELECT group_concat(name, ',') FROM (SELECT r.name FROM role_permissions rp "
            "JOIN roles r ON r.id = rp.role_id WHERE rp.permission_id = p.id ORDER BY r.name)) "
            "FROM permissions p ORDER BY p.name"
        )
        return [Permission(name, tuple(roles.split(",")) if roles else ()) for name, roles in rows]

    # ----------------------------------------------------------------- audit log

    def audit_log(self, *, limit: int = 50, action: str | None = None, target: str | None = None) -> list[AuditEntry]:
        clauses, params = [], []
        if action:  # an action (user.add) or its group (user); no wildcards from the input
            clauses.append("(action = ? OR substr(action, 1, ?) = ?)")
            params += [action, len(action) + 1, f"{action}."]
        if target:
            clauses.append("target = ?")
            params.append(target)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.conn.execute(
            f"SELECT id, at, actor, action, target, details FROM audit_log {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) for r in rows]

    # ----------------------------------------------------------------- signing keys

    def add_key(self, key: SigningKey, *, make_active: bool = True) -> None:
        with self.transaction():
            same = self.conn.execute(
                "SELECT kid, status FROM signing_keys WHERE fingerprint = ?", (key.fingerprint,)
            ).fetchone()
            if same is not None:  # one key, one kid: importing it again changes nothing
                raise Conflict(f"this key is already there as {same[0]} ({same[1]}); nothing was changed")
            if make_active:
                self.conn.execute("UPDATE signing_keys SET status = 'verifying' WHERE status = 'active'")
            try:
                self.conn.execute(
                    "INSERT INTO signing_keys (kid, alg, status, created_at, retired_at, fingerprint, public_jwk, "
                    "private_material) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                    (key.kid, key.alg, "active" if make_active else key.status, key.created_at, key.fingerprint,
                     json.dumps(key.public_jwk, sort_keys=True), key.private_material),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"a key with kid {key.kid!r} already exists") from None
            self._audit("key.add", key.kid, {"alg": key.alg, "fingerprint": key.fingerprint})

    def keys(self) -> list[SigningKey]:
        rows = self.conn.execute(
            "SELECT kid, alg, status, created_at, retired_at, fingerprint, public_jwk, private_material "
            "FROM signing_keys ORDER BY created_at, rowid"
        )
        return [SigningKey(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), bytes(r[7])) for r in rows]

    def retire_key(self, kid: str) -> None:
        with self.transaction():
            row = self.conn.execute("SELECT status FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
            if row is None:
                raise NotFound(f"no key with kid {quoted(kid)}")
            if row[0] == "active":
                raise Conflict(f"key {kid!r} is the active signing key; `authctl key rotate` first")
            if row[0] == "retired":
                raise Conflict(f"key {kid!r} is already retired")
            self.conn.execute(
                "UPDATE signing_keys SET status = 'retired', retired_at = ? WHERE kid = ?", (utcnow(), kid)
            )
            self._audit("key.retire", kid)

    def keys_version(self) -> int:
        """Changes whenever the key set changes (cheap cache invalidation for verifiers)."""
        row = self.conn.execute(
            "SELECT count(*), group_concat(kid || status, ',') FROM signing_keys"
        ).fetchone()
        return hash(row)

    # ----------------------------------------------------------------- targets

    def add_target(self, name: str, config_doc: dict[str, Any], secret: bytes) -> None:
        """Store a target; its secret (key, passwords) is a blob no listing, log or JSON reads."""
        with self.transaction():
            try:
                self.conn.execute(
                    "INSERT INTO targets (name, config, secret, created_at) VALUES (?, ?, ?, ?)",
                    (name, json.dumps(config_doc, sort_keys=True), secret, utcnow()),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"a target named {name!r} already exists") from None
            self._audit("target.add", name, {"mode": config_doc.get("mode"), "send": config_doc.get("send")})

    def target_rows(self, name: str | None = None) -> list[tuple[str, dict[str, Any], bytes, str]]:
        """(name, config, secret, created_at) of one target or all, by name."""
        sql = "SELECT name, config, secret, created_at FROM targets"
        rows = self.conn.execute(sql + (" WHERE name = ?" if name is not None else " ORDER BY name"),
                                 (name,) if name is not None else ())
        return [(r[0], json.loads(r[1]), bytes(r[2]), r[3]) for r in rows]

    def update_target(self, name: str, config_doc: dict[str, Any], secret: bytes | None = None) -> None:
        """Replace a target's configuration, and its secret when one is given (``None`` keeps it)."""
        with self.transaction():
            if secret is None:
                done = self.conn.execute("UPDATE targets SET config = ? WHERE name = ?",
                                         (json.dumps(config_doc, sort_keys=True), name))
            else:
                done = self.conn.execute("UPDATE targets SET config = ?, secret = ? WHERE name = ?",
                                         (json.dumps(config_doc, sort_keys=True), secret, name))
            if done.rowcount == 0:
                raise NotFound(f"no target named {quoted(name)}")
            self._audit("target.change", name, {"mode": config_doc.get("mode"), "send": config_doc.get("send"),
                                                "secret": secret is not None})

    def remove_target(self, name: str) -> None:
        with self.transaction():
            if self.conn.execute("DELETE FROM targets WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no target named {quoted(name)}")
            self._audit("target.remove", name)

    # ----------------------------------------------------------------- revocations

    def revoke_jti(self, jti: str, expires_at: int, reason: str = "") -> bool:
        import time

        with self.transaction():
            # kept past exp for the longest leeway a verifier may allow: until then the token could still pass
            self.conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (int(time.time()) - MAX_LEEWAY_S,))
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?)",
                (jti, int(expires_at), utcnow(), reason),
            )
            if cursor.rowcount:
                self._audit("token.revoke", jti, {"reason": reason, "expires_at": int(expires_at)})
        return bool(cursor.rowcount)

    def is_revoked(self, jti: str) -> bool:
        return self.conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone() is not None

    def change_stamp(self) -> tuple[int, int, int]:
        """Differs whenever any connection has committed a change since the last call.

        ``data_version`` moves on other connections' commits, ``total_changes`` on this
        one's; together a cheap test for "keys, settings or revocations may have changed".
        Both count per connection, so the stamp names this thread's connection too.
        """
        conn = self.conn
        return self._local.serial, conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes

    def token_state(self, jti: str, sub: str, *, by: str = "uid") -> tuple[tuple[int, int, int], bool, User | None]:
        """What a verifier needs, in one statement: (change stamp, is ``jti`` revoked, the subject or None).

        ``by`` is ``uid`` or ``username`` (the ``sub_claim`` setting). One round trip on every
        request instead of three; the stamp tells the caller whether its cached keys and
        settings are still current.
        """
        if by == "uid":
            column, value = "uid", sub
        else:
            try:
                column, value = "username_key", username_key(sub)
            except InvalidInput:
                column, value = "username_key", None
        conn = self.conn
        row = conn.execute(
            f"SELECT dv.data_version, EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?), {self._USER_COLUMNS} "
            f"FROM pragma_data_version AS dv LEFT JOIN users u ON u.{column} = ?",
            (jti, value),
        ).fetchone()
        user = self._user(row[2:]) if row[2] is not None else None
        return (self._local.serial, row[0], conn.total_changes), bool(row[1]), user

    # ----------------------------------------------------------------- refresh-token families

    def record_refresh(self, jti: str, family: str, user_id: int, expires_at: int, *, access_jti: str | None = None,
                       access_expires_at: int | None = None) -> None:
        """Remember a refresh token of ``family`` (and the access token issued with it).

        The access token is recorded as already used: it can never be rotated, but a
        reuse of the family's refresh token revokes it too.
        """
        with self.transaction():
            self.conn.execute(
                "INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES (?, ?, ?, ?)",
                (jti, family, user_id, int(expires_at)),
            )
            if access_jti is not None:
                self.conn.execute(
                    "INSERT INTO refresh_tokens (jti, family, user_id, expires_at, used_at) VALUES (?, ?, ?, ?, ?)",
                    (access_jti, family, user_id, int(access_expires_at or expires_at), utcnow()),
                )

    def use_refresh(self, jti: str) -> tuple[str | None, bool]:
        """Mark a refresh token used, atomically: (family, first use?). Unknown jti: (None, False)."""
        with self.transaction():
            row = self.conn.execute("SELECT family FROM refresh_tokens WHERE jti = ?", (jti,)).fetchone()
            if row is None:
                return None, False
            cursor = self.conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE jti = ? AND used_at IS NULL", (utcnow(), jti)
            )
        return row[0], bool(cursor.rowcount)

    def revoke_family(self, family: str, reason: str = "refresh token reused") -> int:
        """Revoke every token of a refresh family (reuse of a rotated token means theft)."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT jti, expires_at FROM refresh_tokens WHERE family = ?", (family,)
            ).fetchall()
            for jti, expires_at in rows:
                self.conn.execute(
                    "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?)",
                    (jti, expires_at, utcnow(), reason),
                )
            self.conn.execute("UPDATE refresh_tokens SET used_at = coalesce(used_at, ?) WHERE family = ?", (utcnow(), family))
            self._audit("token.revoke_family", family, {"tokens": len(rows), "reason": reason}, actor="api")
        return len(rows)


    # ----------------------------------------------------------------- policy file: expectations, summary

    def expectations(self) -> dict[tuple[str, str], str]:
        """(``"METHOD /path"``, username) -> expected outcome, as ``policy apply`` stored them."""
        rows = self.conn.execute("SELECT route, username, expected FROM expectations ORDER BY route, username")
        return {(route, username): expected for route, username, expected in rows}

    def set_expectation(self, route: str, username: str, expected: str | None) -> None:
        """Store one expectation (``None`` removes it), audit-logged."""
        with self.transaction():
            if expected is None:
                self.conn.execute("DELETE FROM expectations WHERE route = ? AND username = ?", (route, username))
            else:
                self.conn.execute(
                    "INSERT INTO expectations (route, username, expected) VALUES (?, ?, ?) "
                    "ON CONFLICT(route, username) DO UPDATE SET expected = excluded.expected",
                    (route, username, expected),
                )
            self._audit("expect.set" if expected is not None else "expect.remove", route,
                        {"user": username, "expected": expected})

    def set_role_description(self, name: str, description: str) -> None:
        with self.transaction():
            old = self.get_role(name).description
            self.conn.execute("UPDATE roles SET description = ? WHERE name = ?", (description, name))
            self._audit("role.describe", name, {"old": old, "new": description})

    def record(self, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        """An audit-log row of its own (a summary such as ``policy.apply``), in the current transaction."""
        with self.transaction():
            self._audit(action, target, details)


_ACCESS_SQL = """
WITH RECURSIVE closure(role_id, via) AS (
    SELECT role_id, NULL FROM user_roles WHERE user_id = ?
    UNION
    SELECT ri.included_id, r.name FROM role_inherits ri
    JOIN closure c ON ri.role_id = c.role_id JOIN roles r ON r.id = c.role_id
)
SELECT r.name, c.via, p.name
FROM closure c JOIN roles r ON r.id = c.role_id
LEFT JOIN role_permissions rp ON rp.role_id = c.role_id
LEFT JOIN permissions p ON p.id = rp.permission_id
ORDER BY c.via IS NOT NULL, r.name, p.name
"""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"
