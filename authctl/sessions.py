"""Sessions: login with throttling, token pairs, refresh rotation with reuse detection, logout.

The logic behind ``POST /token``, ``/token/refresh`` and ``/logout``, without FastAPI:
``authctl.fastapi.Auth`` only turns these results into status codes and headers, so the
rules here are tested against a store directly (tests/test_sessions.py).

Login throttling: from ``backoff_after`` recorded failures on a username on, each attempt
first waits ``backoff_base * 2 ** (failures - backoff_after)`` seconds (at most
``backoff_max``); at ``lockout_threshold`` failures (a setting) the name is locked until
``authctl user unlock NAME``. Password hashing runs in a small dedicated thread pool of
``hash_concurrency`` threads at a lower priority, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from .errors import Conflict, InvalidInput, NotFound, RefreshReused, TokenError, TokenUserInvalid
from .names import username_key

if TYPE_CHECKING:
    from .config import Settings
    from .passwords import Hasher
    from .store import Store
    from .tokens import Identity

__all__ = ["Sessions", "TokenPair", "login_key"]

#: Throttling defaults (``Auth`` takes the same): wait from the 5th failure, 0.25 s doubling, at most 8 s.
BACKOFF_AFTER, BACKOFF_BASE, BACKOFF_MAX = 5, 0.25, 8.0


@dataclass(frozen=True)
class TokenPair:
    """An access and a refresh token issued together (the OAuth2 token response)."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    token_type: str = "bearer"

    def as_json(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 response body."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in,
        }


def login_key(username: str) -> str:
    """login_attempts key: the case-folded name, for unknown and invalid names too."""
    try:
        return username_key(username)
    except InvalidInput:
        return unicodedata.normalize("NFKC", username).casefold()[:128]


class Sessions:
    """Login, refresh and logout against the store ``store()`` returns at each call.

    ``store`` is a callable so that the owner may open the database lazily or switch it
    (``Auth.use_store``); ``overrides`` are the app's settings overrides.
    """

    def __init__(
        self,
        store: Callable[[], "Store"],
        overrides: Mapping[str, Any] | None = None,
        *,
        backoff_after: int = BACKOFF_AFTER,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        hash_concurrency: int | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self._store = store
        self._overrides = dict(overrides or {}) or None
        self.backoff_after = backoff_after
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        # Every core may hash (argon2 releases the GIL); the hashing threads run at a lower
        # priority, so the event loop answers other requests first.
        self.hash_concurrency = hash_concurrency or max(1, min(8, os.cpu_count() or 1))
        self.sleep = sleep or asyncio.sleep
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._hashers: dict[tuple[int, int, int], "Hasher"] = {}

    def close(self) -> None:
        """Stop the hashing threads (a later login starts them again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def settings(self) -> "Settings":
        from . import tokens

        return tokens.current_settings(self._store(), self._overrides)

    # ------------------------------------------------------------------ login

    def login_delay(self, failures: int) -> float:
        """Seconds to wait before checking a password for a name with ``failures`` failures."""
        if failures < self.backoff_after:
            return 0.0
        return min(self.backoff_base * (2 ** min(failures - self.backoff_after, 30)), self.backoff_max)

    async def login(self, username: str, password: str) -> TokenPair | None:
        """Wait out the name's back-off, then check the password in the hashing pool."""
        key = login_key(username)
        failures, _ = self._store().login_failures(key)
        delay = self.login_delay(failures)
        if delay:
            await self.sleep(delay)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._hashing_pool(), self.check_credentials, username, password)

    def check_credentials(self, username: str, password: str) -> TokenPair | None:
        """Check a password and issue a token pair; ``None`` for every kind of failure alike.

        Unknown user, wrong password, disabled and locked accounts all take one (dummy or
        real) hash verification and count one failure against the case-folded name, so
        neither the answer nor its timing tells them apart. Blocking: run it off the loop.
        """
        from .passwords import MAX_CHARS

        key = login_key(username)
        store = self._store()
        settings = self.settings()
        hasher = self._hasher(settings)
        user = store.find_user(username)
        if user is not None and user.password_hash and len(password) <= MAX_CHARS:
            ok, new_hash = hasher.verify(password, user.password_hash)
        else:
            hasher.dummy_verify()
            ok, new_hash = False, None
        _, locked = store.login_failures(key)
        if not ok or locked or user is None or user.disabled:
            store.record_login_failure(key, time.time(), settings.lockout_threshold)
            return None
        store.clear_login_failures(key)
        if new_hash and user.password_hash:
            store.upgrade_password_hash(user.id, user.password_hash, new_hash)
        store.record_login(user.id)
        try:
            return self.issue_pair(user.username, user.id, uuid.uuid4().hex)
        except (InvalidInput, NotFound):  # disabled or removed a moment ago
            return None

    def _hashing_pool(self) -> ThreadPoolExecutor:
        """A small dedicated pool: only these few threads ever hold argon2's 19 MiB buffers
        (a shared 40-thread pool would keep one per thread)."""
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.hash_concurrency, thread_name_prefix="authctl-hash", initializer=_lower_priority
                    )
        return self._pool

    def _hasher(self, settings: "Settings") -> "Hasher":
        from .passwords import Hasher

        params = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
        hasher = self._hashers.get(params)
        if hasher is None:
            hasher = self._hashers.setdefault(params, Hasher(*params))
        return hasher

    # ------------------------------------------------------------------ token pairs

    def issue_pair(self, username: str, user_id: int, family: str) -> TokenPair:
        """An access and a refresh token of one family, the refresh token recorded for rotation."""
        from . import tokens

        store = self._store()
        now = int(time.time())
        access = tokens.issue(store, username, now=now, overrides=self._overrides)
        refresh = tokens.issue(store, username, refresh=True, family=family, now=now, overrides=self._overrides)
        store.record_refresh(refresh.claims["jti"], family, user_id, refresh.expires_at,
                             access_jti=access.claims["jti"], access_expires_at=access.expires_at)
        return TokenPair(
            access_token=access.token,
            expires_in=max(0, access.expires_at - now),
            refresh_token=refresh.token,
            refresh_expires_in=max(0, refresh.expires_at - now),
        )

    def refresh(self, token: str) -> TokenPair:
        """Rotate a refresh token; a second use of one revokes its whole family.

        Raises ``RefreshReused`` on reuse, another ``TokenError`` for a token that fails.
        Blocking (writes may wait for another process's lock): run it off the loop.
        """
        from . import tokens

        store = self._store()
        identity = tokens.verify(store, token, expected_type="refresh", overrides=self._overrides)
        family, first_use = store.use_refresh(identity.jti)
        if family is None:
            # A valid refresh token this server did not record (e.g. `authctl token issue
            # --refresh`): its family starts now; use_refresh keeps first use atomic.
            try:
                store.record_refresh(
                    identity.jti, str(identity.claims.get("fam") or identity.jti), identity.user.id, identity.expires_at
                )
            except Conflict:
                pass
            family, first_use = store.use_refresh(identity.jti)
        if not first_use:
            store.revoke_family(family or identity.jti)
            raise RefreshReused("refresh token reuse detected: the session was revoked; log in again")
        try:
            return self.issue_pair(identity.user.username, identity.user.id, family or identity.jti)
        except (InvalidInput, NotFound):  # disabled or removed a moment ago
            raise TokenUserInvalid("the user can no longer log in") from None

    def logout(self, identity: "Identity", refresh_token: str | None) -> bool:
        """Revoke an access token and, if given and the same user's, a refresh token's family.

        Returns whether a refresh family was revoked. Blocking: run it off the loop.
        """
        from . import tokens

        store = self._store()
        store.revoke_jti(identity.jti, identity.expires_at, "logout")
        if not refresh_token:
            return False
        try:
            refresh = tokens.verify(store, refresh_token, expected_type="refresh", overrides=self._overrides)
        except TokenError:
            return False  # already unusable
        if refresh.user.id != identity.user.id:
            return False
        store.revoke_family(str(refresh.claims.get("fam") or refresh.jti), "logout")
        store.revoke_jti(refresh.jti, refresh.expires_at, "logout")
        return True


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop: logins use what requests leave over.

    On Linux a thread is a task of its own, so its nice value can be raised alone.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: hashing keeps normal priority
        pass
