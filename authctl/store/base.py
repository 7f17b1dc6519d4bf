"""What every concern module shares: the engine's connection, one transaction, the audit row."""

from __future__ import annotations

import getpass
import json
import os
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from ..clock import utcnow

MAX_LEEWAY_S = 300  # the largest `leeway` setting


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        return f"uid:{os.getuid()}"


class Base:
    """The engine plumbing the concern mixins rely on (``self.engine`` is set by ``Store``)."""

    engine: Any

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one portable statement on this thread's connection."""
        return self.engine.execute(sql, params)

    def change_stamp(self) -> tuple[int, int, int]:
        """Differs whenever any connection of any process has committed a change since the last call."""
        return self.engine.change_stamp()

    @property
    def _integrity(self) -> tuple[type[BaseException], ...]:
        return self.engine.integrity_errors

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction; nested calls join the outer one."""
        with self.engine.transaction():
            yield self

    def _audit(self, action: str, target: str, details: dict[str, Any] | None = None, actor: str | None = None) -> None:
        self._x(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (utcnow(), actor or _os_user(), action, target, json.dumps(details or {}, sort_keys=True)),
        )
