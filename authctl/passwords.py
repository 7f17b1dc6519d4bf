"""Password policy and hashing over the passlib API (provided by libpass).

New hashes are argon2id with the stored parameters (never below OWASP's
m=19 MiB, t=2, p=1). bcrypt and pbkdf2_sha256 hashes from an import are
verified and marked for upgrade: the next successful login rehashes them.
Passwords are NFKC-normalised and never truncated. Strength is zxcvbn's estimate,
with the username and other facts about the account as words an attacker would try.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Iterator

from .errors import InvalidInput, PasswordRejected

if TYPE_CHECKING:
    from .config import Settings
    from .store import Store, User

MAX_CHARS = 1024
MAX_BYTES = 4096
BCRYPT_MAX_BYTES = 72
#: zxcvbn refuses longer input and its cost grows quickly with length: it judges this prefix
ESTIMATE_CHARS = 72
MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable" against an online attack and throttled offline
ACCEPTED_SCHEMES = ("argon2", "bcrypt", "pbkdf2_sha256")


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def estimate(password: str, user_inputs: Iterable[str] = ()) -> dict:
    """zxcvbn's estimate of the first ``ESTIMATE_CHARS`` characters (score 0-4 and feedback)."""
    from zxcvbn import zxcvbn

    inputs = [word[:ESTIMATE_CHARS] for word in user_inputs if isinstance(word, str) and word]
    return zxcvbn(password[:ESTIMATE_CHARS], user_inputs=inputs)


def _account_words(username: str | None, user_inputs: Iterable[str]) -> list[str]:
    """The username, its parts (``suman.k@example.com``: suman, k, example, com) and the other inputs."""
    words = list(user_inputs)
    if username:
        name = normalize(username)
        words += [name, *(part for part in re.split(r"[\W_]+", name) if len(part) >= 3)]
    return words


def check_policy(
    password: str, username: str | None, min_length: int = 8, *, min_score: int = MIN_SCORE,
    user_inputs: Iterable[str] = (),
) -> str:
    """Return the normalised password, or raise PasswordRejected naming the rule.

    ``user_inputs`` are other words an attacker who knows the account would try
    (its roles, the issuer); the username always counts.
    """
    password = normalize(password)
    if len(password) > MAX_CHARS or len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordRejected(f"password rejected: longer than {MAX_CHARS} characters or {MAX_BYTES} bytes")
    if len(password) < min_length:
        raise PasswordRejected(f"password rejected: shorter than {min_length} characters")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise PasswordRejected("password rejected: contains control characters")
    if username:
        folded, name = password.casefold(), normalize(username).casefold()
        rest = folded.replace(name, "") if len(name) >= 3 else folded
        padded_name = rest != folded and (len(rest) < 4 or not any(c.isalpha() for c in rest))
        if folded == name or padded_name or SequenceMatcher(None, folded, name).ratio() >= 0.75:
            raise PasswordRejected("password rejected: too similar to the username")
    if password.casefold() in _common_passwords():
        raise PasswordRejected("password rejected: it is in a list of commonly used passwords")
    if min_score > 0:
        result = estimate(password, _account_words(username, user_inputs))
        if result["score"] < min_score:
            feedback = result.get("feedback") or {}
            advice = " ".join(part for part in [feedback.get("warning") or "", *(feedback.get("suggestions") or [])] if part)
            raise PasswordRejected(
                f"password rejected: too easy to guess (strength {result['score']} of 4, at least {min_score} needed)"
                + (f": {advice}" if advice else "")
            )
    return password


def check_new(password: str, username: str | None, settings: "Settings", user_inputs: Iterable[str] = ()) -> str:
    """``check_policy`` with the database's settings; the issuer and audience count as account words."""
    return check_policy(
        password, username, settings.password_min_length, min_score=settings.password_min_score,
        user_inputs=[*user_inputs, settings.issuer, settings.audience],
    )


def generate() -> str:
    """A strong random password (about 119 bits)."""
    return secrets.token_urlsafe(15) + "-" + secrets.token_urlsafe(5)


class Hasher:
    """argon2id with the configured parameters; verifies legacy hashes."""

    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1):
        from passlib.context import CryptContext

        self.params = (memory_kib, time_cost, parallelism)
        self._context = CryptContext(
            schemes=list(ACCEPTED_SCHEMES),
            deprecated=["bcrypt", "pbkdf2_sha256"],
            argon2__type="ID",
            argon2__memory_cost=memory_kib,
            argon2__rounds=time_cost,
            argon2__parallelism=parallelism,
        )
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Hasher":
        return cls(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)

    def hash(self, password: str) -> str:
        return self._context.hash(normalize(password))

    def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one should be upgraded)."""
        if not stored_hash:
            self.dummy_verify()
            return False, None
        password = normalize(password)
        candidate = password
        if self._context.identify(stored_hash, required=False) == "bcrypt":
            candidate = password.encode("utf-8")[:BCRYPT_MAX_BYTES].decode("utf-8", "ignore")
        try:
            ok = self._context.verify(candidate, stored_hash)
        except (ValueError, TypeError):
            return False, None
        if ok and self._context.needs_update(stored_hash):
            return True, self.hash(password)  # rehash from the full password, not the bcrypt prefix
        return ok, None

    def dummy_verify(self) -> None:
        """Spend the time of a real verify, so unknown users cost as much as known ones."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hash(secrets.token_urlsafe(16))
        self._context.verify("not-the-password", self._dummy_hash)


def add_user(
    store: "Store", username: str, password: str, roles: Iterable[str] = (), *, disabled: bool = False,
    allow_mixed_script: bool = False, settings: "Settings | None" = None,
) -> "User":
    """The one way to create a user with a password (``check_new`` has passed it): hashed with the
    database's own argon2id parameters (``settings``: the store's, already read)."""
    password_hash = Hasher.from_settings(settings or store.settings()).hash(password)
    return store.add_user(username, password_hash, roles, disabled=disabled, allow_mixed_script=allow_mixed_script)


def set_password(store: "Store", username: str, password: str, *, settings: "Settings | None" = None) -> "User":
    """A user's new password, hashed as ``add_user`` hashes it; every earlier token stops working."""
    return store.set_password_hash(username, Hasher.from_settings(settings or store.settings()).hash(password))


def check_importable_hash(stored_hash: str) -> str:
    """Accept an argon2, bcrypt or pbkdf2_sha256 hash from an import file."""
    from passlib.context import CryptContext

    scheme = CryptContext(schemes=list(ACCEPTED_SCHEMES)).identify(stored_hash, required=False)
    if scheme is None:
        raise InvalidInput("password_hash is not an argon2, bcrypt or pbkdf2_sha256 hash")
    return scheme


def hash_many(passwords: list[str], params: tuple[int, int, int], workers: int) -> Iterator[str]:
    """Yield hashes in order, computed in ``workers`` processes (for bulk imports)."""
    if workers <= 1 or len(passwords) < 4:
        hasher = Hasher(*params)
        yield from (hasher.hash(p) for p in passwords)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(params,)) as pool:
        yield from pool.map(_hash_in_worker, passwords, chunksize=4)


_worker_hasher: Hasher | None = None


def _init_worker(params: tuple[int, int, int]) -> None:
    global _worker_hasher
    _worker_hasher = Hasher(*params)


def _hash_in_worker(password: str) -> str:
    assert _worker_hasher is not None
    return _worker_hasher.hash(password)
