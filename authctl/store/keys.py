"""Signing keys: one active key, older ones verifying until retired; one key, one kid."""

from __future__ import annotations

import json

from ..clock import utcnow
from ..errors import Conflict, NotFound
from ..names import quoted
from .base import Base
from .records import SigningKey


class SigningKeys(Base):
    def add_key(self, key: SigningKey, *, make_active: bool = True) -> None:
        with self.transaction():
            same = self._x("SELECT kid, status FROM signing_keys WHERE fingerprint = ?", (key.fingerprint,)).fetchone()
            if same is not None:  # one key, one kid: importing it again changes nothing
                raise Conflict(f"this key is already there as {same[0]} ({same[1]}); nothing was changed")
            if self._x("SELECT 1 FROM signing_keys WHERE kid = ?", (key.kid,)).fetchone() is not None:
                raise Conflict(f"a key with kid {key.kid!r} already exists")
            if make_active:
                self._x("UPDATE signing_keys SET status = 'verifying' WHERE status = 'active'")
            try:
                self._x(
                    "INSERT INTO signing_keys (kid, alg, status, created_at, retired_at, fingerprint, public_jwk, "
                    "private_material, seq) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, "
                    "(SELECT coalesce(max(seq), 0) + 1 FROM signing_keys))",
                    (key.kid, key.alg, "active" if make_active else key.status, key.created_at, key.fingerprint,
                     json.dumps(key.public_jwk, sort_keys=True), key.private_material),
                )
            except self._integrity:
                raise Conflict(f"a key with kid {key.kid!r} already exists") from None
            self._audit("key.add", key.kid, {"alg": key.alg, "fingerprint": key.fingerprint})

    def keys(self) -> list[SigningKey]:
        rows = self._x(
            "SELECT kid, alg, status, created_at, retired_at, fingerprint, public_jwk, private_material "
            "FROM signing_keys ORDER BY created_at, seq"
        )
        return [SigningKey(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), bytes(r[7])) for r in rows]

    def retire_key(self, kid: str) -> None:
        with self.transaction():
            row = self._x("SELECT status FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
            if row is None:
                raise NotFound(f"no key with kid {quoted(kid)}")
            if row[0] == "active":
                raise Conflict(f"key {kid!r} is the active signing key; `authctl key rotate` first")
            if row[0] == "retired":
                raise Conflict(f"key {kid!r} is already retired")
            self._x("UPDATE signing_keys SET status = 'retired', retired_at = ? WHERE kid = ?", (utcnow(), kid))
            self._audit("key.retire", kid)

    def keys_version(self) -> int:
        """Changes whenever the key set changes (cheap cache invalidation for verifiers)."""
        row = self._x(
            "SELECT count(*), group_concat(kid || status, ',') FROM (SELECT kid, status FROM signing_keys "
            "ORDER BY kid) AS ring"
        ).fetchone()
        return hash(tuple(row))
