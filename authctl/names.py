"""Name rules for users, roles and permissions, shared by the store and the CLI."""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidInput

USERNAME_MAX = 64
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_PERMISSION = re.compile(r"^([a-z][a-z0-9_-]{0,63}):([a-z][a-z0-9_-]{0,63}|\*)$")


def _shown(text: str) -> str:
    """A short, escaped rendering of untrusted input for error messages."""
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def normalize_username(name: str) -> str:
    """NFKC-normalise and validate a username; returns the stored spelling."""
    name = unicodedata.normalize("NFKC", name)
    if not 1 <= len(name) <= USERNAME_MAX:
        raise InvalidInput(f"invalid username {_shown(name)}: must be 1-{USERNAME_MAX} characters")
    for char in name:
        category = unicodedata.category(char)
        if char.isspace() or category[0] in ("C", "Z"):
            raise InvalidInput(
                f"invalid username {_shown(name)}: no whitespace, control characters or escape sequences"
            )
    return name


RESERVED_USERNAMES = frozenset({"anonymous"})


def new_username(name: str) -> str:
    """A username for a new account: the rules above, and not a reserved word."""
    name = normalize_username(name)
    if name.casefold() in RESERVED_USERNAMES:
        raise InvalidInput(f"{name!r} is reserved: authctl uses it for requests without a token")
    return name


def username_key(name: str) -> str:
    """The case-insensitive identity of a username (unique in the store).

    Unicode's compatibility caseless match (D146), kept in NFKC form: a plain
    ``casefold()`` can leave decomposed letters (``ΐ`` folds to three code points,
    ``ΐ.upper()`` to two), so two spellings of one name would get two keys.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", normalize_username(name)).casefold())
    return unicodedata.normalize("NFKC", folded.casefold())


def validate_role(name: str) -> str:
    if not _ROLE.match(name):
        raise InvalidInput(
            f"invalid role name {_shown(name)}: use a lower-case identifier (a-z, 0-9, _ and -, starting with a letter)"
        )
    return name


def validate_permission(name: str) -> str:
    if not _PERMISSION.match(name):
        raise InvalidInput(
            f"invalid permission {_shown(name)}: use resource:action in lower case, "
            "or resource:* for every action on a resource"
        )
    return name


def permission_satisfied(required: str, granted: set[str] | frozenset[str] | dict) -> str | None:
    """The granted permission that satisfies ``required`` (exact, or the resource's ``*``)."""
    if required in granted:
        return required
    wildcard = required.split(":", 1)[0] + ":*"
    return wildcard if wildcard in granted else None
