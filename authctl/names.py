"""Name rules for users, roles and permissions, shared by the store and the CLI."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable

from .errors import InvalidInput

USERNAME_MAX = 64
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_PERMISSION = re.compile(r"^([a-z][a-z0-9_-]{0,63}):([a-z][a-z0-9_-]{0,63}|\*)$")


def quoted(value: object) -> str:
    """A short, escaped rendering of untrusted input for error messages (40 characters at most)."""
    text = str(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def nearest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or the list of known names (a dozen at most)."""
    import difflib

    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known)})" if known and len(known) <= 12 else ""


def normalize_username(name: str) -> str:
    """NFKC-normalise and validate a username; returns the stored spelling."""
    name = unicodedata.normalize("NFKC", name)
    if not 1 <= len(name) <= USERNAME_MAX:
        raise InvalidInput(f"invalid username {quoted(name)}: must be 1-{USERNAME_MAX} characters")
    for char in name:
        category = unicodedata.category(char)
        if char.isspace() or category[0] in ("C", "Z"):
            raise InvalidInput(
                f"invalid username {quoted(name)}: no whitespace, control characters or escape sequences"
            )
    return name


RESERVED_USERNAMES = frozenset({"anonymous"})


def new_username(name: str, *, allow_mixed_script: bool = False) -> str:
    """A username for a new account: the rules above, not a reserved word, and one script
    (unless ``allow_mixed_script``). Look-alikes of existing names are the store's check."""
    name = normalize_username(name)
    if name.casefold() in RESERVED_USERNAMES or skeleton(name) in _reserved_skeletons():
        raise InvalidInput(f"{name!r} is reserved: authctl uses it for requests without a token")
    if not allow_mixed_script:
        _check_scripts(name)
    return name


@lru_cache(maxsize=1)
def _reserved_skeletons() -> frozenset[str]:
    return frozenset(skeleton(name) for name in RESERVED_USERNAMES)


def username_key(name: str) -> str:
    """The case-insensitive identity of a username (unique in the store).

    Unicode's compatibility caseless match (D146), kept in NFKC form: a plain
    ``casefold()`` can leave decomposed letters (``ΐ`` folds to three code points,
    ``ΐ.upper()`` to two), so two spellings of one name would get two keys.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", normalize_username(name)).casefold())
    return unicodedata.normalize("NFKC", folded.casefold())


@lru_cache(maxsize=1)
def _spoof_checker() -> Any:
    """ICU's UTS #39 checker (pyicu): the reference implementation of skeletons and restriction levels."""
    import icu

    checker = icu.SpoofChecker()
    checker.setRestrictionLevel(icu.URestrictionLevel.HIGHLY_RESTRICTIVE)
    checker.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL | icu.USpoofChecks.MIXED_NUMBERS)
    return checker


def skeleton(name: str) -> str:
    """The UTS #39 skeleton of a name's caseless key: two names with one skeleton look alike
    (``rаhul`` with a Cyrillic а, ``rahu1`` and ``rahul``). Stored and indexed beside the key."""
    return _spoof_checker().getSkeleton(0, username_key(name))


def _scripts_of(name: str) -> list[str]:
    """The scripts of a name's letters (Common and Inherited left out), in order of appearance."""
    import icu

    found: list[str] = []
    for char in name:
        script = icu.Script.getScript(char).getName()
        if script not in ("Common", "Inherited") and script not in found:
            found.append(script)
    return found


def shown_name(name: str) -> str:
    """A name for a message, with its code points spelled out when it is not plain ASCII (look-alikes differ there)."""
    return repr(name) if name.isascii() else f"{name!r} ({ascii(name)})"


def _check_scripts(name: str) -> str:
    """Refuse a name that mixes scripts beyond UTS #39's Highly Restrictive level (Latin with
    Cyrillic or Greek; digits of two numbering systems). Latin with Han and Kana, as Japanese
    is written, passes."""
    if _spoof_checker().check(name):
        scripts = _scripts_of(name)
        what = f"mixes scripts ({', '.join(scripts)})" if len(scripts) > 1 else "mixes scripts or digit systems"
        raise InvalidInput(
            f"invalid username {shown_name(name)}: it {what}, as look-alike names do", hint="mixed_script"
        )
    return name


def validate_role(name: str) -> str:
    if not _ROLE.match(name):
        raise InvalidInput(
            f"invalid role name {quoted(name)}: use a lower-case identifier (a-z, 0-9, _ and -, starting with a letter)"
        )
    return name


def validate_permission(name: str) -> str:
    if not _PERMISSION.match(name):
        raise InvalidInput(
            f"invalid permission {quoted(name)}: use resource:action in lower case, "
            "or resource:* for every action on a resource"
        )
    return name


def permission_satisfied(required: str, granted: set[str] | frozenset[str] | dict) -> str | None:
    """The granted permission that satisfies ``required`` (exact, or the resource's ``*``)."""
    if required in granted:
        return required
    wildcard = required.split(":", 1)[0] + ":*"
    return wildcard if wildcard in granted else None
