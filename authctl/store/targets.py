"""Targets (apps with their own security) and the policy file's expectations."""

from __future__ import annotations

import json
from typing import Any

from ..clock import utcnow
from ..errors import Conflict, NotFound
from ..names import quoted
from .base import Base


class Targets(Base):
    def add_target(self, name: str, config_doc: dict[str, Any], secret: bytes) -> None:
        """Store a target; its secret (key, passwords) is a blob no listing, log or JSON reads."""
        with self.transaction():
            if self._x("SELECT 1 FROM targets WHERE name = ?", (name,)).fetchone() is not None:
                raise Conflict(f"a target named {name!r} already exists")
            try:
                self._x("INSERT INTO targets (name, config, secret, created_at) VALUES (?, ?, ?, ?)",
                        (name, json.dumps(config_doc, sort_keys=True), secret, utcnow()))
            except self._integrity:
                raise Conflict(f"a target named {name!r} already exists") from None
            self._audit("target.add", name, {"mode": config_doc.get("mode"), "send": config_doc.get("send")})

    def target_rows(self, name: str | None = None) -> list[tuple[str, dict[str, Any], bytes, str]]:
        """(name, config, secret, created_at) of one target or all, by name."""
        sql = "SELECT name, config, secret, created_at FROM targets"
        rows = self._x(sql + (" WHERE name = ?" if name is not None else " ORDER BY name"),
                       (name,) if name is not None else ())
        return [(r[0], json.loads(r[1]), bytes(r[2]), r[3]) for r in rows]

    def update_target(self, name: str, config_doc: dict[str, Any], secret: bytes | None = None) -> None:
        """Replace a target's configuration, and its secret when one is given (``None`` keeps it)."""
        with self.transaction():
            if secret is None:
                done = self._x("UPDATE targets SET config = ? WHERE name = ?", (json.dumps(config_doc, sort_keys=True), name))
            else:
                done = self._x("UPDATE targets SET config = ?, secret = ? WHERE name = ?",
                               (json.dumps(config_doc, sort_keys=True), secret, name))
            if done.rowcount == 0:
                raise NotFound(f"no target named {quoted(name)}")
            self._audit("target.change", name, {"mode": config_doc.get("mode"), "send": config_doc.get("send"),
                                                "secret": secret is not None})

    def remove_target(self, name: str) -> None:
        with self.transaction():
            if self._x("DELETE FROM targets WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no target named {quoted(name)}")
            self._audit("target.remove", name)


class Expectations(Base):
    def expectations(self) -> dict[tuple[str, str], str]:
        """(``"METHOD /path"``, username) -> expected outcome, as ``policy apply`` stored them."""
        rows = self._x("SELECT route, username, expected FROM expectations ORDER BY route, username")
        return {(route, username): expected for route, username, expected in rows}

    def set_expectation(self, route: str, username: str, expected: str | None) -> None:
        """Store one expectation (``None`` removes it), audit-logged."""
        with self.transaction():
            if expected is None:
                self._x("DELETE FROM expectations WHERE route = ? AND username = ?", (route, username))
            else:
                self._x(
                    "INSERT INTO expectations (route, username, expected) VALUES (?, ?, ?) "
                    "ON CONFLICT(route, username) DO UPDATE SET expected = excluded.expected",
                    (route, username, expected),
                )
            self._audit("expect.set" if expected is not None else "expect.remove", route,
                        {"user": username, "expected": expected})
