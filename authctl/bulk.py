"""Bulk user import and export (CSV or JSON Lines).

An import is validated completely before anything is written: every bad row is
reported with its line number, and a file with any bad row writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import csvsafe
from .errors import Conflict, InvalidInput
from .files import decode_utf8
from .names import new_username, shown_name, skeleton, username_key

FIELDS = ("username", "password", "password_hash", "roles", "disabled")


@dataclass
class ImportRow:
    line: int
    username: str
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    roles: list[str] = field(default_factory=list)
    disabled: bool = False


@dataclass
class ImportReport:
    rows: list[ImportRow]
    errors: list[InvalidInput]  # one per bad row, "line N: ..." (with the hint of its cause)


def detect_format(path: str, text: str) -> str:
    if path.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if path.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def _split_roles(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).replace(";", ",").replace("|", ",").split(",") if part.strip()]


_TRUE = ("1", "true", "yes", "disabled")
_FALSE = ("", "0", "false", "no", "active", "enabled")


def _disabled(value: Any) -> bool:
    """The ``disabled`` column: true or false (empty or missing: false); anything else is refused."""
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"disabled must be true or false, not {str(value)[:20]!r}")


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return f"a field is longer than {limit} characters ({limit // 1024} KiB)"
    return f"not valid CSV ({exc})"


def _csv_records(text: str) -> Iterable[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as exc:
        raise InvalidInput(f"line 1: {_csv_problem(exc)}") from None
    if "username" not in fieldnames:
        raise InvalidInput("CSV header must name at least: username (and password or password_hash, roles)")
    unknown = set(fieldnames) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"unknown CSV column(s): {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader cannot go on past it: report it and stop
            yield reader.reader.line_num, _csv_problem(exc)  # DictReader's own count lags a failed row
            return
        if None in record:
            yield reader.line_num, "more fields than the header names"
        else:  # undo export's formula quoting; a password is taken exactly as written
            yield reader.line_num, {
                name: value if name == "password" or value is None else csvsafe.unescape(value)
                for name, value in record.items()
            }


def _read_records(text: str, fmt: str) -> Iterable[tuple[int, Any]]:
    """(line number, record dict or an error message); a BOM was dropped when the text was read."""
    if fmt == "csv":
        yield from _csv_records(text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        if not isinstance(record, dict):
            yield number, "each line must be a JSON object"
            continue
        unknown = set(record) - set(FIELDS)
        yield number, (f"unknown field(s): {', '.join(sorted(unknown))}" if unknown else record)


def parse_import(
    text: str,
    fmt: str,
    *,
    existing_user: Callable[[str], bool],
    known_roles: set[str],
    check_password: Callable[[str, str], str],
    check_hash: Callable[[str], str],
    look_alike: Callable[[str], str | None] = lambda name: None,
    allow_mixed_script: bool = False,
    passwordless: bool = False,
) -> ImportReport:
    """Validate every row; never stops at the first error.

    ``look_alike(name)`` names an existing user whose name looks like ``name`` (UTS #39).
    ``passwordless`` accepts rows with neither password nor hash (as ``user export`` writes
    them): the caller gives each one a password or keeps it disabled.
    """
    rows: list[ImportRow] = []
    errors: list[InvalidInput] = []
    seen: dict[str, int] = {}
    shapes: dict[str, tuple[int, str]] = {}
    for line, record in _read_records(text, fmt):
        if isinstance(record, str):
            errors.append(InvalidInput(f"line {line}: {record}"))
            continue
        try:
            username = new_username(str(record.get("username") or ""), allow_mixed_script=allow_mixed_script)
            key = username_key(username)
            if key in seen:
                raise InvalidInput(f"user {username!r} appears again (first on line {seen[key]})")
            seen[key] = line
            if existing_user(username):
                raise Conflict(f"user {username!r} already exists")
            shape = skeleton(username)
            if shape in shapes:
                first_line, first = shapes[shape]
                raise InvalidInput(f"user {shown_name(username)} looks like {shown_name(first)} on line {first_line}")
            shapes[shape] = (line, username)
            other = look_alike(username)
            if other is not None:
                raise InvalidInput(f"user {shown_name(username)} looks like existing user {shown_name(other)}")
            password = record.get("password") or None
            password_hash = record.get("password_hash") or None
            if password and password_hash:
                raise InvalidInput("give password or password_hash, not both")
            if password is None and password_hash is None:
                if not passwordless:
                    raise InvalidInput("needs a password or a password_hash (or import with --generate or --keep-disabled)")
            elif password is not None:
                password = check_password(str(password), username)
            else:
                check_hash(str(password_hash))
            roles = _split_roles(record.get("roles"))
            unknown = [role for role in roles if role not in known_roles]
            if unknown:
                raise InvalidInput(f"unknown role(s): {', '.join(unknown)}")
            rows.append(ImportRow(line, username, password, password_hash, roles, _disabled(record.get("disabled"))))
        except (InvalidInput, Conflict) as exc:
            errors.append(InvalidInput(f"line {line}: {exc}", hint=exc.hint))
    return ImportReport(rows, errors)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def export_records(users: Iterable[Any], *, with_hashes: bool) -> list[dict[str, Any]]:
    records = []
    for user in users:
        record: dict[str, Any] = {"username": user.username, "roles": list(user.roles), "disabled": user.disabled}
        if with_hashes:
            record["password_hash"] = user.password_hash or ""
        records.append(record)
    return records


def write_records(records: list[dict[str, Any]], fmt: str, stream: Any) -> None:
    if fmt == "jsonl":
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    columns = ["username", "roles", "disabled"] + (["password_hash"] if records and "password_hash" in records[0] else [])
    writer = csvsafe.DictWriter(stream, fieldnames=columns)  # a username never lands as a spreadsheet formula
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "roles": ",".join(record["roles"]), "disabled": str(record["disabled"]).lower()})


def read_text(path: str) -> str:
    """An import file as text: UTF-8, with or without a BOM."""
    try:
        return decode_utf8(Path(path).read_bytes(), path, bom=True)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
