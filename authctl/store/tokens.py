"""Token state: revocations, refresh-token families (rotation, reuse), and the per-request lookup."""

from __future__ import annotations

import threading
import time

from ..errors import InvalidInput
from ..names import username_key
from ..clock import utcnow
from .base import MAX_LEEWAY_S, Base
from .records import User
from .users import USER_COLUMNS, user_record


#: Per thread, on PostgreSQL: the answers of ``token_state`` by key, each with the stamp read
#: in the same statement. Every committed write moves the stamp (``PostgresEngine.transaction``),
#: so an answer is reused only when a stamp read since the request arrived shows no commit
#: since: a lighter read (on the app's request path, one awaited and shared, see
#: ``store/stamps.py``), never a stale answer.
TOKEN_ROW_CACHE_SIZE = 4096


class Tokens(Base):
    _caches: threading.local  # set by Store

    def revoke_jti(self, jti: str, expires_at: int, reason: str = "") -> bool:
        with self.transaction():
            # kept past exp for the longest leeway a verifier may allow: until then the token could still pass
            self._x("DELETE FROM revoked_tokens WHERE expires_at < ?", (int(time.time()) - MAX_LEEWAY_S,))
            cursor = self._x(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?)",
                (jti, int(expires_at), utcnow(), reason),
            )
            if cursor.rowcount:
                self._audit("token.revoke", jti, {"reason": reason, "expires_at": int(expires_at)})
        return bool(cursor.rowcount)

    def is_revoked(self, jti: str) -> bool:
        return self._x("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone() is not None

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
        engine = self.engine
        key = (jti, column, value)
        rows = getattr(self._caches, "token_rows", None) if engine.token_row_cache else None
        if rows is not None:
            cached = rows.get(key)
            if cached is not None and cached[0] == engine.read_stamp():
                return cached
        row = self._x(
            f"SELECT {engine.stamp_column}, EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?), {USER_COLUMNS} "
            f"FROM {engine.stamp_from} LEFT JOIN users u ON u.{column} = ?",
            (jti, value),
        ).fetchone()
        user = user_record(row[2:]) if row[2] is not None else None
        state = engine.stamp_of(row[0]), bool(row[1]), user
        if engine.token_row_cache:
            if rows is None or len(rows) >= TOKEN_ROW_CACHE_SIZE:
                rows = self._caches.token_rows = {}
            rows[key] = state
        return state

    def record_refresh(self, jti: str, family: str, user_id: int, expires_at: int, *, access_jti: str | None = None,
                       access_expires_at: int | None = None) -> None:
        """Remember a refresh token of ``family`` (and the access token issued with it).

        The access token is recorded as already used: it can never be rotated, but a
        reuse of the family's refresh token revokes it too.
        """
        with self.transaction():
            self._x("INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES (?, ?, ?, ?)",
                    (jti, family, user_id, int(expires_at)))
            if access_jti is not None:
                self._x(
                    "INSERT INTO refresh_tokens (jti, family, user_id, expires_at, used_at) VALUES (?, ?, ?, ?, ?)",
                    (access_jti, family, user_id, int(access_expires_at or expires_at), utcnow()),
                )

    def use_refresh(self, jti: str) -> tuple[str | None, bool]:
        """Mark a refresh token used, atomically: (family, first use?). Unknown jti: (None, False).

        One conditional UPDATE decides: of two concurrent uses exactly one sees ``used_at IS NULL``."""
        with self.transaction():
            row = self._x("SELECT family FROM refresh_tokens WHERE jti = ?", (jti,)).fetchone()
            if row is None:
                return None, False
            cursor = self._x("UPDATE refresh_tokens SET used_at = ? WHERE jti = ? AND used_at IS NULL", (utcnow(), jti))
        return row[0], bool(cursor.rowcount)

    def revoke_family(self, family: str, reason: str = "refresh token reused") -> int:
        """Revoke every token of a refresh family (reuse of a rotated token means theft)."""
        with self.transaction():
            rows = self._x("SELECT jti, expires_at FROM refresh_tokens WHERE family = ?", (family,)).fetchall()
            for jti, expires_at in rows:
                self._x(
                    "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?)",
                    (jti, expires_at, utcnow(), reason),
                )
            self._x("UPDATE refresh_tokens SET used_at = coalesce(used_at, ?) WHERE family = ?", (utcnow(), family))
            self._audit("token.revoke_family", family, {"tokens": len(rows), "reason": reason}, actor="api")
        return len(rows)
