"""Roles, their permissions and inheritance (cycles refused)."""

from __future__ import annotations

from typing import Sequence

from ..clock import utcnow
from ..errors import Conflict, NotFound
from ..names import quoted, validate_permission, validate_role
from .base import Base
from .records import Permission, Role


class Roles(Base):
    def _role_id(self, name: str) -> int:
        row = self._x("SELECT id FROM roles WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no role named {quoted(name)}")
        return row[0]

    def add_role(self, name: str, description: str = "", inherits: Sequence[str] = ()) -> Role:
        validate_role(name)
        with self.transaction():
            if self._x("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone() is not None:
                raise Conflict(f"role {name!r} already exists")
            try:
                self._x("INSERT INTO roles (name, description, created_at) VALUES (?, ?, ?)", (name, description, utcnow()))
            except self._integrity:
                raise Conflict(f"role {name!r} already exists") from None
            self._audit("role.add", name, {"description": description})
            self.include_roles(name, inherits)
        return self.get_role(name)

    def include_roles(self, name: str, included: Sequence[str]) -> None:
        """Make ``name`` inherit every permission of ``included``; cycles are refused."""
        with self.transaction():
            role_id = self._role_id(name)
            for other in included:
                other_id = self._role_id(other)
                if other_id == role_id or role_id in self._included_closure(other_id):
                    raise Conflict(f"role {other!r} already includes {name!r}; inheriting it would make a cycle")
                cursor = self._x("INSERT OR IGNORE INTO role_inherits (role_id, included_id) VALUES (?, ?)",
                                 (role_id, other_id))
                if cursor.rowcount:
                    self._audit("role.inherit", name, {"includes": other})

    def exclude_roles(self, name: str, included: Sequence[str]) -> None:
        with self.transaction():
            role_id = self._role_id(name)
            for other in included:
                cursor = self._x(
                    "DELETE FROM role_inherits WHERE role_id = ? AND included_id = ?", (role_id, self._role_id(other))
                )
                if not cursor.rowcount:
                    raise NotFound(f"role {name!r} does not inherit {other!r}")
                self._audit("role.uninherit", name, {"includes": other})

    def _included_closure(self, role_id: int) -> set[int]:
        rows = self._x(
            "WITH RECURSIVE c(id) AS (SELECT CAST(? AS BIGINT) UNION SELECT ri.included_id FROM role_inherits ri "
            "JOIN c ON ri.role_id = c.id) SELECT id FROM c",
            (role_id,),
        )
        return {row[0] for row in rows}

    def get_role(self, name: str) -> Role:
        return self._role_record(self._role_id(name))

    def _role_record(self, role_id: int) -> Role:
        name, description, created_at = self._x(
            "SELECT name, description, created_at FROM roles WHERE id = ?", (role_id,)
        ).fetchone()
        permissions = tuple(
            row[0] for row in self._x(
                "SELECT p.name FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id "
                "WHERE rp.role_id = ? ORDER BY p.name", (role_id,)
            )
        )
        inherits = tuple(
            row[0] for row in self._x(
                "SELECT r.name FROM role_inherits ri JOIN roles r ON r.id = ri.included_id WHERE ri.role_id = ? "
                "ORDER BY r.name", (role_id,),
            )
        )
        members = self._x("SELECT count(*) FROM user_roles WHERE role_id = ?", (role_id,)).fetchone()[0]
        return Role(name, description or "", created_at, permissions, inherits, members)

    def list_roles(self) -> list[Role]:
        return [self._role_record(row[0]) for row in self._x("SELECT id FROM roles ORDER BY name").fetchall()]

    def role_permissions(self, name: str) -> dict[str, str]:
        """Effective permissions of a role (its own and inherited) -> granting role."""
        rows = self._x(
            "WITH RECURSIVE c(id) AS (SELECT id FROM roles WHERE name = ? "
            "UNION SELECT ri.included_id FROM role_inherits ri JOIN c ON ri.role_id = c.id) "
            "SELECT p.name, r.name FROM c JOIN roles r ON r.id = c.id "
            "JOIN role_permissions rp ON rp.role_id = c.id JOIN permissions p ON p.id = rp.permission_id",
            (name,),
        )
        result: dict[str, str] = {}
        for permission, role in rows:
            result.setdefault(permission, role)
        return result

    def remove_role(self, name: str, *, force: bool = False) -> int:
        """Remove a role; an assigned or inherited role needs ``force`` and cascades. Returns users affected."""
        with self.transaction():
            role = self.get_role(name)
            role_id = self._role_id(name)
            includers = self._x("SELECT count(*) FROM role_inherits WHERE included_id = ?", (role_id,)).fetchone()[0]
            if (role.members or includers) and not force:
                raise Conflict(
                    f"role {name!r} is assigned to {role.members} user(s) and inherited by {includers} role(s)",
                    hint="force",
                )
            self._x("DELETE FROM user_roles WHERE role_id = ?", (role_id,))
            self._x("DELETE FROM role_inherits WHERE role_id = ? OR included_id = ?", (role_id, role_id))
            self._x("DELETE FROM role_permissions WHERE role_id = ?", (role_id,))
            self._x("DELETE FROM roles WHERE id = ?", (role_id,))
            self._audit("role.remove", name, {"members": role.members, "force": force})
        return role.members

    def grant(self, role: str, permissions: Sequence[str]) -> Role:
        for permission in permissions:
            validate_permission(permission)
        with self.transaction():
            role_id = self._role_id(role)
            for permission in permissions:
                self._x("INSERT OR IGNORE INTO permissions (name) VALUES (?)", (permission,))
                permission_id = self._x("SELECT id FROM permissions WHERE name = ?", (permission,)).fetchone()[0]
                cursor = self._x("INSERT OR IGNORE INTO role_permissions (role_id, permission_id) VALUES (?, ?)",
                                 (role_id, permission_id))
                if cursor.rowcount:
                    self._audit("role.grant", role, {"permission": permission})
        return self.get_role(role)

    def revoke(self, role: str, permissions: Sequence[str]) -> Role:
        with self.transaction():
            role_id = self._role_id(role)
            for permission in permissions:
                cursor = self._x(
                    "DELETE FROM role_permissions WHERE role_id = ? AND permission_id = "
                    "(SELECT id FROM permissions WHERE name = ?)", (role_id, permission)
                )
                if not cursor.rowcount:
                    raise NotFound(f"role {role!r} is not granted {quoted(permission)}")
                self._audit("role.revoke", role, {"permission": permission})
        return self.get_role(role)

    def list_permissions(self) -> list[Permission]:
        rows = self._x(
            "SELECT p.name, (SELECT group_concat(name, ',') FROM (SELECT r.name FROM role_permissions rp "
            "JOIN roles r ON r.id = rp.role_id WHERE rp.permission_id = p.id ORDER BY r.name) AS granting) "
            "FROM permissions p ORDER BY p.name"
        )
        return [Permission(name, tuple(roles.split(",")) if roles else ()) for name, roles in rows]

    def set_role_description(self, name: str, description: str) -> None:
        with self.transaction():
            old = self.get_role(name).description
            self._x("UPDATE roles SET description = ? WHERE name = ?", (description, name))
            self._audit("role.describe", name, {"old": old, "new": description})
