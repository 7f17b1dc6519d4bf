"""``who-can``: the reverse of ``check`` — which users and roles a route allows, and through what.

Each user is decided by the same engine as ``check`` and the server (``routes.decide``), with a
token minted as the app would receive it, so the answer for every user is ``check``'s answer.
The roles are read from the route's requirements: a role allows the route when its effective
permissions (inherited ones included) satisfy every requirement on it. A route the app's own code
secures (fastapi.security schemes, scopes, guards) has no authctl requirement to read, so its roles
are unknown (``None``), never every role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .names import permission_satisfied
from .policy import Outcome

if TYPE_CHECKING:
    from .policy import Decision
    from .routes import RouteInfo
    from .store import Store


@dataclass(frozen=True)
class UserAnswer:
    username: str
    outcome: Outcome
    via: tuple[str, ...]  # the roles that grant the needed permissions (empty: not by a role)
    reason: str


@dataclass
class WhoCan:
    method: str
    path: str
    route: "RouteInfo"
    anonymous: "Decision"
    roles: list[str] | None  # roles that allow the route; None: the app's own code decides (unknown)
    users: list[UserAnswer]

    @property
    def allowed(self) -> list[UserAnswer]:
        return [answer for answer in self.users if answer.outcome is Outcome.ALLOWED]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "path": self.path, "route": self.route.path,
            "requires": self.route.describe(), "anonymous": self.anonymous.outcome.value, "roles": self.roles,
            "users": [
                {"username": a.username, "outcome": a.outcome.value, "via": list(a.via), "reason": a.reason}
                for a in self.users
            ],
            "allowed": len(self.allowed), "total": len(self.users),
        }


def who_can(store: "Store", app: Any, method: str, path: str) -> WhoCan:
    """Decide METHOD PATH for anonymous and for every user (``NoRoute``: exit 5, as in check)."""
    from . import explain, routes

    method = explain.normalize_method(method)
    info, params = routes.match(app, method, path)
    overrides = explain.app_overrides(app)
    anonymous = routes.decide(store, info, None, params, overrides=overrides)
    answers = []
    for user in store.list_users():
        subject = explain.subject_for_user(store, user.username, overrides)
        decision = routes.decide(store, info, subject.token, params, overrides=overrides)
        via = tuple(dict.fromkeys(decision.granted_by.values())) if decision.allowed else ()
        answers.append(UserAnswer(user.username, decision.outcome, via, decision.reason))
    return WhoCan(method, path, info, anonymous, _roles_allowing(store, info), answers)


def _roles_allowing(store: "Store", info: "RouteInfo") -> list[str] | None:
    """Roles whose effective permissions satisfy every permission requirement of the route.

    ``None`` when the app's own security decides: it has no permission requirement, and
    ``all([])`` would claim every role.
    """
    if info.is_native:
        return None
    needed = [r for r in info.requirements if r.kind == "permission"]
    allowing = []
    for role in store.list_roles():
        effective = store.role_permissions(role.name)
        if all(
            (all if requirement.mode == "all" else any)(permission_satisfied(p, effective) for p in requirement.permissions)
            for requirement in needed
        ):
            allowing.append(role.name)
    return allowing
