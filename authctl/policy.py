"""The decision engine: who is this request (401), and may it do this (403)?

``authenticate()`` and ``authorize()`` are the only place authctl decides.
The FastAPI dependencies call them on every request and ``authctl check``
calls them offline, so the CLI's explanation cannot disagree with the server.
Authorization is always read from the database, never from token claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, Mapping

from .errors import AuthctlError, AuthenticationError, Forbidden, NoRoute, TokenError
from .names import permission_satisfied, validate_permission

if TYPE_CHECKING:
    from .store import Access, Store
    from .tokens import Check, Identity

ALLOWED, UNAUTHENTICATED, FORBIDDEN = 200, 401, 403


class Outcome(Enum):
    """The one outcome vocabulary: every verdict, table, JSON field and exit code uses it.

    The value is the stable name in ``--json``; ``label`` is for people; ``exit_code``
    is the documented exit code of a command whose answer is this outcome.
    """

    ALLOWED = "allowed"  # 1xx, 2xx
    REDIRECTED = "redirected"  # 3xx, never followed: says nothing of access; never agrees, never passes
    UNAUTHENTICATED = "unauthenticated"  # 401
    FORBIDDEN = "forbidden"  # 403
    NO_ROUTE = "no_route"  # 404 / 405
    CLIENT_ERROR = "client_error"  # any other 4xx: 400, 422, ...
    SERVER_ERROR = "server_error"  # 5xx: never agrees with anything
    NOT_SENT = "not_sent"  # the request was never made: never passes an expectation
    ERROR = "error"  # the request failed (connection refused, timeout, bad answer)
    UNDECIDED = "undecided"  # offline only: the app's own code (a guard) decides; never agrees, never passes

    @property
    def label(self) -> str:
        return _OUTCOME_LABELS[self]

    @property
    def error(self) -> "type[AuthctlError] | None":
        """The error class of this outcome (None when allowed)."""
        if self is Outcome.ALLOWED:
            return None
        return _OUTCOME_ERRORS.get(self, AuthctlError)

    @property
    def exit_code(self) -> int:
        error = self.error
        return 0 if error is None else error.exit_code

    @classmethod
    def of_status(cls, status: int) -> "Outcome":
        """The outcome of an HTTP status; a 3xx is ``REDIRECTED`` (a login redirect is how some apps refuse)."""
        if status == 401:
            return cls.UNAUTHENTICATED
        if status == 403:
            return cls.FORBIDDEN
        if status in (404, 405):
            return cls.NO_ROUTE
        if 400 <= status < 500:
            return cls.CLIENT_ERROR
        if status >= 500:
            return cls.SERVER_ERROR
        if 300 <= status < 400:
            return cls.REDIRECTED
        return cls.ALLOWED

    def agrees_with(self, other: "Outcome") -> bool:
        """Agreement means the same outcome; a 5xx, a redirect, an unsent request, an error or an undecided one
        never agrees."""
        return self is other and self not in NEVER_AGREES


_OUTCOME_LABELS = {
    Outcome.ALLOWED: "allowed", Outcome.UNAUTHENTICATED: "401 Unauthorized", Outcome.FORBIDDEN: "403 Forbidden",
    Outcome.NO_ROUTE: "no such route (404/405)", Outcome.CLIENT_ERROR: "other client error (4xx)",
    Outcome.SERVER_ERROR: "server error (5xx)", Outcome.NOT_SENT: "not sent", Outcome.ERROR: "error",
    Outcome.UNDECIDED: "undecided offline (code decides)", Outcome.REDIRECTED: "redirect (3xx, not followed)",
}
#: Outcomes that say nothing certain about access: none agrees with anything, none can be expected.
NEVER_AGREES = frozenset({Outcome.SERVER_ERROR, Outcome.REDIRECTED, Outcome.NOT_SENT, Outcome.ERROR, Outcome.UNDECIDED})
# The error class of each denial: its exit code is the documented one (errors.py draws the tree).
_OUTCOME_ERRORS: dict[Outcome, type[AuthctlError]] = {
    Outcome.UNAUTHENTICATED: AuthenticationError, Outcome.FORBIDDEN: Forbidden, Outcome.NO_ROUTE: NoRoute,
}


RequirementKind = Literal["public", "authenticated", "permission"]
RequirementMode = Literal["all", "any"]


@dataclass(frozen=True)
class Requirement:
    """What a route needs. ``kind`` is public, authenticated or permission.

    With ``mode="any"`` one of ``permissions`` suffices; with ``"all"`` every one is
    needed. ``owner_param`` names a path parameter that also allows the request
    when it equals the caller's own user id ("or the student themselves").
    """

    kind: RequirementKind
    permissions: tuple[str, ...] = ()
    mode: RequirementMode = "all"
    owner_param: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("public", "authenticated", "permission"):
            raise ValueError(f"unknown requirement kind {self.kind!r}")
        if self.kind == "permission" and not self.permissions:
            raise ValueError("a permission requirement needs at least one permission")
        if self.mode not in ("all", "any"):
            raise ValueError("mode must be 'all' or 'any'")
        for permission in self.permissions:
            validate_permission(permission)

    def describe(self) -> str:
        if self.kind != "permission":
            return self.kind
        joined = (" or " if self.mode == "any" else " and ").join(self.permissions)
        return joined + (f" (or own {{{self.owner_param}}})" if self.owner_param else "")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "permissions": list(self.permissions), "mode": self.mode, "owner_param": self.owner_param}


#: The attribute every authctl dependency callable (and any route marked with one) carries.
REQUIREMENT_ATTR = "authctl_requirement"
PUBLIC = Requirement("public")
AUTHENTICATED = Requirement("authenticated")


def permission(*permissions: str, any_of: bool = False, owner_param: str | None = None) -> Requirement:
    return Requirement("permission", tuple(permissions), "any" if any_of else "all", owner_param)


@dataclass
class Authentication:
    """The outcome of phase 1. ``checks`` is the full trace when asked to explain."""

    identity: "Identity | None"
    given: bool
    error: TokenError | None = None
    checks: list["Check"] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.identity is not None

    @property
    def reason(self) -> str:
        if self.identity is not None:
            return f"authenticated as {self.identity.user.username}"
        if not self.given:
            return "no credentials: the request carries no bearer token"
        return str(self.error)


@dataclass
class Decision:
    status: int
    requirement: Requirement
    authentication: Authentication
    access: "Access | None" = None
    granted_by: dict[str, str] = field(default_factory=dict)  # permission -> role that grants it
    missing: tuple[str, ...] = ()
    owner_match: bool = False
    reason: str = ""
    hint: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == ALLOWED

    @property
    def outcome(self) -> Outcome:
        return Outcome.of_status(self.status)

    @property
    def verdict(self) -> str:
        return self.outcome.value


def authenticate(
    store: "Store", token: str | None, *, explain: bool = False, now: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Authentication:
    """Phase 1. The decision comes from ``tokens.verify``; ``explain`` adds every check's line.

    ``overrides`` are the app's own settings (``Auth(settings=...)``) over the stored ones.
    """
    from . import tokens

    if token is None or not token.strip():
        return Authentication(identity=None, given=False)
    try:
        identity = tokens.verify(store, token, now=now, overrides=overrides)
        error = None
    except TokenError as exc:
        identity, error = None, exc
    checks = tokens.inspect(store, token, expected_type="access", now=now, overrides=overrides).checks if explain else []
    return Authentication(identity=identity, given=True, error=error, checks=checks)


def authorize(
    store: "Store", authentication: Authentication, requirement: Requirement, path_params: Mapping[str, Any] | None = None,
    *, explain: bool = False,
) -> Decision:
    """Phase 2: public routes pass; otherwise authenticated first (401), then permitted (403).

    ``explain`` adds the hint (for a 403, the smallest change that would allow it,
    which costs a few queries); the request path leaves it off.
    """
    if requirement.kind == "public":
        return Decision(ALLOWED, requirement, authentication, reason="the route is public")
    if not authentication.ok:
        return Decision(
            UNAUTHENTICATED, requirement, authentication,
            reason=authentication.reason, hint=_authentication_hint(authentication) if explain else None,
        )
    user = authentication.identity.user  # type: ignore[union-attr]
    if requirement.kind == "authenticated":
        return Decision(ALLOWED, requirement, authentication, reason="any authenticated user may call this route")
    access = store.access(user)
    granted = {p: access.permissions[g] for p in requirement.permissions if (g := permission_satisfied(p, access.permissions))}
    missing = tuple(p for p in requirement.permissions if p not in granted)
    owner_param = requirement.owner_param
    owner_match = bool(owner_param and _is_owner(user, (path_params or {}).get(owner_param)))
    satisfied = (not missing) if requirement.mode == "all" else bool(granted)
    if satisfied or owner_match:
        if satisfied:
            reason = "granted: " + ", ".join(f"{p} via role {role}" for p, role in granted.items())
        else:
            reason = f"allowed as the owner: {{{requirement.owner_param}}} is {user.username}'s own id"
        return Decision(ALLOWED, requirement, authentication, access, granted, missing, owner_match, reason)
    needed = missing if requirement.mode == "all" else requirement.permissions
    reason = f"{user.username} lacks " + (" and ".join(missing) if requirement.mode == "all" else "any of " + ", ".join(needed))
    return Decision(
        FORBIDDEN, requirement, authentication, access, granted, missing, owner_match, reason,
        hint=_forbidden_hint(store, user.username, access, needed, requirement.mode) if explain else None,
    )


def decide(
    store: "Store", token: str | None, requirement: Requirement, path_params: Mapping[str, Any] | None = None,
    *, explain: bool = False, now: int | None = None, overrides: Mapping[str, Any] | None = None,
) -> Decision:
    if requirement.kind == "public":
        return authorize(store, Authentication(identity=None, given=token is not None), requirement, path_params)
    authentication = authenticate(store, token, explain=explain, now=now, overrides=overrides)
    return authorize(store, authentication, requirement, path_params, explain=explain)


def _is_owner(user: Any, value: Any) -> bool:
    return value is not None and str(value) == str(user.id)


def _authentication_hint(authentication: Authentication) -> str:
    from .errors import TokenExpired, TokenRevoked, TokenUserInvalid

    error = authentication.error
    if not authentication.given:
        return "send `Authorization: Bearer <token>`; get one with `authctl token issue --as USER` or POST /token"
    if isinstance(error, TokenExpired):
        return "the token has expired: issue a new one (`authctl token issue --as USER`) or use the refresh token"
    if isinstance(error, TokenRevoked):
        return "the token was revoked: log in again for a new one"
    if isinstance(error, TokenUserInvalid):
        return "check the user with `authctl user show NAME` (enable it, or log in again after a logout/password change)"
    return "inspect the token with `authctl token inspect` to see every failing check"


def _forbidden_hint(store: "Store", username: str, access: "Access", needed: tuple[str, ...], mode: str) -> str:
    """The smallest change that would allow it: one role to assign, or one grant to a role the user has."""
    options: list[str] = []
    targets = needed if mode == "all" else needed[:1]
    holders = [role.name for role in store.list_roles() if all(
        permission_satisfied(p, store.role_permissions(role.name)) for p in targets
    )]
    if holders:
        smallest = min(holders, key=lambda name: len(store.role_permissions(name)))
        options.append(f"assign role {smallest} to {username}")
    if access.direct_roles:
        options.append(f"grant {' and '.join(targets)} to role {access.direct_roles[0]}")
    else:
        options.append(f"give {username} a role that has {' and '.join(targets)}")
    return ", or ".join(options)
