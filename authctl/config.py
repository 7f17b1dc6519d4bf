"""Settings: option > AUTHCTL_* environment variable > stored setting > default.

Every setting is declared once in ``SPECS`` with its parser, so ``config set``,
the environment and the database all validate the same way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from .errors import InvalidInput

_PLAIN = re.compile(r"^\s*(\d{1,12})\s*$")
_COMPOUND = re.compile(r"^(?:\d{1,12}[wdhms])+$")
_PART = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int) -> int:
    """'15m', '1h30m', '2w', '1d12h', '30s' or plain seconds -> seconds (the one duration parser).

    Units go largest first, each at most once: '30m1h' and '1h1h' are refused as likely typos.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    raw = str(text).strip().lower().replace(" ", "")
    plain = _PLAIN.match(raw)
    if plain:
        return int(plain.group(1))
    parts = _PART.findall(raw) if _COMPOUND.match(raw) else []
    order = [unit for _, unit in parts]
    if not parts or order != sorted(set(order), key=list(_UNITS).index):
        raise InvalidInput(f"invalid duration {str(text)[:20]!r}: use e.g. 30s, 15m, 1h30m, 7d, 2w")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def format_duration(seconds: int) -> str:
    """Seconds as the compound form parse_duration reads back: 5400 -> '1h30m'."""
    if not seconds:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"expected a whole number, got {str(value)[:20]!r}") from None
        if not low <= number <= high:
            raise InvalidInput(f"must be between {low} and {high}, got {number}")
        return number

    return parse


def _duration_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise InvalidInput(
                f"must be between {format_duration(low)} and {format_duration(high)}, "
                f"got {format_duration(seconds)}"
            )
        return seconds

    return parse


def _text(max_len: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if len(text) > max_len or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
            raise InvalidInput(f"must be printable UTF-8 text of at most {max_len} characters")
        return text

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise InvalidInput(f"must be one of {', '.join(options)}, got {text[:20]!r}")
        return text

    return parse


def _boolean(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"must be true or false, got {text[:20]!r}")


@dataclass(frozen=True)
class Spec:
    parse: Callable[[Any], Any]
    default: Any
    help: str


DAY = 86400
SPECS: dict[str, Spec] = {
    "issuer": Spec(_text(200), "authctl", "iss claim of issued tokens"),
    "audience": Spec(_text(200), "authctl", "aud claim; empty omits the claim"),
    "access_ttl": Spec(_duration_range(10, 30 * DAY), 900, "lifetime of access tokens"),
    "refresh_ttl": Spec(_duration_range(60, 365 * DAY), 7 * DAY, "lifetime of refresh tokens"),
    "max_ttl": Spec(_duration_range(60, 365 * DAY), 30 * DAY, "longest lifetime any token may have"),
    "leeway": Spec(_duration_range(0, 300), 30, "clock skew allowed on exp/nbf/iat"),
    "sub_claim": Spec(_choice("uid", "username"), "uid", "what the sub claim holds"),
    "argon2_memory_kib": Spec(_int_range(19456, 4 * 1024 * 1024), 19456, "argon2id memory (KiB)"),
    "argon2_time_cost": Spec(_int_range(2, 100), 2, "argon2id iterations"),
    "argon2_parallelism": Spec(_int_range(1, 64), 1, "argon2id lanes"),
    "password_min_length": Spec(_int_range(8, 1024), 8, "shortest password accepted"),
    "password_min_score": Spec(_int_range(0, 4), 3, "zxcvbn strength (0-4) a new password needs; 0: no estimate"),
    "lockout_threshold": Spec(_int_range(0, 10_000), 10, "failed logins before a lock (0: never)"),
    "hide_forbidden_detail": Spec(_boolean, False, "403 bodies do not name the missing permission"),
}


@dataclass(frozen=True)
class Settings:
    issuer: str = SPECS["issuer"].default
    audience: str = SPECS["audience"].default
    access_ttl: int = SPECS["access_ttl"].default
    refresh_ttl: int = SPECS["refresh_ttl"].default
    max_ttl: int = SPECS["max_ttl"].default
    leeway: int = SPECS["leeway"].default
    sub_claim: str = SPECS["sub_claim"].default
    argon2_memory_kib: int = SPECS["argon2_memory_kib"].default
    argon2_time_cost: int = SPECS["argon2_time_cost"].default
    argon2_parallelism: int = SPECS["argon2_parallelism"].default
    password_min_length: int = SPECS["password_min_length"].default
    password_min_score: int = SPECS["password_min_score"].default
    lockout_threshold: int = SPECS["lockout_threshold"].default
    hide_forbidden_detail: bool = SPECS["hide_forbidden_detail"].default

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_setting(key: str, value: Any) -> Any:
    """Validate one setting; the error names the key."""
    spec = SPECS.get(key)
    if spec is None:
        raise InvalidInput(f"unknown setting {key[:40]!r}; known: {', '.join(SPECS)}")
    try:
        return spec.parse(value)
    except InvalidInput as exc:
        raise InvalidInput(f"setting {key}: {exc}") from None


def env_name(key: str) -> str:
    return f"AUTHCTL_{key.upper()}"


def _parse_env(key: str, value: str) -> Any:
    """Validate a setting from the environment; the error names the variable."""
    try:
        return SPECS[key].parse(value)
    except InvalidInput as exc:
        raise InvalidInput(f"environment variable {env_name(key)}: {exc}") from None


def _check_url(value: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise InvalidInput("use http(s)://host[:port]")


def _check_debug(value: str) -> None:
    if value not in ("", "0", "1"):
        raise InvalidInput(f"use 1 (tracebacks) or 0, got {value[:20]!r}")


def _check_db(value: str) -> None:
    if not value.strip():
        raise InvalidInput("empty: unset it, or name a database file")


#: AUTHCTL_* variables that are not settings, with the check each value must pass.
OTHER_VARIABLES: dict[str, Callable[[str], None]] = {
    "AUTHCTL_DB": _check_db, "AUTHCTL_URL": _check_url, "AUTHCTL_DEBUG": _check_debug,
}


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Validate every AUTHCTL_* variable authctl reads, at start-up: a bad value is an error naming it."""
    environ = os.environ if environ is None else environ
    for key in SPECS:
        value = environ.get(env_name(key))
        if value is not None:
            _parse_env(key, value)
    for name, check in OTHER_VARIABLES.items():
        value = environ.get(name)
        if value is not None:
            try:
                check(value)
            except InvalidInput as exc:
                raise InvalidInput(f"environment variable {name}: {exc}") from None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an app's setting overrides when it is built, not on its first request."""
    return {key: parse_setting(key, value) for key, value in overrides.items() if value is not None}


def _source(key: str, stored: Mapping[str, Any], overrides: Mapping[str, Any] | None,
            environ: Mapping[str, str]) -> str:
    """Where one setting comes from, first found wins: option, env AUTHCTL_X, stored, default."""
    if overrides and overrides.get(key) is not None:
        return "option"
    if environ.get(env_name(key)) is not None:
        return f"env {env_name(key)}"
    return "stored" if key in stored else "default"


def sources(
    stored: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Where each effective setting comes from (what ``resolve`` takes)."""
    environ = os.environ if environ is None else environ
    return {key: _source(key, stored, overrides, environ) for key in SPECS}


def resolve(
    stored: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for key in SPECS:
        source = _source(key, stored, overrides, environ)
        if source == "option":
            values[key] = parse_setting(key, (overrides or {})[key])
        elif source == "stored":
            values[key] = parse_setting(key, stored[key])
        elif source != "default":  # env AUTHCTL_X
            values[key] = _parse_env(key, environ[env_name(key)])
    settings = Settings(**values)
    if settings.access_ttl > settings.max_ttl or settings.refresh_ttl > settings.max_ttl:
        raise InvalidInput("access_ttl and refresh_ttl must not exceed max_ttl")
    return settings
