"""``authctl check``: one request, matched against the app's own routes and explained.

The decision comes from ``routes.decide`` (which calls ``policy.authenticate`` and
``policy.authorize``, exactly as the app's dependencies do); no handler runs.
``--live`` then sends the same request to the app in-process (on a snapshot copy of
the database when authctl proved the app runs on it) or to a running server, and
compares the two: they agree only when they have the same ``policy.Outcome``.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal

from .errors import InvalidInput

if TYPE_CHECKING:
    from .policy import Decision
    from .probe import Response
    from .routes import RouteInfo
    from .store import Store

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Subject:
    """Who the request claims to be: a user (token minted here), a given token, or nobody."""

    kind: Literal["user", "token", "anonymous"]
    label: str
    token: str | None = field(default=None, repr=False)
    minted_kid: str | None = None
    credential: Any = field(default=None, repr=False)  # a targets.Credential: how the target's app is spoken to
    target: str | None = None

    @property
    def sends_credentials(self) -> bool:
        """A bearer token or a target's credential goes with the request (for the clear-text transport rule)."""
        return self.token is not None or self.credential is not None


def subject_for_user(store: "Store", username: str, overrides: dict[str, Any] | None = None) -> Subject:
    """Mint an access token with the active key, as the app would receive it from its
    own ``/token`` (with the app's settings ``overrides``, such as its audience).

    A disabled user still gets a token here, so the trace can show the server
    refusing it (the 401 a disabled account really gets).
    """
    from . import tokens

    issued = tokens.issue(store, username, allow_disabled=True, overrides=overrides)
    user = store.get_user(username)
    return Subject("user", user.username, issued.token, issued.header.get("kid"))


def subject_for_target(store: "Store", target: Any, username: str) -> Subject:
    """A user's credential spoken the target's way (token template, login, Basic)."""
    from . import targets

    credential = targets.credential(store, target, username)
    user = store.get_user(username)
    return Subject("user", user.username, credential.token, None, credential, target.name)


def subject_for_target_token(target: Any, token: str) -> Subject:
    """A given token sent the target's way, checked against the target's key."""
    from . import targets, tokens

    cleaned = tokens.strip_token(token)
    if not cleaned:
        raise InvalidInput("the token is empty")
    return Subject("token", f"the given token (target {target.name})", cleaned, None,
                   targets.credential_for_token(target, cleaned), target.name)


def subject_for_token(token: str) -> Subject:
    from . import tokens

    cleaned = tokens.strip_token(token)
    if not cleaned:
        raise InvalidInput("the token is empty")
    return Subject("token", "the given token", cleaned)


ANONYMOUS = Subject("anonymous", "anonymous (no token)")


def subject(store: "Store | None", *, user: str | None = None, token: str | None = None,
            overrides: dict[str, Any] | None = None, target: Any = None) -> Subject:
    """The one way to say who a request is: a user (a token minted here, or spoken the
    ``target``'s way), a given token, or anonymous when neither is given."""
    if user is not None:
        assert store is not None, "a user's token is minted from the store"
        return subject_for_target(store, target, user) if target is not None else subject_for_user(store, user, overrides)
    if token is not None:
        return subject_for_target_token(target, token) if target is not None else subject_for_token(token)
    return ANONYMOUS


def normalize_method(method: str) -> str:
    upper = method.strip().upper()
    if upper not in HTTP_METHODS:
        raise InvalidInput(f"unknown HTTP method {method[:20]!r}: use one of {', '.join(HTTP_METHODS)}")
    return upper


@dataclass
class CheckResult:
    method: str
    path: str
    route: "RouteInfo"
    path_params: dict[str, Any]
    subject: Subject
    decision: "Decision"
    live: "Response | None" = None
    live_source: str | None = None
    live_snapshot: bool | None = None  # the live request landed on a proven snapshot

    @property
    def undecided(self) -> str | None:
        """The code that decides offline-unknown outcomes (a guard): never an agreement, never a pass."""
        return getattr(self.decision, "undecided", None)

    @property
    def agrees(self) -> bool | None:
        """Same outcome offline and live; a live 404, 422 or 5xx never agrees with "allowed".

        ``None``: nothing to compare, or the offline side is undecided (a guard's code decides).
        """
        if self.live is None or self.undecided:
            return None
        return self.decision.outcome.agrees_with(self.live.outcome)

    @property
    def exit_code(self) -> int:
        """6 for a disagreement; an undecided check exits as the live answer, or 1 offline (never 0)."""
        if self.agrees is False:
            return 6
        if self.undecided and self.live is not None:
            return self.live.outcome.exit_code
        return self.decision.outcome.exit_code

    def as_dict(self) -> dict[str, Any]:
        return check_json(self)


def check(store: "Store", app: Any, method: str, path: str, subject: Subject) -> CheckResult:
    """Match the route (``NoRoute``: exit 5) and decide, with every check's line."""
    from . import routes

    method = normalize_method(method)
    info, params = routes.match(app, method, path)
    if not info.requirements and not info.is_native:  # an open route: is it flagged as a likely mistake?
        flagged = {(i.method, i.path): i for i in routes.inventory(app)}.get((info.method, info.path))
        if flagged is not None and (flagged.flag or flagged.login):
            info = flagged
    decision = routes.decide(store, info, subject.token, params, explain=True, overrides=app_overrides(app),
                             credential=subject.credential)
    return CheckResult(method, path, info, params, subject, decision)


def app_overrides(app: Any) -> dict[str, Any] | None:
    """The settings the app's own ``Auth`` uses over the stored ones, so offline agrees with live."""
    from .fastapi import settings_overrides

    return settings_overrides(app) or None


# --------------------------------------------------------------------------- live


@dataclass
class LiveApp:
    """An app ready for in-process live requests, and what authctl proved about it.

    ``snapshot`` is true only when every request lands on a private copy: the bundled
    app built on the copy, or an app whose ``Auth`` objects ``fastapi.rebind`` moved to
    it. ``source`` says where requests go, for the output.
    """

    app: Any
    snapshot: bool
    source: str


@contextmanager
def in_process(store: "Store", app_spec: str | None) -> Iterator[LiveApp]:
    """The app in-process, rebound to a private copy of the database when it can be proven."""
    from . import fastapi as integration
    from . import routes
    from .store import Store

    with tempfile.TemporaryDirectory(prefix="authctl-snapshot-") as directory:
        copy = store.snapshot(Path(directory) / "snapshot.db")
        snapshot_store = Store.open(copy)
        rebound: list[Any] = []
        try:
            if app_spec is None:
                from .app import create_app

                yield LiveApp(create_app(store=snapshot_store), True, "in-process, on a snapshot copy of the database")
                return
            app = routes.load_app(app_spec)
            rebound = integration.rebind(app, snapshot_store)
            if rebound:
                count = f"{len(rebound)} authctl Auth" + ("" if len(rebound) == 1 else "s")
                yield LiveApp(app, True, f"in-process, on a snapshot copy of the authctl database ({count} rebound;"
                                         " data the app keeps elsewhere is its own)")
            else:
                yield LiveApp(app, False, f"in-process, on {app_spec}'s own data: NOT a snapshot"
                                          " (authctl found no Auth of its integration to rebind)")
        finally:
            for auth in rebound:  # the imported app outlives this run: give it back its own database
                auth.use_store(None)
            snapshot_store.close()


@contextmanager
def snapshot_app(store: "Store", app_spec: str | None) -> Iterator[Any]:
    """The app running on a private copy of the database; an app authctl cannot rebind is an error."""
    with in_process(store, app_spec) as running:
        if not running.snapshot:
            raise InvalidInput(f"{app_spec} does not use authctl's integration: it cannot run on a snapshot")
        yield running.app


def attach_live(results: list[CheckResult], *, app: Any = None, url: str | None = None, source: str,
                snapshot: bool | None = None) -> None:
    """Send every checked request for real and record what came back, and where it went."""
    from . import probe

    planned = [probe.Planned(probe.Request(r.method, r.path, r.subject.token, r.subject.credential),
                             anonymous=r.subject.kind == "anonymous", secured=r.route.is_native or None,
                             missing_scopes=tuple(getattr(r.decision, "missing_scopes", ())), decided=r.decision.status)
               for r in results]
    for result, response in zip(results, probe.send_planned(planned, app=app, url=url)):
        result.live, result.live_source, result.live_snapshot = response, source, snapshot


def require_safe_method(method: str, unsafe: bool, where: str = "a live server") -> None:
    """Mutating methods reach real data only when ``unsafe`` (a running server, an app not on a snapshot)."""
    if method not in SAFE_METHODS and not unsafe:
        raise InvalidInput(f"{method} may change data on {where}", hint="unsafe")


def check_live(result: CheckResult, store: "Store", app_spec: str | None, *, url: str | None = None,
               unsafe: bool = False) -> None:
    """``check --live`` / ``--url``: send the request where it is safe, or where ``unsafe`` allows.

    In-process, a mutating method runs without ``--unsafe`` only on a proven snapshot.
    """
    from . import probe

    if url:
        require_safe_method(result.method, unsafe)
        probe.check_transport(url, sends_token=result.subject.sends_credentials, insecure_transport=False)
        attach_live([result], url=url, source=url, snapshot=False)
        return
    with in_process(store, app_spec) as running:
        if not running.snapshot:
            require_safe_method(result.method, unsafe, f"{app_spec}'s own data (authctl could not rebind it to a snapshot)")
        attach_live([result], app=running.app, source=running.source, snapshot=running.snapshot)


# --------------------------------------------------------------------------- JSON


def check_json(result: CheckResult) -> dict[str, Any]:
    decision = result.decision
    authn = decision.authentication
    identity = authn.identity
    access = decision.access
    data: dict[str, Any] = {
        "request": {"method": result.method, "path": result.path},
        "route": {**result.route.as_dict(), "path_params": {k: _plain(v) for k, v in result.path_params.items()}},
        "authentication": {
            "subject": {"kind": result.subject.kind, "label": result.subject.label, "kid": result.subject.minted_kid},
            "checked": decision.requirement.kind != "public" and bool(result.route.requirements),
            "ok": authn.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in authn.checks],
            "identity": None if identity is None else {
                "username": identity.user.username, "uid": identity.user.uid, "jti": identity.jti, "kid": identity.kid,
            },
            "reason": authn.reason,
        },
        "authorization": {
            "requirement": decision.requirement.as_dict(),
            "requires": decision.requirement.describe(),
            "roles": [] if access is None else [{"role": r, "via": v} for r, v in access.roles.items()],
            "permissions": [] if access is None else [
                {"permission": p, "granted_by": r} for p, r in sorted(access.permissions.items())
            ],
            "granted": [{"permission": p, "granted_by": r} for p, r in decision.granted_by.items()],
            "missing": list(decision.missing),
            "owner_match": decision.owner_match,
        },
        "verdict": {
            "status": decision.status,
            "result": decision.verdict,
            "outcome": decision.outcome.value,
            "reason": decision.reason,
            "hint": decision.hint,
            "unprotected": result.route.unprotected,
            "undecided": result.undecided,
            "exit_code": result.exit_code,
        },
        "native": None,
        "live": None,
    }
    from .routes import NativeDecision

    if isinstance(decision, NativeDecision) and decision.native is not None:
        data["native"] = {
            "target": result.subject.target,
            "steps": [{"ok": ok, "name": name, "detail": detail} for ok, name, detail in decision.steps],
            "missing_scopes": list(decision.missing_scopes),
            "undecided": decision.undecided,
            "fastapi_note": decision.version_note,
        }
    if result.live is not None:
        data["live"] = {**result.live.as_dict(), "source": result.live_source, "snapshot": result.live_snapshot,
                        "agrees": result.agrees}
    return data


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
