"""Stored settings (``authctl config``), checked together before any is written."""

from __future__ import annotations

import json
from typing import Any

from .. import config
from .base import Base


class SettingsStore(Base):
    def stored_settings(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._x("SELECT key, value FROM settings")}

    def settings(self, overrides: dict[str, Any] | None = None) -> config.Settings:
        return config.resolve(self.stored_settings(), overrides)

    def set_setting(self, key: str, value: Any) -> Any:
        parsed = config.parse_setting(key, value)
        with self.transaction():
            old = self.stored_settings()
            candidate = {**old, key: parsed}
            config.resolve(candidate, environ={})  # cross-checks (ttl <= max_ttl) before writing
            self._x(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(parsed)),
            )
            self._audit("config.set", key, {"old": old.get(key), "new": parsed})
        return parsed

    def unset_setting(self, key: str) -> bool:
        """Back to the default (``policy apply --prune``); True when a stored value was removed."""
        with self.transaction():
            stored = self.stored_settings()
            config.resolve({k: v for k, v in stored.items() if k != key}, environ={})  # cross-checks, as set does
            old = stored.get(key)
            cursor = self._x("DELETE FROM settings WHERE key = ?", (key,))
            if cursor.rowcount:
                self._audit("config.unset", key, {"old": old})
        return bool(cursor.rowcount)
