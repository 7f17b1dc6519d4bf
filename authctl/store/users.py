"""Users: names, passwords, status, role assignments, and the access (roles + permissions) cache."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..clock import utcnow
from ..errors import Conflict, InvalidInput, NotFound
from ..names import new_username, quoted, shown_name, skeleton, username_key
from .base import Base
from .records import Access, User

ACCESS_CACHE_SIZE = 4096
BULK_STATISTICS_ROWS = 1000  # from this many users added at once, PostgreSQL re-reads the tables' statistics

USER_COLUMNS = (
    "u.id, u.uid, u.username, u.disabled, u.token_version, u.created_at, u.updated_at, "
    "u.password_changed_at, u.last_login_at, "
    "(SELECT group_concat(name, ',') FROM (SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
    "WHERE ur.user_id = u.id ORDER BY r.name) AS role_names_of), u.password_hash"
)

_ACCESS_SQL = """
WITH RECURSIVE closure(role_id, via) AS (
    SELECT role_id, CAST(NULL AS TEXT) FROM user_roles WHERE user_id = ?
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


def user_record(row: Sequence[Any]) -> User:
    return User(
        id=row[0], uid=row[1], username=row[2], disabled=bool(row[3]), token_version=row[4],
        created_at=row[5], updated_at=row[6], password_changed_at=row[7], last_login_at=row[8],
        roles=tuple(row[9].split(",")) if row[9] else (), password_hash=row[10],
    )


class Users(Base):
    _caches: threading.local

    if TYPE_CHECKING:  # from Roles; Store joins the two
        def _role_id(self, name: str) -> int: ...

    def find_user(self, name: str) -> User | None:
        try:
            key = username_key(name)
        except InvalidInput:
            return None
        row = self._x(f"SELECT {USER_COLUMNS} FROM users u WHERE u.username_key = ?", (key,)).fetchone()
        return user_record(row) if row else None

    def get_user(self, name: str) -> User:
        user = self.find_user(name)
        if user is None:
            raise NotFound(f"no user named {quoted(name)}")
        return user

    def find_user_by_uid(self, uid: str) -> User | None:
        row = self._x(f"SELECT {USER_COLUMNS} FROM users u WHERE u.uid = ?", (uid,)).fetchone()
        return user_record(row) if row else None

    def find_look_alike(self, name: str) -> User | None:
        """Another user whose name has the same UTS #39 skeleton as ``name`` (one indexed lookup)."""
        key = username_key(name)
        row = self._x(
            f"SELECT {USER_COLUMNS} FROM users u WHERE u.username_skeleton = ? AND u.username_key != ? LIMIT 1",
            (skeleton(name), key),
        ).fetchone()
        return user_record(row) if row else None

    def refuse_look_alike(self, username: str) -> str:
        """The skeleton of a new name, or Conflict naming the existing user it looks like."""
        other = self.find_look_alike(username)
        if other is not None:
            raise Conflict(
                f"user {shown_name(username)} looks like existing user {shown_name(other.username)} "
                "(Unicode confusables); choose another name"
            )
        return skeleton(username)

    def _insert_user(self, username: str, password_hash: str | None, role_ids: Iterable[int], *, disabled: bool,
                     now: str, password_changed_at: str | None) -> int:
        """The one user INSERT (single add and import): refuses a taken or look-alike name; the new id."""
        if self.find_user(username) is not None:
            raise Conflict(f"user {username!r} already exists")
        shape = self.refuse_look_alike(username)  # also against rows inserted earlier in this transaction
        try:
            user_id = self._x(
                "INSERT INTO users (uid, username, username_key, username_skeleton, password_hash, disabled, "
                "token_version, created_at, updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?) "
                "RETURNING id",
                (uuid.uuid4().hex, username, username_key(username), shape, password_hash, int(disabled), now, now,
                 password_changed_at),
            ).fetchone()[0]
        except self._integrity:
            raise Conflict(f"user {username!r} already exists") from None
        for role_id in role_ids:
            self._x("INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?, ?)", (user_id, role_id))
        return user_id

    def add_user(
        self, name: str, password_hash: str | None, roles: Iterable[str] = (), *, disabled: bool = False,
        allow_mixed_script: bool = False,
    ) -> User:
        username = new_username(name, allow_mixed_script=allow_mixed_script)
        roles = list(roles)
        now = utcnow()
        with self.transaction():
            role_ids = [self._role_id(role) for role in roles]
            self._insert_user(username, password_hash, role_ids, disabled=disabled, now=now,
                              password_changed_at=now if password_hash else None)
            self._audit("user.add", username, {"roles": sorted(roles), "disabled": disabled})
        return self.get_user(username)

    def add_users(
        self, records: Sequence[tuple[str, str | None, Sequence[str], bool]], *, allow_mixed_script: bool = False
    ) -> int:
        """Bulk add (username, hash or None for no password, roles, disabled) in one transaction: all or nothing."""
        now = utcnow()
        with self.transaction():
            role_ids = {row[0]: row[1] for row in self._x("SELECT name, id FROM roles")}
            for username, password_hash, roles, disabled in records:
                username = new_username(username, allow_mixed_script=allow_mixed_script)
                for role in roles:
                    if role not in role_ids:
                        raise NotFound(f"no role named {quoted(role)}")
                self._insert_user(username, password_hash, [role_ids[r] for r in roles], disabled=disabled,
                                  now=now, password_changed_at=now if password_hash else None)
            self._audit("user.import", f"{len(records)} users", {"count": len(records)})
        if len(records) >= BULK_STATISTICS_ROWS:
            self.engine.refresh_statistics(["users", "user_roles"])
        return len(records)

    def list_users(
        self, *, role: str | None = None, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[User]:
        where, params = _user_filter(role, status)
        if limit is None:
            sql = f"SELECT {USER_COLUMNS} FROM users u {where} ORDER BY u.username_key LIMIT {self.engine.no_limit} OFFSET ?"
            rows = self._x(sql, (*params, offset))
        else:
            sql = f"SELECT {USER_COLUMNS} FROM users u {where} ORDER BY u.username_key LIMIT ? OFFSET ?"
            rows = self._x(sql, (*params, limit, offset))
        return [user_record(row) for row in rows]

    def _update_user(self, name: str, action: str, sql: str, params: tuple = (), details: dict | None = None) -> User:
        user = self.get_user(name)
        with self.transaction():
            self._x(f"UPDATE users SET {sql}, updated_at = ? WHERE id = ?", (*params, utcnow(), user.id))
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
            cursor = self._x(
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
            self._x("UPDATE users SET last_login_at = ? WHERE id = ?", (utcnow(), user_id))

    def remove_user(self, name: str) -> None:
        user = self.get_user(name)
        with self.transaction():
            self._x("DELETE FROM user_roles WHERE user_id = ?", (user.id,))
            self._x("DELETE FROM expectations WHERE username = ?", (user.username,))
            self._x("DELETE FROM login_attempts WHERE username_key = ?", (username_key(user.username),))
            self._x("DELETE FROM users WHERE id = ?", (user.id,))
            self._audit("user.remove", user.username)

    def assign(self, name: str, roles: Sequence[str]) -> User:
        user = self.get_user(name)
        with self.transaction():
            for role in roles:
                cursor = self._x(
                    "INSERT OR IGNORE INTO user_roles (user_id, role_id) VALUES (?, ?)", (user.id, self._role_id(role))
                )
                if cursor.rowcount:
                    self._audit("user.assign", user.username, {"role": role})
        return self.get_user(user.username)

    def unassign(self, name: str, roles: Sequence[str]) -> User:
        user = self.get_user(name)
        with self.transaction():
            for role in roles:
                cursor = self._x(
                    "DELETE FROM user_roles WHERE user_id = ? AND role_id = ?", (user.id, self._role_id(role))
                )
                if not cursor.rowcount:
                    raise NotFound(f"user {user.username!r} does not have role {role!r}")
                self._audit("user.unassign", user.username, {"role": role})
        return self.get_user(user.username)

    def access(self, user: User) -> Access:
        """Roles (direct and inherited, cycles impossible) and effective permissions.

        Remembered until the database changes (any commit, from any connection or process,
        moves the change stamp), so a request pays for the role walk only after a change.
        """
        stamp = self.change_stamp()
        local = self._caches
        if getattr(local, "access_stamp", None) != stamp:
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
        rows = self._x(_ACCESS_SQL, (user.id,)).fetchall()
        roles: dict[str, str | None] = {}
        permissions: dict[str, str] = {}
        for role, via, permission in rows:
            roles.setdefault(role, via)
            if permission is not None:
                permissions.setdefault(permission, role)
        return Access(direct_roles=user.roles, roles=roles, permissions=permissions)

    def user_count(self, *, role: str | None = None, status: str | None = None) -> int:
        """How many users ``list_users`` would list with the same filters, counted by the database."""
        where, params = _user_filter(role, status)
        return self._x(f"SELECT count(*) FROM users u {where}", params).fetchone()[0]


def _user_filter(role: str | None, status: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (and its parameters) of a user listing: direct role, active or disabled."""
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
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
