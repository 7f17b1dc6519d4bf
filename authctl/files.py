"""Private files: created with mode 0600, never overwriting anything."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import Conflict, InvalidInput


def create_private_file(path: str | os.PathLike) -> int:
    """Create ``path`` exclusively with mode 0600 and return a write descriptor."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise Conflict(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        raise InvalidInput(f"cannot create {path}: {exc.strerror}") from None
    os.chmod(path, 0o600)  # the umask may have narrowed it further; never widened
    return fd


def touch_private(path: Path) -> None:
    os.close(create_private_file(path))


def decode_utf8(data: bytes, source: str, *, bom: bool = False) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped when ``bom``), or one line naming the encoding."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8 first"
        ) from None
