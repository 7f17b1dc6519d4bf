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
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import unquote

from .errors import InvalidInput, NoRoute
from .policy import PUBLIC, Requirement

if TYPE_CHECKING:
    from .policy import Decision
    from .store import Store

DEFAULT_APP = "authctl.app:app"
REQUIREMENT_ATTR = "authctl_requirement"  # the same name authctl.fastapi sets
_KIND_RANK = {"public": 0, "authenticated": 1, "permission": 2}


class RouteNotFound(NoRoute):
    """No route matches the path (the server answers 404)."""

    status = 404


class MethodNotAllowed(NoRoute):
    """The path matches, the method does not (the server answers 405)."""

    status = 405

    def __init__(self, message: str, allowed: tuple[str, ...]):
        super().__init__(message)
        self.allowed = allowed


@dataclass(frozen=True)
class RouteInfo:
    """One method of one route and what it requires.

    ``requirement`` summarises every authctl requirement on the route (``None``:
    none at all, "unprotected?"); ``requirements`` lists each one in the order the
    server checks them (each failing one stops the request), for ``decide``.
    """

    method: str
    path: str
    requirement: Requirement | None
    name: str | None = None
    requirements: tuple[Requirement, ...] = ()
    include_in_schema: bool = True
    route: Any = field(default=None, repr=False, compare=False, hash=False)

    @property
    def kind(self) -> str:
        """public, authenticated, permission, or unprotected? (no authctl requirement)."""
        return self.requirement.kind if self.requirement is not None else "unprotected?"

    @property
    def unprotected(self) -> bool:
        return self.requirement is None

    def describe(self) -> str:
        return self.requirement.describe() if self.requirement is not None else "unprotected?"

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "name": self.name,
            "kind": self.kind,
            "requires": self.describe(),
            "requirement": self.requirement.as_dict() if self.requirement is not None else None,
            "unprotected": self.unprotected,
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
        raise InvalidInput(f"--app {spec[:80]!r} is not of the form module:attribute")
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


def summarize(requirements: tuple[Requirement, ...]) -> Requirement | None:
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


def _infos(route: Any, prefix: str, inherited: tuple[Requirement, ...]) -> list[RouteInfo]:
    requirements = inherited + _requirements_of(route)
    if _attr(route, "methods") is None and not _is_mount(route) and _attr(route, "path") is None:
        return []  # Host routes and other exotic ones are not listed
    path = _path(route, prefix)
    summary = summarize(requirements)
    name = _attr(route, "name")
    include = bool(_attr(route, "include_in_schema", True))
    return [RouteInfo(m, path, summary, name, requirements, include, route) for m in _methods(route)]


def inventory(app: Any) -> list[RouteInfo]:
    """Every HTTP route of ``app`` (mounted sub-apps included), one entry per method."""
    result: list[RouteInfo] = []

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
                result.extend(_infos(route, prefix, inherited))

    visit(list(app.router.routes), "", ())
    return result


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
        info = _info_for(route, method, prefix, inherited)
        return info, params
    if found[0] == "partial":
        allowed = found[1]
        shown = ", ".join(allowed)
        raise MethodNotAllowed(f"{method} {raw_path}: method not allowed (405); the route allows {shown}", allowed)
    redirect = _redirect_target(app, scope)
    if redirect is not None:
        raise RouteNotFound(f"no route matches {method} {raw_path}; the server redirects it to {redirect} (307)")
    raise RouteNotFound(f"no route matches {method} {raw_path} (404)")


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
                inner = _match_routes(children, sub_scope, prefix + mount_path, inherited + _requirements_of(route))
                if inner[0] == "none":  # the mounted app answers 404 itself
                    return ("none",)
                return inner
            params = dict(child_scope.get("path_params", {}))
            return ("full", route, params, prefix, inherited)
        if result == Match.PARTIAL:
            for m in _methods(route):
                if m not in allowed:
                    allowed.append(m)
    if allowed:
        return ("partial", tuple(allowed))
    return ("none",)


def _info_for(route: Any, method: str, prefix: str, inherited: tuple[Requirement, ...]) -> RouteInfo:
    infos = _infos(route, prefix, inherited)
    for info in infos:
        if info.method == method:
            return info
    for info in infos:  # HEAD served by a GET route, or a route taking any method
        if info.method in ("GET", "*"):
            return RouteInfo(method, info.path, info.requirement, info.name, info.requirements,
                             info.include_in_schema, info.route)
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


# --------------------------------------------------------------------------- deciding


def decide(
    store: "Store", info: RouteInfo, token: str | None, path_params: Mapping[str, Any] | None = None,
    *, explain: bool = False, now: int | None = None, overrides: Mapping[str, Any] | None = None,
) -> "Decision":
    """What the server decides for this route: each requirement in order, the first refusal wins.

    Authentication happens once (as in the server). A route with no requirement
    is allowed with the reason saying it is unprotected.
    """
    from . import policy

    if not info.requirements:
        decision = policy.decide(store, token, PUBLIC, path_params, explain=explain, now=now, overrides=overrides)
        decision.reason = "the route has no authctl requirement (unprotected?): the server does not check"
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
    import re
    import uuid
    from enum import Enum

    route = info.route
    convertors = _attr(route, "param_convertors", None) or {}
    annotations: dict[str, Any] = {}
    for field in getattr(_attr(route, "dependant"), "path_params", ()) or ():
        annotations[field.name] = getattr(getattr(field, "field_info", None), "annotation", None)
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
