"""The FastAPI integration: an ``Auth`` object that gives dependencies and a router.

::

    from fastapi import Depends, FastAPI
    from authctl.fastapi import Auth

    auth = Auth(db="authctl.db")
    app = FastAPI()
    app.include_router(auth.router)          # POST /token, /token/refresh, /logout, GET /whoami, JWKS

    @app.delete("/student/{id}")
    async def delete_student(id: int, user=Depends(auth.require("students:delete"))):
        return {"message": f"Student {id} deleted"}

Dependencies (each carries its ``policy.Requirement`` as ``.authctl_requirement``,
so ``authctl routes`` / ``authctl check`` read what a route needs without calling it):

- ``auth.current_user``: authentication only (401); returns the ``store.User``.
- ``auth.require("a:b", ..., owner_param=None)``: authentication, then every permission (403).
- ``auth.require_any("a:b", "c:d", owner_param=None)``: one of the permissions suffices.
- ``auth.public``: marks a route as deliberately open (no token is read).
- ``auth.identity``: like ``current_user`` but returns the verified ``tokens.Identity``.

Every decision is made by ``policy.authenticate`` / ``policy.authorize`` (the one
decision engine ``authctl check`` also uses), from the database at request time:
a revoked role or a disabled user takes effect on the very next request. The
token is read from the ``Authorization: Bearer`` header only, never from the
query string. Password hashing runs in worker threads (bounded), never on the
event loop; everything on the per-request path is a few indexed SQLite reads
on one reused connection.
"""

from __future__ import annotations

import json
from enum import Enum
import threading
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm

from . import policy
from .errors import DatabaseError, InvalidInput, TokenError
from .policy import AUTHENTICATED, PUBLIC, REQUIREMENT_ATTR, Requirement
from .sessions import BACKOFF_AFTER, BACKOFF_BASE, BACKOFF_MAX, Sessions
from .store.engines import stamp_given

if TYPE_CHECKING:
    from .sessions import TokenPair
    from .store import Store, User
    from .tokens import Identity

__all__ = ["Auth", "public", "requirement_of", "offline_docs", "internal_error_handler", "whoami_view", "REQUIREMENT_ATTR"]


_AUTHN_STATE = "authctl_authentication"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
LOGIN_FAILED = "incorrect username or password"


def requirement_of(obj: Any) -> Requirement | None:
    """The ``policy.Requirement`` an authctl dependency (or marked route) carries, if any."""
    value = getattr(obj, REQUIREMENT_ATTR, None)
    return value if isinstance(value, Requirement) else None


async def public() -> None:
    """Marks a route as deliberately public: ``dependencies=[Depends(public)]``. Reads no token."""
    return None


setattr(public, REQUIREMENT_ATTR, PUBLIC)


class Auth:
    """Authentication and authorization for a FastAPI app, backed by an authctl database.

    ``db`` is the database path (default: ``AUTHCTL_DB`` or ``./authctl.db``), opened
    lazily on the first request and then reused; or pass an open ``store``.
    ``settings`` overrides stored settings (e.g. ``{"hide_forbidden_detail": True}``).

    Login throttling: from ``backoff_after`` recorded failures on a username on, each
    attempt first waits ``backoff_base * 2 ** (failures - backoff_after)`` seconds
    (at most ``backoff_max``), with ``asyncio.sleep``; at ``lockout_threshold``
    failures (a setting) the name is locked until ``authctl user unlock NAME``.
    ``hash_concurrency`` bounds the worker threads that hash passwords at once.
    """

    def __init__(
        self,
        db: Any = None,
        *,
        store: "Store | None" = None,
        settings: Mapping[str, Any] | None = None,
        prefix: str = "",
        tags: tuple[str, ...] = ("auth",),
        backoff_after: int = BACKOFF_AFTER,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        hash_concurrency: int | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self._db = db
        self._store = store
        self._owns_store = store is None
        self._given_store = store  # what ``use_store(None)`` goes back to
        self._open_lock = threading.Lock()
        from .config import check_environment, check_overrides

        check_environment()  # a bad AUTHCTL_* value or override fails here, at start-up, not as a 500 later
        self._overrides = dict(settings or {})
        check_overrides(self._overrides)
        self.prefix = prefix.rstrip("/")
        self.tags = list(tags)
        #: Login, refresh and logout: the session logic this adapter turns into HTTP.
        self.sessions = Sessions(
            lambda: self.store, self._overrides, backoff_after=backoff_after, backoff_base=backoff_base,
            backoff_max=backoff_max, hash_concurrency=hash_concurrency, sleep=sleep,
        )
        self._dependencies: dict[Requirement, Callable[..., Any]] = {}
        self._router: APIRouter | None = None
        self.token_url = f"{self.prefix}/token".lstrip("/")
        #: The raw bearer token (or None), for dependencies of your own; never from the query string.
        self.scheme = OAuth2PasswordBearer(tokenUrl=self.token_url, auto_error=False)
        self.current_user = self._dependency(AUTHENTICATED)
        self.identity = _Guard(self, AUTHENTICATED, returns="identity")
        self.public = public

    # ------------------------------------------------------------------ store

    @property
    def store(self) -> "Store":
        """The database, opened on first use and reused for every request."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    from .store import Store, resolve_db_path

                    self._store = Store.open(resolve_db_path(self._db))
        return self._store

    def close(self) -> None:
        """Close the database connection if this object opened it."""
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None
        self.sessions.close()

    def settings(self) -> Any:
        """Stored settings with this app's overrides (cached until the database changes)."""
        from . import tokens

        return tokens.current_settings(self.store, self._overrides or None)

    def use_store(self, store: "Store | None") -> None:
        """Serve from another open database from the next request on (``check --live`` snapshots);
        ``None`` goes back to this object's own database."""
        self.close()
        store = self._given_store if store is None else store
        self._store, self._owns_store = store, store is None

    # ------------------------------------------------------------------ dependencies

    def require(self, *permissions: str, owner_param: str | None = None) -> Callable[..., Any]:
        """Authentication, then every one of ``permissions`` (or the owner, see ``owner_param``)."""
        return self._dependency(policy.permission(*permissions, owner_param=owner_param))

    def require_any(self, *permissions: str, owner_param: str | None = None) -> Callable[..., Any]:
        """Authentication, then at least one of ``permissions``."""
        return self._dependency(policy.permission(*permissions, any_of=True, owner_param=owner_param))

    def _dependency(self, requirement: Requirement) -> Callable[..., Any]:
        """One guard per requirement (so FastAPI's per-request cache dedupes it)."""
        existing = self._dependencies.get(requirement)
        if existing is None:
            existing = self._dependencies.setdefault(requirement, _Guard(self, requirement))
        return existing

    async def _check(self, request: Request, token: str | None, requirement: Requirement) -> "User":
        """Decide with the engine; raise the 401/403 it calls for. Runs on the event loop."""
        state = request.scope.setdefault("state", {})
        try:
            store = self.store
            authentication = state.get(_AUTHN_STATE)
            if authentication is None:  # once per request, however many dependencies ask
                # on PostgreSQL the stamp is awaited (shared with concurrent requests) rather than
                # read with the loop blocked; a repeat token's lookup then needs no round trip
                with stamp_given(await store.engine.fresh_stamp() if token else None):
                    authentication = policy.authenticate(store, token, overrides=self._overrides or None)
                    decision = policy.authorize(store, authentication, requirement, request.path_params)
                state[_AUTHN_STATE] = authentication
            else:
                decision = policy.authorize(store, authentication, requirement, request.path_params)
        except DatabaseError:
            raise HTTPException(503, "authentication service unavailable", headers={"Retry-After": "5"}) from None
        if decision.status == policy.UNAUTHENTICATED:
            raise _unauthenticated(decision)
        if decision.status == policy.FORBIDDEN:
            raise HTTPException(403, self._forbidden_detail(decision))
        assert authentication.identity is not None  # allowed past authentication: there is an identity
        return authentication.identity.user

    def _forbidden_detail(self, decision: policy.Decision) -> str:
        try:
            hide = self.settings().hide_forbidden_detail
        except (DatabaseError, InvalidInput):
            hide = True
        if hide:
            return "forbidden"
        requirement = decision.requirement
        if requirement.mode == "any":
            return "forbidden: requires one of " + ", ".join(requirement.permissions)
        return "forbidden: requires " + " and ".join(decision.missing)

    # ------------------------------------------------------------------ sessions

    def login_delay(self, failures: int) -> float:
        """Seconds to wait before checking a password for a name with ``failures`` failures."""
        return self.sessions.login_delay(failures)

    async def login(self, username: str, password: str) -> "TokenPair | None":
        """Check a password and issue a token pair; ``None`` for every kind of failure alike."""
        return await self.sessions.login(username, password)

    # ------------------------------------------------------------------ router

    @property
    def router(self) -> APIRouter:
        """``POST /token``, ``POST /token/refresh``, ``POST /logout``, ``GET /whoami``, JWKS."""
        if self._router is None:
            self._router = self._build_router()
        return self._router

    def add_routes(self, app: Any) -> None:
        """Register the auth routes straight on ``app`` (a FastAPI app or APIRouter).

        The same routes as ``app.include_router(auth.router)``, without the per-request
        cost FastAPI's included-router matching adds to every request of the app.
        """
        self._build_router(app)

    def _build_router(self, target: Any = None) -> APIRouter:
        router = target if target is not None else APIRouter()
        prefix = self.prefix
        tags: list[str | Enum] = list(self.tags)
        auth = self

        @router.post(
            f"{prefix}/token", tags=tags, dependencies=[Depends(public)], summary="Log in (OAuth2 password flow)",
            responses={401: {"description": "incorrect username or password (the same for every cause)"}},
        )
        async def token(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> JSONResponse:
            """Exchange a username and password for an access and a refresh token."""
            repeated = _repeated_fields(await request.form())  # parsed once: FastAPI's form, cached
            if repeated:
                return _invalid_request_body(f"parameter(s) sent more than once: {', '.join(repeated)}")
            try:
                issued = await auth.sessions.login(form.username, form.password)
            except DatabaseError:
                raise HTTPException(503, "authentication service unavailable") from None
            if issued is None:
                raise HTTPException(401, LOGIN_FAILED, headers={"WWW-Authenticate": "Bearer", **_NO_STORE})
            return JSONResponse(issued.as_json(), headers=_NO_STORE)

        @router.post(
            f"{prefix}/token/refresh", tags=tags, dependencies=[Depends(public)], summary="Rotate a refresh token",
            openapi_extra=_token_body_schema(required=True),
        )
        async def refresh(request: Request) -> JSONResponse:
            """A new access and refresh token; the old refresh token stops working.

            Presenting a refresh token that was already used revokes every token of
            its family (a reused refresh token means it was stolen).
            """
            value = await _read_refresh_token(request)
            if not value:
                raise HTTPException(
                    400, "send refresh_token (form field or JSON)", headers=_NO_STORE
                )
            try:
                issued = await anyio.to_thread.run_sync(auth.sessions.refresh, value)
            except TokenError as exc:  # RefreshReused included: its message says the session was revoked
                raise _invalid_token(str(exc)) from None
            except DatabaseError:
                raise HTTPException(503, "authentication service unavailable") from None
            return JSONResponse(issued.as_json(), headers=_NO_STORE)

        @router.post(f"{prefix}/logout", tags=tags, summary="End this session", openapi_extra=_token_body_schema(required=False))
        async def logout(request: Request, identity: Any = Depends(auth.identity)) -> dict[str, Any]:
            """Revoke the presented access token and, if sent, the refresh token's whole family."""
            value = await _read_refresh_token(request)
            try:
                family_revoked = await anyio.to_thread.run_sync(auth.sessions.logout, identity, value)
            except DatabaseError:
                raise HTTPException(503, "authentication service unavailable") from None
            return {"detail": "logged out", "access_token_revoked": True, "refresh_family_revoked": family_revoked}

        @router.get(f"{prefix}/whoami", tags=tags, summary="The server's own view of the caller")
        async def whoami(identity: Any = Depends(auth.identity)) -> JSONResponse:
            """Identity, roles, effective permissions and the token's key facts (never the token)."""
            return JSONResponse(whoami_view(auth.store, identity))

        @router.get(f"{prefix}/.well-known/jwks.json", tags=tags, dependencies=[Depends(public)], summary="Public signing keys (JWK Set)")
        async def jwks() -> JSONResponse:
            try:
                data = _jwks(auth.store)
            except DatabaseError:
                raise HTTPException(503, "authentication service unavailable") from None
            return JSONResponse(data, headers={"Cache-Control": "public, max-age=60"})

        return router


class _Guard(OAuth2PasswordBearer):
    """A dependency that reads the bearer token and asks the decision engine.

    It is an ``OAuth2PasswordBearer`` so that OpenAPI marks the route as needing
    the password-flow token (Swagger's lock and "Authorize" button), in a single
    dependency level. ``authctl_requirement`` is what ``authctl routes`` reads.
    """

    def __init__(self, auth: "Auth", requirement: Requirement, *, returns: str = "user"):
        super().__init__(tokenUrl=auth.token_url, auto_error=False, scheme_name="OAuth2PasswordBearer")
        self._auth = auth
        self._returns = returns
        setattr(self, REQUIREMENT_ATTR, requirement)
        self.__name__ = "identity" if returns == "identity" else (
            "current_user" if requirement.kind == "authenticated" else f"require[{requirement.describe()}]"
        )

    async def __call__(self, request: Request) -> Any:  # type: ignore[override]
        authorization = _one_authorization(request)
        scheme, _, param = (authorization or "").partition(" ")
        token = param.strip() if scheme.lower() == "bearer" and param.strip() else None
        user = await self._auth._check(request, token, getattr(self, REQUIREMENT_ATTR))
        if self._returns == "identity":
            return request.scope["state"][_AUTHN_STATE].identity
        return user

    def __repr__(self) -> str:
        return f"<authctl {self.__name__}>"


def auth_objects(app: Any) -> list["Auth"]:
    """Every ``Auth`` an app's routes depend on (and ``app.state.auth``), without running them."""
    found: dict[int, Auth] = {}
    state_auth = getattr(getattr(app, "state", None), "auth", None)
    if isinstance(state_auth, Auth):
        found[id(state_auth)] = state_auth

    def walk(dependant: Any) -> None:
        for sub in getattr(dependant, "dependencies", ()) or ():
            call = getattr(sub, "call", None)
            if isinstance(call, _Guard):
                found.setdefault(id(call._auth), call._auth)
            walk(sub)

    from . import routes

    for info in routes.inventory(app):
        walk(getattr(info.route, "dependant", None))
    return list(found.values())


def settings_overrides(app: Any) -> dict[str, Any]:
    """The ``Auth(settings=...)`` overrides of an app's integration, for offline decisions."""
    merged: dict[str, Any] = {}
    for auth in auth_objects(app):
        merged.update(auth._overrides)
    return merged


def rebind(app: Any, store: "Store") -> list["Auth"]:
    """Point every ``Auth`` of ``app`` at ``store``; returns those now serving from it.

    An empty list means nothing was rebound: the app does not run on ``store``, so a
    caller must not treat a request to it as landing on that copy.
    """
    auths = auth_objects(app)
    for auth in auths:
        auth.use_store(store)
    return [auth for auth in auths if auth._store is store]


def whoami_view(store: "Store", identity: "Identity") -> dict[str, Any]:
    """The JSON of ``GET /whoami``: who, which roles, what they may do, which token."""
    user = identity.user
    access = store.access(user)
    claims = identity.claims
    now = int(time.time())
    return {
        "authenticated": True,
        "user": {"id": user.id, "uid": user.uid, "username": user.username, "status": user.status},
        "roles": [{"role": role, "via": via} for role, via in access.roles.items()],
        "direct_roles": list(access.direct_roles),
        "permissions": [{"permission": p, "granted_by": role} for p, role in sorted(access.permissions.items())],
        "token": {
            "type": identity.token_type,
            "alg": identity.header.get("alg"),
            "kid": identity.kid,
            "jti": identity.jti,
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "sub": claims.get("sub"),
            "issued_at": claims.get("iat"),
            "expires_at": identity.expires_at,
            "expires_in": max(0, identity.expires_at - now),
        },
    }


def _jwks(store: "Store") -> dict[str, Any]:
    from . import keys

    return keys.jwks(store.keys())


def _unauthenticated(decision: policy.Decision) -> HTTPException:
    if decision.authentication.given:
        return _invalid_token(decision.reason)
    return HTTPException(401, "not authenticated: send Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": "Bearer"})


# --------------------------------------------------------------------------- malformed requests (400)


def _one_authorization(request: Request) -> str | None:
    """The request's Authorization header. Several are a 400 ``invalid_request`` (RFC 6750 §3.1,
    RFC 9110 §5.3): which one a proxy or another framework would read is anyone's guess."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise HTTPException(400, "send one Authorization header, not several",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
    return values[0] if values else None


def _repeated_fields(form: Any) -> list[str]:
    """Form fields given more than once (RFC 6749 §3.2: request parameters must not repeat)."""
    counts: dict[str, int] = {}
    for name, _value in form.multi_items():
        counts[name] = counts.get(name, 0) + 1
    return sorted(name[:40] for name, count in counts.items() if count > 1)


def _invalid_request_body(description: str) -> JSONResponse:
    """RFC 6749 §5.2's error response (with FastAPI's ``detail`` beside it)."""
    return JSONResponse(
        {"error": "invalid_request", "error_description": description, "detail": description},
        status_code=400, headers=_NO_STORE,
    )


def _invalid_token(reason: str) -> HTTPException:
    line = (reason.strip().splitlines() or ["invalid token"])[0][:200]
    return HTTPException(401, line, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _read_refresh_token(request: Request) -> str | None:
    """``refresh_token`` from a form or JSON body (never from the query string)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            body = await request.body()
            data = json.loads(body, object_pairs_hook=_no_repeats) if body else {}
            value = data.get("refresh_token") if isinstance(data, dict) else None
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            if _repeated_fields(form):
                raise _Repeated()
            value = form.get("refresh_token")
        else:
            value = None
    except _Repeated:
        raise HTTPException(400, "invalid_request: a parameter was sent more than once", headers=_NO_STORE) from None
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "malformed request body") from None
    return value.strip() if isinstance(value, str) and value.strip() else None


class _Repeated(Exception):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise _Repeated()
    return dict(pairs)


def _token_body_schema(*, required: bool) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"refresh_token": {"type": "string"}},
        **({"required": ["refresh_token"]} if required else {}),
    }
    return {"requestBody": {"required": required, "content": {
        "application/x-www-form-urlencoded": {"schema": schema},
        "application/json": {"schema": schema},
    }}}


# --------------------------------------------------------------------------- offline docs


def offline_docs(app: Any, *, path: str = "/docs", assets_path: str = "/docs-assets", title: str | None = None) -> None:
    """Serve Swagger UI at ``path`` from the ``swagger-ui-bundle`` package: no CDN, works offline.

    Create the app with ``FastAPI(docs_url=None, redoc_url=None)`` first. The routes
    added here are marked public, so ``authctl routes`` does not flag them.
    """
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    redirect_path = f"{path}/oauth2-redirect"

    @app.get(path, include_in_schema=False, dependencies=[Depends(public)])
    async def swagger_ui(request: Request) -> Any:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=title or f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_path,
            swagger_js_url=f"{root}{assets_path}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_path}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_path}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(redirect_path, include_in_schema=False, dependencies=[Depends(public)])
    async def swagger_ui_redirect() -> Any:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(assets_path, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    for route in app.router.routes:
        if getattr(route, "path", None) == assets_path:
            setattr(route, REQUIREMENT_ATTR, PUBLIC)


def internal_error_handler(app: Any) -> None:
    """A JSON 500 that says nothing about the request (no token, no header, no traceback)."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    app.add_exception_handler(Exception, handler)

