"""Where the database is: an SQLite file path or a ``postgresql://`` URL, never shown with its password."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DB = "authctl.db"
_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)


def is_url(text: str | os.PathLike) -> bool:
    return isinstance(text, DatabaseURL) or bool(_URL.match(str(text)))


def mask_url(url: str) -> str:
    """The URL without its password (``user:***@host``) and without a ``password=`` query parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class DatabaseURL:
    """A PostgreSQL location. ``str()`` is the masked form, so every message, log line and
    ``--json`` field that shows the database shows no password; ``raw`` is for the driver only."""

    def __init__(self, url: str):
        self._raw = str(url)

    @property
    def raw(self) -> str:
        return self._raw

    def __str__(self) -> str:
        return mask_url(self._raw)

    def __repr__(self) -> str:
        return f"DatabaseURL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseURL) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    # the few Path methods callers use on a database location
    def exists(self) -> bool:  # a server cannot be checked offline: opening it tells
        return True

    def resolve(self) -> "DatabaseURL":
        return self

    @property
    def name(self) -> str:
        return str(self)


Location = Path | DatabaseURL


def resolve_db_path(option: str | os.PathLike | None = None) -> Location:
    """``--db PATH|URL`` > ``AUTHCTL_DB`` > ``./authctl.db``."""
    if isinstance(option, DatabaseURL):
        return option
    value = str(option) if option else (os.environ.get("AUTHCTL_DB") or DEFAULT_DB)
    return DatabaseURL(value) if is_url(value) else Path(value)


def location_env(location: Location) -> str:
    """The value that hands this database to a child process (``AUTHCTL_DB``)."""
    return location.raw if isinstance(location, DatabaseURL) else str(Path(location).resolve())
