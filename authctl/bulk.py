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

from .errors import InvalidInput
from .names import new_username, username_key

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
    errors: list[str]


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


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "disabled")


def read_records(text: str, fmt: str) -> Iterable[tuple[int, Any]]:
    """(line number, record dict or an error message)."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = {"username"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInput("CSV header must name at least: username (and password or password_hash, roles)")
        unknown = set(reader.fieldnames or []) - set(FIELDS)
        if unknown:
            raise InvalidInput(f"unknown CSV column(s): {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
        for record in reader:
            if None in record:
                yield reader.line_num, "more fields than the header names"
            else:
                yield reader.line_num, record
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
) -> ImportReport:
    """Validate every row; never stops at the first error."""
    rows: list[ImportRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, record in read_records(text, fmt):
        if isinstance(record, str):
            errors.append(f"line {line}: {record}")
            continue
        try:
            username = new_username(str(record.get("username") or ""))
            key = username_key(username)
            if key in seen:
                raise InvalidInput(f"user {username!r} appears again (first on line {seen[key]})")
            seen[key] = line
            if existing_user(username):
                raise InvalidInput(f"user {username!r} already exists")
            password = record.get("password") or None
            password_hash = record.get("password_hash") or None
            if password and password_hash:
                raise InvalidInput("give password or password_hash, not both")
            if password is None and password_hash is None:
                raise InvalidInput("needs a password or a password_hash")
            if password is not None:
                password = check_password(str(password), username)
            else:
                check_hash(str(password_hash))
            roles = _split_roles(record.get("roles"))
            unknown = [role for role in roles if role not in known_roles]
            if unknown:
                raise InvalidInput(f"unknown role(s): {', '.join(unknown)}")
            rows.append(ImportRow(line, username, password, password_hash, roles, _truthy(record.get("disabled", ""))))
        except InvalidInput as exc:
            errors.append(f"line {line}: {exc}")
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
    writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "roles": ",".join(record["roles"]), "disabled": str(record["disabled"]).lower()})


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
