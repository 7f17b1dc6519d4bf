"""The store's records: plain frozen dataclasses, no SQL (callers and renderers import these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class User:
    id: int
    uid: str
    username: str
    disabled: bool
    token_version: int
    created_at: str
    updated_at: str
    password_changed_at: str | None
    last_login_at: str | None
    roles: tuple[str, ...] = ()
    password_hash: str | None = field(default=None, repr=False)

    @property
    def status(self) -> Literal["active", "disabled"]:
        return "disabled" if self.disabled else "active"


@dataclass(frozen=True)
class Access:
    """A user's roles (direct and inherited) and effective permissions.

    ``roles`` maps each role to the role that included it (``None`` when assigned
    directly); ``permissions`` maps each permission to the role that grants it.
    """

    direct_roles: tuple[str, ...]
    roles: dict[str, str | None]
    permissions: dict[str, str]


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    created_at: str
    permissions: tuple[str, ...]
    inherits: tuple[str, ...]
    members: int


@dataclass(frozen=True)
class Permission:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]


KeyStatus = Literal["active", "verifying", "retired"]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    status: KeyStatus
    created_at: str
    retired_at: str | None
    fingerprint: str
    public_jwk: dict[str, Any]
    private_material: bytes = field(repr=False)
