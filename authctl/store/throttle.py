"""Login throttling: failure counters, each step one atomic upsert."""

from __future__ import annotations

from ..names import username_key
from .base import Base
from .records import User


class LoginAttempts(Base):
    def login_failures(self, key: str) -> tuple[int, bool]:
        row = self._x("SELECT failures, locked FROM login_attempts WHERE username_key = ?", (key,)).fetchone()
        return (row[0], bool(row[1])) if row else (0, False)

    def record_login_failure(self, key: str, now: float, lock_after: int) -> tuple[int, bool]:
        """Atomically count one failure (one upsert, under the writers' lock); returns (failures, locked)."""
        with self.transaction():
            failures, locked = self._x(
                "INSERT INTO login_attempts (username_key, failures, last_failure_at, locked) VALUES (?, 1, ?, 0) "
                "ON CONFLICT(username_key) DO UPDATE SET failures = login_attempts.failures + 1, "
                "last_failure_at = excluded.last_failure_at RETURNING failures, locked",
                (key, now),
            ).fetchone()
            if lock_after and failures >= lock_after and not locked:
                self._x("UPDATE login_attempts SET locked = 1 WHERE username_key = ?", (key,))
                self._audit("user.lock", key, {"failures": failures}, actor="login")
                locked = True
        return failures, bool(locked)

    def clear_login_failures(self, key: str) -> None:
        with self.transaction():
            self._x("DELETE FROM login_attempts WHERE username_key = ? AND locked = 0", (key,))

    def unlock(self, name: str) -> User:
        user = self.get_user(name)  # type: ignore[attr-defined]
        with self.transaction():
            self._x("DELETE FROM login_attempts WHERE username_key = ?", (username_key(user.username),))
            self._audit("user.unlock", user.username)
        return user
