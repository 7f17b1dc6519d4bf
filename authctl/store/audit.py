"""The audit log: every change writes its row in the change's own transaction (``Base._audit``)."""

from __future__ import annotations

import json
from typing import Any

from .base import Base
from .records import AuditEntry


class AuditLog(Base):
    def audit_log(self, *, limit: int = 50, action: str | None = None, target: str | None = None) -> list[AuditEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        if action:  # an action (user.add) or its group (user); no wildcards from the input
            clauses.append("(action = ? OR substr(action, 1, ?) = ?)")
            params += [action, len(action) + 1, f"{action}."]
        if target:
            clauses.append("target = ?")
            params.append(target)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._x(
            f"SELECT id, at, actor, action, target, details FROM audit_log {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) for r in rows]

    def record(self, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        """An audit-log row of its own (a summary such as ``policy.apply``), in the current transaction."""
        with self.transaction():
            self._audit(action, target, details)
