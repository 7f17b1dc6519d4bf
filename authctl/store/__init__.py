"""The auth database: one Store over SQLite (a file) or PostgreSQL (a ``postgresql://`` URL).

Layout: ``records`` (dataclasses, no SQL), ``location`` (path or URL, the password masked),
``schema`` (one ordered list of migrations), ``engines`` (connections, transactions,
stamps and DDL per engine, the SQL dialect), one module per concern (``users``, ``roles``,
``keys``, ``tokens``, ``throttle``, ``audit``, ``settings``, ``targets``) written once in
portable SQL, and ``core`` joining them. Every multi-row change runs in one write
transaction together with its audit-log row.
"""

from __future__ import annotations

from .base import MAX_LEEWAY_S
from .core import Store
from .engines import APPLICATION_ID, BUSY_TIMEOUT_S, SQLITE_HEADER
from .location import DEFAULT_DB, DatabaseURL, is_url, location_env, mask_url, resolve_db_path
from .records import Access, AuditEntry, KeyStatus, Permission, Role, SigningKey, User
from .schema import MIGRATIONS, SCHEMA_VERSION
from .users import ACCESS_CACHE_SIZE

__all__ = [
    "ACCESS_CACHE_SIZE", "APPLICATION_ID", "Access", "AuditEntry", "BUSY_TIMEOUT_S", "DEFAULT_DB", "DatabaseURL", "KeyStatus",
    "MAX_LEEWAY_S", "MIGRATIONS", "Permission", "Role", "SCHEMA_VERSION", "SQLITE_HEADER", "SigningKey", "Store",
    "User", "is_url", "location_env", "mask_url", "resolve_db_path",
]
