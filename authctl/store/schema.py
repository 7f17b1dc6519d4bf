"""One schema, one ordered list of migrations, for every engine.

Each migration receives the engine's schema builder (``SqliteSchema`` / ``PostgresSchema``
in ``engines.py``): ``create_table``, ``create_index``, ``add_column``, ``has_column`` and
``execute`` (portable SQL, see ``engines.pg_sql``). A migration is idempotent where an older file
may already hold its change.
"""

from __future__ import annotations

from typing import Any

from ..errors import DatabaseError, InvalidInput
from ..names import skeleton, username_key


def _migration_1(db: Any) -> None:
    """Users, roles, permissions, grants, inheritance, assignments, settings, audit."""
    db.create_table(
        "users",
        {
            "id": int, "uid": str, "username": str, "username_key": str, "password_hash": str,
            "disabled": int, "token_version": int, "created_at": str, "updated_at": str,
            "password_changed_at": str, "last_login_at": str,
        },
        pk="id", not_null={"uid", "username", "username_key", "disabled", "token_version"},
        defaults={"disabled": 0, "token_version": 1},
    )
    db.create_index("users", ["username_key"], unique=True)
    db.create_index("users", ["uid"], unique=True)
    db.create_table("roles", {"id": int, "name": str, "description": str, "created_at": str},
                    pk="id", not_null={"name"}, defaults={"description": ""})
    db.create_index("roles", ["name"], unique=True)
    db.create_table("permissions", {"id": int, "name": str}, pk="id", not_null={"name"})
    db.create_index("permissions", ["name"], unique=True)
    db.create_table("role_permissions", {"role_id": int, "permission_id": int}, pk=("role_id", "permission_id"),
                    foreign_keys=[("role_id", "roles", "id"), ("permission_id", "permissions", "id")])
    db.create_table("role_inherits", {"role_id": int, "included_id": int}, pk=("role_id", "included_id"),
                    foreign_keys=[("role_id", "roles", "id"), ("included_id", "roles", "id")])
    db.create_table("user_roles", {"user_id": int, "role_id": int}, pk=("user_id", "role_id"),
                    foreign_keys=[("user_id", "users", "id"), ("role_id", "roles", "id")])
    db.create_index("user_roles", ["role_id"])
    db.create_table("settings", {"key": str, "value": str}, pk="key")
    db.create_table("audit_log", {"id": int, "at": str, "actor": str, "action": str, "target": str, "details": str},
                    pk="id")


def _migration_2(db: Any) -> None:
    """Signing keys, token revocations and login throttling."""
    db.create_table(
        "signing_keys",
        {
            "kid": str, "alg": str, "status": str, "created_at": str, "retired_at": str,
            "fingerprint": str, "public_jwk": str, "private_material": bytes,
        },
        pk="kid", not_null={"alg", "status", "private_material"},
    )
    db.create_table("revoked_tokens", {"jti": str, "expires_at": int, "revoked_at": str, "reason": str}, pk="jti")
    db.create_index("revoked_tokens", ["expires_at"])
    db.create_table("login_attempts", {"username_key": str, "failures": int, "last_failure_at": float, "locked": int},
                    pk="username_key", defaults={"failures": 0, "locked": 0})


def _migration_3(db: Any) -> None:
    """Refresh-token families: rotation on use, and reuse detection."""
    db.create_table("refresh_tokens", {"jti": str, "family": str, "user_id": int, "expires_at": int, "used_at": str},
                    pk="jti", not_null={"family", "user_id", "expires_at"})
    db.create_index("refresh_tokens", ["family"])


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
    # through a placeholder (U+FFFF: in no real key, and not NUL, which PostgreSQL text refuses):
    # a new key may be another row's old one
    for key, user_id, old in changed:
        db.execute("UPDATE users SET username_key = ? WHERE id = ?", (f"\uffff{user_id}", user_id))
    for key, user_id, old in changed:
        db.execute("UPDATE users SET username_key = ? WHERE id = ?", (key, user_id))
        db.execute("DELETE FROM login_attempts WHERE username_key = ? AND EXISTS "
                   "(SELECT 1 FROM login_attempts WHERE username_key = ?)", (key, old))
        db.execute("UPDATE login_attempts SET username_key = ? WHERE username_key = ?", (key, old))


def _migration_5(db: Any) -> None:
    """Expectation tables of the policy file (``authctl policy``): route x user -> expected outcome."""
    db.create_table("expectations", {"route": str, "username": str, "expected": str}, pk=("route", "username"),
                    not_null={"expected"}, if_not_exists=True)


def _migration_6(db: Any) -> None:
    """Username skeletons (UTS #39, ``names.skeleton``), indexed: a new name that looks like an
    existing one is found by one lookup. Not unique: older files may hold look-alikes already."""
    if not db.has_column("users", "username_skeleton"):
        db.add_column("users", "username_skeleton", str)
    for user_id, username in db.execute("SELECT id, username FROM users").fetchall():
        try:
            value = skeleton(username)
        except InvalidInput:  # a name an older authctl let in: no skeleton (NULL), so no look-alike lookup finds it
            value = None
        db.execute("UPDATE users SET username_skeleton = ? WHERE id = ?", (value, user_id))
    db.create_index("users", ["username_skeleton"], if_not_exists=True)


def _migration_7(db: Any) -> None:
    """Targets: how authctl authenticates to an app with its own security (secrets kept like key material).

    Idempotent: a file marked with an older schema version may already hold the table.
    """
    db.create_table("targets", {"name": str, "config": str, "secret": bytes, "created_at": str},
                    pk="name", not_null={"config", "secret"}, if_not_exists=True)


def _migration_8(db: Any) -> None:
    """Signing keys keep their order of creation in a column (not SQLite's rowid, which other engines lack)."""
    if not db.has_column("signing_keys", "seq"):
        db.add_column("signing_keys", "seq", int)
    kids = [row[0] for row in db.execute(f"SELECT kid FROM signing_keys ORDER BY {db.insertion_order}").fetchall()]
    for number, kid in enumerate(kids, start=1):
        db.execute("UPDATE signing_keys SET seq = ? WHERE kid = ?", (number, kid))


MIGRATIONS = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7,
              _migration_8)
SCHEMA_VERSION = len(MIGRATIONS)


#: Tables an app keeps beside the store's (the demo's), by name: the schema builder's arguments.
#: ``db copy`` and snapshots carry a registered table along when the source has it.
APP_TABLES: dict[str, dict] = {}


def register_app_table(name: str, columns: dict, **spec: object) -> None:
    APP_TABLES[name] = {"columns": columns, **spec}


def create_app_table(db: object, name: str) -> None:
    spec = dict(APP_TABLES[name])
    db.create_table(name, spec.pop("columns"), if_not_exists=True, **spec)  # type: ignore[attr-defined]
