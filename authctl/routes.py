"""The route inventory and matcher: what an app's routes require, read without calling them.

Used by ``authctl routes`` and ``authctl check``::

    from authctl import routes
    app = routes.load_app("myapp.main:app")          # None: the bundled demo app
    for info in routes.inventory(app):               # one RouteInfo per method and path
        print(info.method, info.path, info.describe())
    info, params = routes.match(app, "DELETE", "/student/3")   # raises errors.NoRoute (exit 5)
    decision = routes.decide(store, info, token, params)       # the server's own decision

A route's requirement is found by walking its FastAPI dependency tree for the
callables ``authctl.fastapi`` made (they carry a ``policy.Requirement`` as
``authctl_requirement``); a non-FastAPI route (a mount, a plain Starlette route)
may carry that attribute itself. FastAPI's own docs routes count as public.
A route with no requirement at all is "unprotected?": possibly a mistake.

``match`` follows the app's router: routes in order (included routers in place,
mounted sub-apps recursively), the first full match wins, a path match with the
wrong method is a 405 naming the allowed methods, and a miss that the router
would redirect (trailing slash) says so.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import unquote

from .errors import InvalidInput, MethodNotAllowed, RouteNotFound
from .policy import PUBLIC, REQUIREMENT_ATTR, Decision, Outcome, Requirement

if TYPE_CHECKING:
    from .store import Store

DEFAULT_APP = "authctl.app:app"
_KIND_RANK = {"public": 0, "authenticated": 1, "permission": 2}


@dataclass(frozen=True)
class RouteInfo:
    """One method of one route and what it requires.

    ``requirement`` summarises every authctl requirement on the route (``None``:
    none); ``requirements`` lists each one in the order the server checks them
    (each failing one stops the request), for ``decide``. ``native`` is the app's
    own security (fastapi.security schemes, scopes, guards). ``flag`` says why an
    open route looks like a mistake; ``login`` marks an OAuth2 scheme's tokenUrl.
    """

    method: str
    path: str
    requirement: Requirement | None
    name: str | None = None
    requirements: tuple[Requirement, ...] = ()
    include_in_schema: bool = True
    route: Any = field(default=None, repr=False, compare=False, hash=False)
    native: "Native | None" = None
    flag: str | None = None
    login: bool = False

    @property
    def kind(self) -> str:
        """public, authenticated, scopes, guarded, permission (authctl's), or open (looks like a mistake)."""
        if self.requirement is not None:
            return self.requirement.kind
        native = self.native
        if native is not None and native.reads_credentials:
            if native.guards:
                return "guarded"
            return "scopes" if native.scopes else "authenticated"
        return "open" if self.flag else "public"

    @property
    def is_native(self) -> bool:
        """The app's own security decides (no authctl requirement)."""
        return self.requirement is None and self.native is not None and self.native.reads_credentials

    @property
    def unprotected(self) -> bool:
        """Nothing reads credentials and the route looks like a mistake."""
        return self.flag is not None

    def describe(self) -> str:
        if self.requirement is not None:
            return self.requirement.describe()
        if self.is_native:
            return self.native.describe()  # type: ignore[union-attr]
        if self.login:
            return "public (login: the scheme's tokenUrl)"
        return "nothing (open?)" if self.flag else "public"

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "name": self.name,
            "kind": self.kind,
            "requires": self.describe(),
            "requirement": self.requirement.as_dict() if self.requirement is not None else None,
            "native": self.native.as_dict() if self.native is not None else None,
            "unprotected": self.unprotected,
            "flag": self.flag,
            "login": self.login,
        }


# --------------------------------------------------------------------------- loading


def load_app(spec: str | None = None) -> Any:
    """Import an ASGI app from ``"module:attr"`` (like uvicorn; ``"module"`` means ``module:app``).

    ``None`` is the bundled demo app. The current directory is put on ``sys.path``.
    An attribute that is not an app but a Python function or class is treated as a
    factory and called without arguments (a builtin such as ``sys.exit`` never is).
    Any failure, including a module or factory that calls ``sys.exit`` (whatever the
    code), is one ``InvalidInput`` line (exit 1): a broken app is never an answer.
    """
    spec = spec or DEFAULT_APP
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")) or not all(
        part.isidentifier() for part in attr.split(".")
    ):
        raise InvalidInput(f"app {spec[:80]!r} is not of the form module:attribute")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"cannot import app {spec!r}: no module named {exc.name!r}") from None
    except AttributeError:
        raise InvalidInput(f"cannot import app {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    except InvalidInput:
        raise
    except SystemExit as exc:  # sys.exit(0) while importing is a failure too, not "allowed"
        raise InvalidInput(f"cannot import app {spec!r}: importing it called sys.exit({exc.code!r})") from None
    except Exception as exc:  # the user's module raised while importing
        raise InvalidInput(f"cannot import app {spec!r}: {type(exc).__name__} while importing it") from None
    if not _is_app(obj) and (inspect.isfunction(obj) or inspect.isclass(obj)):
        try:
            obj = obj()
        except SystemExit as exc:
            raise InvalidInput(f"cannot build app {spec!r}: the factory called sys.exit({exc.code!r})") from None
        except Exception as exc:
            raise InvalidInput(f"cannot build app {spec!r}: the factory raised {type(exc).__name__}") from None
    if not _is_app(obj):
        raise InvalidInput(f"{spec!r} is not a Starlette/FastAPI app (no router)")
    return obj


def _is_app(obj: Any) -> bool:
    return hasattr(obj, "router") and hasattr(getattr(obj, "router"), "routes")


# --------------------------------------------------------------------------- walking routes


def _contexts(routes: list[Any]) -> Iterator[Any]:
    """Routes in dispatch order, included FastAPI routers expanded in place."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI flattens included routers itself
        yield from routes
        return
    yield from iter_route_contexts(routes)


def _attr(route: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(route, name)
    except AttributeError:
        return default


def _original(route: Any) -> Any:
    return _attr(route, "original_route", route)


def _is_mount(route: Any) -> bool:
    from starlette.routing import Mount

    return isinstance(_attr(route, "_effective_route", route), Mount) or isinstance(_original(route), Mount)


def _requirements_of(route: Any) -> tuple[Requirement, ...]:
    """Every authctl requirement of a route, in the order FastAPI resolves its dependencies."""
    found: list[Requirement] = []
    marked = _attr(route, REQUIREMENT_ATTR) or _attr(_original(route), REQUIREMENT_ATTR)
    if isinstance(marked, Requirement):
        found.append(marked)
    dependant = _attr(route, "dependant")
    if dependant is not None:
        seen: set[int] = set()

        def walk(node: Any) -> None:
            for sub in getattr(node, "dependencies", ()) or ():
                walk(sub)  # sub-dependencies run before the dependency itself
                call = getattr(sub, "call", None)
                requirement = getattr(call, REQUIREMENT_ATTR, None)
                if isinstance(requirement, Requirement) and id(call) not in seen:
                    seen.add(id(call))
                    found.append(requirement)

        walk(dependant)
    if not found and _is_docs_route(route):
        found.append(PUBLIC)
    return tuple(found)


def _is_docs_route(route: Any) -> bool:
    """FastAPI's generated /openapi.json, /docs, /docs/oauth2-redirect and /redoc."""
    endpoint = _attr(route, "endpoint")
    module = getattr(endpoint, "__module__", "") or ""
    name = _attr(route, "name")
    return module.startswith("fastapi.") and name in ("openapi", "swagger_ui_html", "swagger_ui_redirect", "redoc_html")


def _summarize(requirements: tuple[Requirement, ...]) -> Requirement | None:
    """One requirement that says what a route needs, for listing. ``None``: no requirement."""
    if not requirements:
        return None
    strongest = max(_KIND_RANK[r.kind] for r in requirements)
    top = [r for r in requirements if _KIND_RANK[r.kind] == strongest]
    if len(top) == 1 or strongest < 2:
        return top[0]
    if all(r.mode == "all" and r.owner_param is None for r in top):
        merged: list[str] = []
        for r in top:
            merged += [p for p in r.permissions if p not in merged]
        return Requirement("permission", tuple(merged))
    return top[0]  # mixed any/owner forms: `requirements` has the exact list


def _methods(route: Any) -> tuple[str, ...]:
    methods = _attr(route, "methods")
    if methods is None:
        from starlette.staticfiles import StaticFiles

        if _is_mount(route) and isinstance(_attr(route, "app"), StaticFiles):
            return ("GET",)
        return ("*",)
    methods = set(methods)
    if "GET" in methods:
        methods.discard("HEAD")
    order = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return tuple(sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m)))


def _path(route: Any, prefix: str) -> str:
    path = _attr(route, "path_format") or _attr(route, "path") or ""
    if _is_mount(route):
        path = (_attr(route, "path") or "").rstrip("/") + "/{path}"
    return prefix + path


def _children(route: Any) -> list[Any]:
    if not _is_mount(route):
        return []
    return list(_attr(route, "routes", None) or [])


def _infos(route: Any, prefix: str, inherited: tuple[Requirement, ...],
           declared: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]] | None = None) -> list[RouteInfo]:
    if _attr(route, "methods") is None and not _is_mount(route) and _attr(route, "path") is None:
        return []  # Host routes and other exotic ones are not listed
    path = _path(route, prefix)
    try:
        requirements = inherited + _requirements_of(route)
        native = _read_native(route)
    except InvalidInput as exc:
        raise InvalidInput(f"cannot read the dependencies of {path[:80]}: {exc}") from None
    except Exception as exc:  # an app object that raises when read
        raise InvalidInput(f"cannot read the dependencies of {path[:80]}: {type(exc).__name__} while reading them") from None
    summary = _summarize(requirements)
    name = _attr(route, "name")
    include = bool(_attr(route, "include_in_schema", True))
    return [
        RouteInfo(m, path, summary, name, requirements, include, route,
                  _with_openapi_scopes(native, (declared or {}).get((m, path))) if native.reads_credentials else None)
        for m in _methods(route)
    ]


def inventory(app: Any) -> list[RouteInfo]:
    """Every HTTP route of ``app`` (mounted sub-apps included), one entry per method,
    open routes that look like a mistake flagged."""
    result: list[RouteInfo] = []
    declared = _openapi_security(app)

    def visit(routes: list[Any], prefix: str, inherited: tuple[Requirement, ...]) -> None:
        from starlette.routing import WebSocketRoute

        for route in _contexts(routes):
            effective = _attr(route, "_effective_route", route)
            if isinstance(effective, WebSocketRoute) or isinstance(_original(route), WebSocketRoute):
                continue
            children = _children(route)
            if children:
                mount_path = (_attr(route, "path") or "").rstrip("/")
                visit(children, prefix + mount_path, inherited + _requirements_of(route))
            else:
                result.extend(_infos(route, prefix, inherited, declared))

    visit(list(app.router.routes), "", ())
    return _flag_open_routes(result)


# --------------------------------------------------------------------------- matching


def match(app: Any, method: str, path: str) -> tuple[RouteInfo, dict[str, Any]]:
    """The route the server would run for ``METHOD path``, and its converted path parameters.

    Raises ``RouteNotFound`` (404) or ``MethodNotAllowed`` (405, with ``.allowed``),
    both ``errors.NoRoute`` (exit 5). A query string or fragment is ignored.
    """
    method = method.strip().upper()
    raw_path = path.split("#", 1)[0].split("?", 1)[0] or "/"
    if not raw_path.startswith("/"):
        raw_path = "/" + raw_path
    scope = _scope(method, unquote(raw_path))
    found = _match_routes(list(app.router.routes), scope, "", ())
    if found[0] == "full":
        _, route, params, prefix, inherited = found
        info = _info_for(route, method, prefix, inherited, _openapi_security(app))
        return info, params
    if found[0] == "partial":
        allowed = found[1]
        shown = ", ".join(allowed)
        raise MethodNotAllowed(f"{method} {raw_path}: method not allowed (405); the route allows {shown}", allowed)
    redirect = _redirect_target(app, scope)
    if redirect is not None:
        raise RouteNotFound(f"no route matches {method} {raw_path}; the server redirects it to {redirect} (307)")
    raise RouteNotFound(f"no route matches {method} {raw_path} (404)")


def path_params(app: Any, info: RouteInfo, path: str) -> dict[str, Any]:
    """The converted path parameters of ``path`` on the route ``info`` describes.

    Asks that route alone (one regex, not the whole router: a matrix over 1,000
    routes would otherwise match every route against every other); a path the
    route does not take falls back to ``match``.
    """
    from starlette.routing import Match

    route = info.route
    own = _attr(route, "path_format") or _attr(route, "path") or ""
    prefix = info.path[: len(info.path) - len(own)] if own and info.path.endswith(own) else None
    if prefix is not None and path.startswith(prefix) and hasattr(route, "matches"):
        result, child = route.matches(_scope(info.method, path[len(prefix):] or "/"))
        if result == Match.FULL:
            return dict(child.get("path_params", {}))
    return match(app, info.method, path)[1]


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
        "path_params": {}, "query_string": b"", "headers": [], "scheme": "http",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 0), "http_version": "1.1",
    }


def _match_routes(
    routes: list[Any], scope: dict[str, Any], prefix: str, inherited: tuple[Requirement, ...]
) -> tuple[Any, ...]:
    from starlette.routing import Match

    allowed: list[str] = []
    for route in _contexts(routes):
        if not hasattr(route, "matches"):
            continue
        result, child_scope = route.matches(scope)
        if result == Match.FULL:
            children = _children(route)
            if children:
                sub_scope = {**scope, **{k: v for k, v in child_scope.items() if not k.startswith("fastapi")}}
                mount_path = (_attr(route, "path") or "").rstrip("/")
                # a full match on a mount is final: what the mounted app lacks, it answers 404 itself
                return _match_routes(children, sub_scope, prefix + mount_path, inherited + _requirements_of(route))
            params = dict(child_scope.get("path_params", {}))
            return ("full", route, params, prefix, inherited)
        if result == Match.PARTIAL:
            for m in _methods(route):
                if m not in allowed:
                    allowed.append(m)
    if allowed:
        return ("partial", tuple(allowed))
    return ("none",)


def _info_for(route: Any, method: str, prefix: str, inherited: tuple[Requirement, ...],
              declared: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]] | None = None) -> RouteInfo:
    import dataclasses

    infos = _infos(route, prefix, inherited, declared)
    for info in infos:
        if info.method == method:
            return info
    for info in infos:  # HEAD served by a GET route, or a route taking any method
        if info.method in ("GET", "*"):
            return dataclasses.replace(info, method=method)
    return infos[0]


def _redirect_target(app: Any, scope: dict[str, Any]) -> str | None:
    from starlette.routing import Match

    if not getattr(app.router, "redirect_slashes", True) or scope["path"] == "/":
        return None
    path = scope["path"]
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    redirect_scope = {**scope, "path": other}
    for route in app.router.routes:
        if hasattr(route, "matches") and route.matches(redirect_scope)[0] != Match.NONE:
            return other
    return None


# --------------------------------------------------------------------------- native security
#
# An app with its own security (fastapi.security schemes, Security(..., scopes=...),
# dependencies such as get_current_active_superuser) is read from the same
# dependency tree FastAPI solves on each request. Scopes are merged along the path
# to each scheme, as FastAPI merges them for OpenAPI; the operation's `security` in
# app.openapi() is preferred when the app publishes one.

LEGACY_403_BEFORE = (0, 122)  # FastAPI < 0.122: HTTPBearer, APIKey*, ... answered 403 for missing credentials
MUTATING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SUSPECT_PREFIXES = ("debug", "internal", "_debug", "_internal")
_MAX_DEPTH = 64
_LEGACY_403_CLASSES = ("HTTPBearer", "HTTPDigest", "HTTPBase", "APIKeyHeader", "APIKeyQuery", "APIKeyCookie",
                       "OAuth2", "OpenIdConnect")
# A dependency above a scheme whose name says it decides access (not who the caller is) is a guard.
_GUARD_WORDS = frozenset({
    "superuser", "admin", "staff", "role", "roles", "permission", "permissions", "perm", "perms", "require",
    "requires", "required", "guard", "allow", "allowed", "only", "scope", "scopes", "can", "is", "has", "privileged",
})
_CREDENTIAL_PARAM = re.compile(r"auth|token|api[-_]?key|session|secret", re.IGNORECASE)


@dataclass(frozen=True)
class Scheme:
    """One ``fastapi.security`` scheme of a route: where the credential goes and what a miss answers."""

    name: str  # the scheme name OpenAPI uses
    cls: str  # HTTPBearer, APIKeyHeader, OAuth2PasswordBearer, ...
    type: str  # oauth2 | http | apiKey | openIdConnect | custom
    location: str  # header | query | cookie
    param: str  # "Authorization" or the API key's name
    auto_error: bool
    http_scheme: str | None = None  # bearer | basic | digest | another word (HTTPBase)
    token_url: str | None = None
    scopes: tuple[str, ...] = ()
    custom: bool = False  # a subclass with its own __call__: its code decides

    def describe(self) -> str:
        where = f"{self.location} {self.param}" if self.type == "apiKey" else (self.http_scheme or self.type)
        optional = "" if self.auto_error else ", optional (auto_error=False)"
        return f"{self.name} ({where}{optional})"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.cls, "type": self.type, "location": self.location,
                "param": self.param, "http_scheme": self.http_scheme, "auto_error": self.auto_error,
                "token_url": self.token_url, "scopes": list(self.scopes), "custom": self.custom}

    def finds(self, presented: "Presented") -> bool:
        """Whether the scheme finds its credential in the request, exactly as FastAPI's ``__call__`` looks."""
        if self.type == "apiKey":
            return bool(presented.get(self.location, self.param))
        authorization = presented.get("header", "authorization")
        word, _, rest = authorization.partition(" ")
        if self.cls in ("OAuth2PasswordBearer", "OAuth2AuthorizationCodeBearer"):
            return word.lower() == "bearer"
        if self.type in ("oauth2", "openIdConnect"):
            return bool(authorization)
        if self.http_scheme in ("bearer", "basic", "digest"):
            return word.lower() == self.http_scheme and bool(rest.strip())
        return bool(word and rest.strip())  # HTTPBase: any scheme word with credentials

    def missing_status(self, version: tuple[int, ...] | None = None) -> int:
        """What this FastAPI answers when the credential is missing (auto_error=True)."""
        version = _fastapi_version() if version is None else version
        if version < LEGACY_403_BEFORE and self.cls in _LEGACY_403_CLASSES:
            return 403
        return 401


@dataclass(frozen=True)
class Guard:
    """A named dependency between a scheme and the route: its body decides, authctl cannot read it."""

    name: str
    module: str
    role: str  # "identity" (loads the caller) or "guard" (decides access)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "role": self.role}


@dataclass(frozen=True)
class Native:
    """What a route's own (non-authctl) security reads: schemes, merged scopes, guards."""

    schemes: tuple[Scheme, ...] = ()
    scopes: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()  # role "guard"
    loaders: tuple[Guard, ...] = ()  # role "identity"
    readers: tuple[str, ...] = ()  # dependencies reading a credential-like Header/Cookie without a scheme
    reads_scopes: bool = False  # some dependency takes SecurityScopes (so the scopes are enforced in code)

    @property
    def reads_credentials(self) -> bool:
        return bool(self.schemes or self.readers)

    def describe(self) -> str:
        parts = [" or ".join(s.describe() for s in self.schemes)] if self.schemes else []
        if self.readers:
            parts.append("reads " + ", ".join(self.readers))
        if self.scopes:
            parts.append("scopes " + " ".join(self.scopes))
        if self.guards:
            parts.append("guard " + ", ".join(g.name for g in self.guards))
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"schemes": [s.as_dict() for s in self.schemes], "scopes": list(self.scopes),
                "guards": [g.as_dict() for g in self.guards], "identity": [g.as_dict() for g in self.loaders],
                "readers": list(self.readers), "reads_scopes": self.reads_scopes}


class Presented:
    """What a request carries, as schemes look for it: headers (any case), query and cookies."""

    def __init__(self, headers: Mapping[str, str] | None = None, query: Mapping[str, str] | None = None,
                 cookies: Mapping[str, str] | None = None):
        self._parts = {
            "header": {k.lower(): v for k, v in (headers or {}).items()},
            "query": dict(query or {}), "cookie": dict(cookies or {}),
        }

    def get(self, location: str, name: str) -> str:
        part = self._parts.get(location, {})
        return part.get(name.lower() if location == "header" else name, "") or ""

    @property
    def empty(self) -> bool:
        return not any(self._parts.values())


def _fastapi_version() -> tuple[int, ...]:
    import fastapi

    return _version_tuple(getattr(fastapi, "__version__", "0"))


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def _scheme_of(obj: Any, scopes: tuple[str, ...]) -> Scheme:
    from fastapi.security import APIKeyCookie, APIKeyHeader, APIKeyQuery, OAuth2, OAuth2PasswordBearer, OpenIdConnect
    from fastapi.security.http import HTTPBase

    cls = type(obj)
    known = next((base for base in cls.__mro__ if (base.__module__ or "").startswith("fastapi.security")), cls)
    custom = "__call__" in vars(cls) and not (cls.__module__ or "").startswith("fastapi.security")
    name = str(getattr(obj, "scheme_name", None) or cls.__name__)
    auto_error = bool(getattr(obj, "auto_error", True))
    model = getattr(obj, "model", None)
    if isinstance(obj, (APIKeyHeader, APIKeyQuery, APIKeyCookie)):
        location = getattr(getattr(model, "in_", None), "value", None) or {
            APIKeyHeader: "header", APIKeyQuery: "query", APIKeyCookie: "cookie"}[known if known in (
                APIKeyHeader, APIKeyQuery, APIKeyCookie) else APIKeyHeader]
        return Scheme(name, known.__name__, "apiKey", str(location), str(getattr(model, "name", "")), auto_error,
                      scopes=scopes, custom=custom)
    if isinstance(obj, HTTPBase):
        word = str(getattr(model, "scheme", "") or "").lower()
        return Scheme(name, known.__name__, "http", "header", "Authorization", auto_error, word, scopes=scopes,
                      custom=custom)
    if isinstance(obj, OAuth2):
        token_url = None
        if isinstance(obj, OAuth2PasswordBearer):
            password = getattr(getattr(model, "flows", None), "password", None)
            token_url = getattr(password, "tokenUrl", None)
        return Scheme(name, known.__name__, "oauth2", "header", "Authorization", auto_error, "bearer",
                      token_url=token_url, scopes=scopes, custom=custom)
    if isinstance(obj, OpenIdConnect):
        return Scheme(name, known.__name__, "openIdConnect", "header", "Authorization", auto_error, scopes=scopes,
                      custom=custom)
    return Scheme(name, cls.__name__, "custom", "header", "Authorization", auto_error, scopes=scopes, custom=True)


def _is_guard_name(name: str) -> bool:
    """``get_current_active_superuser``, ``require_admin``, ``staff_member``: names that decide access."""
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if w]
    return any(w in _GUARD_WORDS or w.startswith(("superuser", "admin")) for w in words)


def _unwrap(call: Any) -> Any:
    import functools

    while isinstance(call, functools.partial):
        call = call.func
    try:
        return inspect.unwrap(call)
    except ValueError:  # a __wrapped__ cycle
        return call


def _call_name(call: Any) -> tuple[str, str]:
    name = getattr(call, "__name__", None) or type(call).__name__
    module = getattr(call, "__module__", None) or type(call).__module__ or ""
    return str(name), str(module)


def _read_native(route: Any) -> Native:
    """Walk ``route.dependant`` (router- and app-level dependencies included) for native security."""
    from fastapi.security.base import SecurityBase

    dependant = _attr(route, "dependant")
    if dependant is None:
        return Native()
    schemes: dict[str, Scheme] = {}
    guards: dict[str, Guard] = {}
    loaders: dict[str, Guard] = {}
    readers: list[str] = []
    reads_scopes = [bool(getattr(dependant, "security_scopes_param_name", None))]

    def own_scopes(node: Any, parent: tuple[str, ...]) -> tuple[str, ...]:
        merged = list(parent)
        for scope in list(getattr(node, "own_oauth_scopes", None) or []) + list(getattr(node, "security_scopes", None) or []):
            if scope not in merged:
                merged.append(str(scope))
        return tuple(merged)

    def walk(node: Any, parent_scopes: tuple[str, ...], depth: int) -> bool:
        """True when a scheme or credential reader is at or below ``node``."""
        if depth > _MAX_DEPTH:
            raise InvalidInput("the dependency tree is deeper than 64 levels")
        found = False
        for sub in list(getattr(node, "dependencies", ()) or ()):
            scopes = own_scopes(sub, parent_scopes)
            call = _unwrap(getattr(sub, "call", None))
            if getattr(call, REQUIREMENT_ATTR, None) is not None:
                continue  # authctl's own: read by _requirements_of
            if getattr(sub, "security_scopes_param_name", None):
                reads_scopes[0] = True
            if isinstance(call, SecurityBase):
                scheme = _scheme_of(call, scopes)
                previous = schemes.get(scheme.name)
                if previous is not None:  # one scheme used twice: scopes merge, as in OpenAPI
                    merged = previous.scopes + tuple(s for s in scheme.scopes if s not in previous.scopes)
                    scheme = Scheme(**{**scheme.__dict__, "scopes": merged})
                schemes[scheme.name] = scheme
                found = True
                continue
            below = walk(sub, scopes, depth + 1)
            name, module = _call_name(call)
            credential_params = [
                str(getattr(f, "alias", None) or getattr(f, "name", ""))
                for f in list(getattr(sub, "header_params", ()) or ()) + list(getattr(sub, "cookie_params", ()) or ())
                if _CREDENTIAL_PARAM.search(str(getattr(f, "alias", None) or getattr(f, "name", "")))
            ]
            if credential_params and not below:
                readers.append(f"{name} ({', '.join(credential_params)})")
                guards.setdefault(name, Guard(name, module, "guard"))
                found = True
            elif below:
                if _is_guard_name(name):
                    guards.setdefault(name, Guard(name, module, "guard"))
                else:
                    loaders.setdefault(name, Guard(name, module, "identity"))
                found = True
        return found

    walk(dependant, own_scopes(dependant, ()), 0)
    all_scopes: list[str] = []
    for scheme in schemes.values():
        all_scopes += [s for s in scheme.scopes if s not in all_scopes]
    return Native(tuple(schemes.values()), tuple(all_scopes), tuple(guards.values()), tuple(loaders.values()),
                  tuple(readers), reads_scopes[0])


_OPENAPI_CACHE: dict[int, tuple[Any, dict[tuple[str, str], dict[str, tuple[str, ...]]]]] = {}


def _openapi_security(app: Any) -> dict[tuple[str, str], dict[str, tuple[str, ...]]]:
    """(METHOD, path) -> scheme name -> scopes, from the app's own OpenAPI document (empty if it has none).

    Cached per app and schema object: ``match`` asks once per route in a matrix.
    """
    if not getattr(app, "openapi_url", None) or not callable(getattr(app, "openapi", None)):
        return {}
    try:
        document = app.openapi()
        cached = _OPENAPI_CACHE.get(id(app))
        if cached is not None and cached[0] is document:
            return cached[1]
        paths = document.get("paths") or {}
    except Exception:  # an app whose schema cannot be built: the dependency tree still answers
        return {}
    found: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    for path, operations in paths.items():
        if not isinstance(operations, Mapping):
            continue
        for method, operation in operations.items():
            if isinstance(operation, Mapping) and isinstance(operation.get("security"), list):
                merged: dict[str, tuple[str, ...]] = {}
                for entry in operation["security"]:
                    for name, scopes in (entry.items() if isinstance(entry, Mapping) else ()):
                        merged[str(name)] = tuple(str(s) for s in scopes or ())
                found[(method.upper(), str(path))] = merged
    if len(_OPENAPI_CACHE) > 16:
        _OPENAPI_CACHE.clear()
    _OPENAPI_CACHE[id(app)] = (document, found)
    return found


def _with_openapi_scopes(native: Native, declared: Mapping[str, tuple[str, ...]] | None) -> Native:
    if not declared or not native.schemes:
        return native
    schemes = tuple(
        Scheme(**{**s.__dict__, "scopes": declared[s.name]}) if s.name in declared else s for s in native.schemes
    )
    scopes: list[str] = []
    for scheme in schemes:
        scopes += [s for s in scheme.scopes if s not in scopes]
    return Native(schemes, tuple(scopes), native.guards, native.loaders, native.readers, native.reads_scopes)


def _first_segment(path: str) -> str | None:
    segments = [s for s in path.split("/") if s]
    return segments[0] if len(segments) >= 2 else None


def _flag_open_routes(infos: list["RouteInfo"]) -> list["RouteInfo"]:
    """Mark open routes that look like a mistake; every other open route is plain "public"."""
    import dataclasses

    token_urls = {s.token_url.strip("/") for i in infos if i.native for s in i.native.schemes if s.token_url}

    def protected(info: RouteInfo) -> bool:
        return bool(info.requirements and info.requirement != PUBLIC or (info.native and info.native.reads_credentials))

    groups: dict[str, list[int]] = {}  # first segment -> [routes, protected routes]
    for info in infos:
        segment = _first_segment(info.path)
        if segment is not None and info.method not in ("HEAD", "OPTIONS", "*"):
            counts = groups.setdefault(segment, [0, 0])
            counts[0] += 1
            counts[1] += protected(info)
    # an app built on authctl's integration marks its public routes (Depends(auth.public)): an unmarked one was forgotten
    integrated = any(i.requirements and not _is_docs_route(i.route) for i in infos)
    result = []
    for info in infos:
        if info.requirements or (info.native and info.native.reads_credentials) or _is_docs_route(info.route):
            result.append(info)
            continue
        if any(info.path.strip("/") == url or info.path.endswith("/" + url) for url in token_urls if url):
            result.append(dataclasses.replace(info, login=True))
            continue
        reasons = []
        if integrated and info.method not in ("HEAD", "OPTIONS", "*") and not info.path.endswith("/{path}"):
            reasons.append("no authctl requirement and not marked public (Depends(auth.public))")
        if info.method in MUTATING_METHODS:
            reasons.append(f"a {info.method} that nothing protects")
        segment = _first_segment(info.path)
        if segment is not None and segment.lower() in SUSPECT_PREFIXES:
            reasons.append(f"under /{segment}")
        total, guarded = groups.get(segment or "", [0, 0])
        if segment is not None and total > 1 and guarded == total - 1:  # every sibling but this one is protected
            reasons.append(f"every other route under /{segment} is protected")
        result.append(dataclasses.replace(info, flag="; ".join(reasons)) if reasons else info)
    return result


# --------------------------------------------------------------------------- deciding


def decide(
    store: "Store", info: RouteInfo, token: str | None, path_params: Mapping[str, Any] | None = None,
    *, explain: bool = False, now: int | None = None, overrides: Mapping[str, Any] | None = None,
    credential: Any = None,
) -> "Decision":
    """What the server decides for this route: each requirement in order, the first refusal wins.

    Authentication happens once (as in the server). A route whose own security
    (fastapi.security) reads credentials is decided by ``decide_native`` as far as
    it can be offline; a route that reads nothing is allowed, saying so.
    ``credential`` (a ``targets.Credential``) is what the request carries instead
    of authctl's bearer ``token``.
    """
    from . import policy

    if info.is_native:
        return decide_native(info, token, credential)
    if not info.requirements:
        decision = policy.decide(store, token, PUBLIC, path_params, explain=explain, now=now, overrides=overrides)
        decision.reason = "public by design: the scheme's login route (its tokenUrl)" if info.login else (
            "nothing reads credentials on this route (no authctl requirement, no fastapi.security scheme): "
            "the server does not check" + (f" — looks like a mistake: {info.flag}" if info.flag else "")
        )
        return decision
    authentication = None
    best: Decision | None = None
    for requirement in info.requirements:
        if requirement.kind == "public":
            decision = policy.authorize(
                store, policy.Authentication(identity=None, given=token is not None), requirement, path_params
            )
        else:
            if authentication is None:
                authentication = policy.authenticate(store, token, explain=explain, now=now, overrides=overrides)
            decision = policy.authorize(store, authentication, requirement, path_params, explain=explain)
        if not decision.allowed:
            return decision
        if best is None or _KIND_RANK[decision.requirement.kind] >= _KIND_RANK[best.requirement.kind]:
            best = decision
    assert best is not None
    return best


@dataclass
class NativeDecision(Decision):
    """A decision on a route with the app's own security.

    ``undecided`` names the code that decides (a guard, an identity loader): its
    outcome is unknown offline, never an agreement and never a pass.
    """

    native: Any = None
    steps: list = field(default_factory=list)  # (ok: bool | None, label, detail)
    missing_scopes: tuple = ()
    undecided: str | None = None
    version_note: str | None = None

    @property
    def outcome(self) -> Outcome:
        """``Outcome.UNDECIDED`` while a guard's code decides (``status`` is then what reaching it takes)."""
        return Outcome.UNDECIDED if self.undecided else Outcome.of_status(self.status)

    @property
    def decided(self) -> bool:
        return self.undecided is None


def _presented(token: str | None, credential: Any) -> Presented:
    if credential is not None:
        return Presented(credential.headers, credential.query, credential.cookies)
    return Presented({"Authorization": f"Bearer {token}"} if token else None)


def decide_native(info: RouteInfo, token: str | None, credential: Any = None) -> "NativeDecision":
    """Decide what can be read offline on a route with fastapi.security schemes, and name what cannot.

    In FastAPI's order: each scheme looks for its credential (missing with
    ``auto_error`` → the 401, or the 403 FastAPI < 0.122 answered for HTTPBearer
    and APIKey*); then the credential must be one the app accepts (known only for
    a target's credential); then the scopes (403 ``insufficient_scope`` naming the
    missing ones, when a dependency reads ``SecurityScopes``); then any guard,
    whose code decides (undecided offline: ``--live`` gives the answer).
    """
    from .policy import AUTHENTICATED, Authentication

    native = info.native
    assert native is not None
    cls = NativeDecision
    presented = _presented(token, credential)
    given = not presented.empty
    authentication = Authentication(identity=None, given=given)
    steps: list[tuple[bool | None, str, str]] = []
    loaders = ", ".join(f"`{g.name}`" for g in native.loaders) or None
    guards = ", ".join(f"`{g.name}`" for g in native.guards)

    def done(status: int, reason: str, *, undecided: str | None = None, hint: str | None = None, **extra: Any):
        return cls(status, AUTHENTICATED, authentication, reason=reason, hint=hint, native=native, steps=steps,
                   undecided=undecided, **extra)

    found_any = False
    optional_missing = []
    for scheme in native.schemes:
        if scheme.custom:
            steps.append((None, scheme.describe(), f"{scheme.cls} has its own __call__: its code decides"))
            continue
        if scheme.finds(presented):
            found_any = True
            steps.append((True, scheme.describe(), "the request carries its credential"))
            continue
        if not scheme.auto_error:
            optional_missing.append(scheme)
            steps.append((None, scheme.describe(), "no credential; auto_error=False: the code decides"))
            continue
        steps.append((False, scheme.describe(), "no credential where it looks"))
        status = scheme.missing_status()
        where = f"the {scheme.param} {scheme.location}" if scheme.type == "apiKey" else (
            f"an Authorization: {scheme.http_scheme.title()} header" if scheme.http_scheme else "an Authorization header")
        reason = f"no credentials: {scheme.name} needs {where}"
        note = None
        if status == 403:
            import fastapi

            note = (f"FastAPI {fastapi.__version__} answers 403 here: {scheme.cls} did so for missing credentials "
                    "until 0.122; it is a 401 case (authentication, not authorization)")
            reason += f" — the server answers 403 (FastAPI {fastapi.__version__}), a 401 case"
        return done(status, reason, hint=f"send {where}" + (" (a target speaks it: --target NAME)" if not credential else ""),
                    version_note=note)
    if native.readers and not native.schemes:
        return done(200, f"authenticated? {', '.join(native.readers)} reads the credential in code",
                    undecided=native.readers[0].split(" ")[0])
    if not found_any:
        decider = loaders or guards or "the route's code"
        if optional_missing or not native.schemes:
            return done(200, f"no credentials, and every scheme is optional: {decider} decides whether anonymous may call",
                        undecided=decider)
        if not given:  # only schemes with their own __call__, and nothing sent: their code decides
            custom = ", ".join(f"`{scheme.name}`" for scheme in native.schemes if scheme.custom) or decider
            return done(200, f"no credentials sent; {custom} decides", undecided=custom)
    # a credential is present; whether the app accepts it is decided by its code
    valid = getattr(credential, "valid", None)
    if valid is False:
        steps.append((False, "credential", getattr(credential, "problem", "") or "the target's key rejects it"))
        return done(401, "the credential is invalid: " + (getattr(credential, "problem", "") or "the target's key rejects it"),
                    hint="issue a fresh one from the target (authctl check --as USER --target NAME)")
    trusted = bool(getattr(credential, "trusted", False)) or valid is True
    if not trusted:
        decider = loaders or guards or "the route's code"
        steps.append((None, "credential", f"{decider} verifies it in code; authctl does not know this app's key"))
        return done(200, f"a credential is present; {decider} decides whether the app accepts it",
                    undecided=decider, hint="describe how this app authenticates with `authctl target add`, then --target NAME")
    steps.append((True, "credential", f"from {getattr(credential, 'label', 'the target')}"
                  + (f"; {loaders} accepts it if the target's key is the app's" if loaders else "")))
    if native.scopes:
        held = getattr(credential, "scopes", None)
        if not native.reads_scopes:
            steps.append((None, "scopes " + " ".join(native.scopes), "declared, but no dependency reads SecurityScopes"))
        elif held is None:
            steps.append((None, "scopes " + " ".join(native.scopes), "the credential's scopes are unknown"))
            return done(200, "authenticated; the app's code checks the scopes, which this credential does not show",
                        undecided=loaders or "the scope check")
        else:
            missing = tuple(s for s in native.scopes if s not in held)
            for scope in native.scopes:
                steps.append((scope not in missing, f"scope {scope}", "held" if scope not in missing else "missing"))
            if missing:
                return done(403, f"insufficient_scope (RFC 6750): the token lacks {' and '.join(missing)}",
                            hint=f"a token with scope {' '.join(missing)}", missing_scopes=missing, missing=missing)
    if native.guards:
        steps.append((None, f"guard {guards}", "decides in code (authctl cannot read it offline)"))
        return done(200, f"authenticated; the guard {guards} decides in code", undecided=guards,
                    hint="--live gives the real answer")
    return done(200, "authenticated with the target's credential" + (f" ({loaders} loads the caller)" if loaders else ""))


def routes_by_permission(app: Any) -> dict[str, list[str]]:
    """permission -> the routes ("METHOD /path") whose requirements name it."""
    result: dict[str, list[str]] = {}
    for info in inventory(app):
        for requirement in info.requirements:
            for permission in requirement.permissions:
                entry = f"{info.method} {info.path}"
                if entry not in result.setdefault(permission, []):
                    result[permission].append(entry)
    return result


# --------------------------------------------------------------------------- path parameter samples

#: A valid sample value per path type: Starlette convertors, Python annotations, OpenAPI types/formats.
UUID_SAMPLE = "00000000-0000-4000-8000-000000000001"
SAMPLES = {
    "int": "1", "integer": "1", "float": "1.5", "number": "1.5", "uuid": UUID_SAMPLE, "path": "example",
    "str": "example", "string": "example", "bool": "true", "boolean": "true", "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z", "datetime": "2024-01-01T00:00:00Z", "int32": "1", "int64": "1",
    "double": "1.5", "decimal": "1.5",
}
_CONVERTOR_KIND = {"IntegerConvertor": "int", "FloatConvertor": "float", "UUIDConvertor": "uuid",
                   "PathConvertor": "path", "StringConvertor": "str"}


def path_samples(info: RouteInfo) -> dict[str, str | None]:
    """A valid sample for each path parameter of a route, by its type (``None``: cannot be filled).

    The Starlette convertor (``{x:uuid}``) decides what the router matches; the handler's
    annotation (``x: int``) what FastAPI then accepts; an unknown convertor gets whichever
    sample its pattern matches.
    """
    import uuid
    from enum import Enum

    route = info.route
    convertors = _attr(route, "param_convertors", None) or {}
    annotations: dict[str, Any] = {}
    for param in getattr(_attr(route, "dependant"), "path_params", ()) or ():
        annotations[param.name] = getattr(getattr(param, "field_info", None), "annotation", None)
    result: dict[str, str | None] = {}
    for name in dict.fromkeys([*convertors, *annotations]):
        annotation = annotations.get(name)
        kind = None
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            members = [str(member.value) for member in annotation]
            result[name] = members[0] if members else None
            continue
        if annotation is uuid.UUID:
            kind = "uuid"
        elif annotation in (int, float, bool):
            kind = annotation.__name__
        convertor = convertors.get(name)
        if kind is None and convertor is not None:
            kind = _CONVERTOR_KIND.get(type(convertor).__name__)
        if kind is None and convertor is not None:  # a custom convertor: a sample its pattern takes
            pattern = getattr(convertor, "regex", None)
            fits = [s for s in dict.fromkeys(SAMPLES.values()) if pattern and re.fullmatch(pattern, s)]
            result[name] = fits[0] if fits else None
            continue
        result[name] = SAMPLES.get(kind or "str")
    return result


def sample_for_schema(schema: Mapping[str, Any]) -> str | None:
    """An OpenAPI parameter schema's sample: its example, first enum value, or one of its format/type."""
    if not isinstance(schema, Mapping):
        return "example"
    for key in ("example", "default"):
        if schema.get(key) is not None:
            return str(schema[key])
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return str(examples[0])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return str(schema["enum"][0])
    for option in schema.get("anyOf") or schema.get("oneOf") or ():
        if isinstance(option, Mapping) and option.get("type") != "null":
            return sample_for_schema(option)
    fmt, kind = schema.get("format"), schema.get("type")
    if fmt in SAMPLES:
        return SAMPLES[fmt]
    if kind in (None, "string"):
        return None if schema.get("pattern") else "example"
    return SAMPLES.get(kind)
