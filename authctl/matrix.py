"""``authctl matrix``: users (and anonymous) × routes, each cell 200 / 401 / 403.

Offline cells come from the same ``explain.check`` as ``authctl check``; live cells
(in-process on a snapshot, or a running server) are observed and compared. For an
app that does not use authctl's integration, routes come from its
``/openapi.json`` and cells are observed only; ``--expect`` turns either into a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .errors import InvalidInput

if TYPE_CHECKING:
    from .explain import Subject
    from .probe import Response
    from .routes import RouteInfo
    from .store import Store

ANONYMOUS = "anonymous"
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")
_OUTCOME_OF_STATUS = {200: "allow", 401: "401", 403: "403"}


@dataclass(frozen=True)
class Route:
    """A route as the matrix sees it: a template, and the concrete path it sends."""

    method: str
    template: str
    path: str
    requires: str
    unprotected: bool = False


@dataclass
class Cell:
    route: Route
    user: str
    decision: int | None = None  # offline status (None: observed only)
    live: "Response | None" = None
    expected: str | None = None  # allow | 401 | 403
    token: str | None = field(default=None, repr=False)

    @property
    def live_status(self) -> int | None:
        return None if self.live is None else self.live.status

    @property
    def agrees(self) -> bool | None:
        from .probe import agrees

        if self.live is None or self.decision is None:
            return None
        return agrees(self.decision, self.live.status)

    @property
    def outcome(self) -> str:
        """allow / 401 / 403 (other: a live status past authorization, e.g. 404 or 422, counts as allow)."""
        status = self.decision if self.live is None else self.live.status
        if status in (401, 403):
            return str(status)
        return "allow"

    @property
    def meets_expectation(self) -> bool | None:
        return None if self.expected is None else self.expected == self.outcome

    @property
    def failed(self) -> bool:
        return self.agrees is False or self.meets_expectation is False

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.route.method, "route": self.route.template, "path": self.route.path, "user": self.user,
            "requires": self.route.requires, "unprotected": self.route.unprotected,
            "decision": self.decision, "live": self.live_status, "agrees": self.agrees,
            "expected": self.expected, "meets_expectation": self.meets_expectation, "outcome": self.outcome,
        }


def fill_path(template: str, params: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> str:
    """``/students/{id}`` -> ``/students/1`` (``--param id=1``; ints default to 1, others to ``example``)."""

    def value(match: re.Match) -> str:
        name, convertor = match.group(1), match.group(2)
        if name in params:
            return str(params[name])
        if defaults and name in defaults:
            return str(defaults[name])
        return "1" if convertor in ("int", "float") or name in ("id",) or name.endswith("_id") else "example"

    return _PARAM.sub(value, template)


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--param takes name=value, got {pair[:40]!r}")
        params[name.strip()] = value
    return params


def app_routes(app: Any, params: Mapping[str, str]) -> list[tuple[Route, "RouteInfo"]]:
    """The app's own API routes (docs, schema and static mounts left out)."""
    from . import routes

    chosen = []
    for info in routes.inventory(app):
        if not info.include_in_schema or info.method in ("HEAD", "OPTIONS", "*") or info.path.endswith("/{path}"):
            continue
        chosen.append((Route(info.method, info.path, fill_path(info.path, params), info.describe(), info.unprotected), info))
    return chosen


def offline_cells(
    store: "Store", app: Any, users: list[str], params: Mapping[str, str], *, token_per_cell: bool = False
) -> list[Cell]:
    """Every user × route decided by the engine.

    ``token_per_cell`` mints a fresh token for each cell, for cells that will be sent
    live: a ``POST /logout`` then ends only its own cell's session.
    """
    from . import routes

    from .explain import app_overrides

    overrides = app_overrides(app)
    minted = {} if token_per_cell else {user: _subject(store, user, overrides) for user in users}
    cells = []
    for route, info in app_routes(app, params):
        _, path_params = routes.match(app, route.method, route.path)
        for user in users:
            subject = _subject(store, user, overrides) if token_per_cell else minted[user]
            decision = routes.decide(store, info, subject.token, path_params, overrides=overrides)
            cells.append(Cell(route, user, decision.status, token=subject.token))
    return cells


def _subject(store: "Store", user: str, overrides: dict[str, Any] | None = None) -> "Subject":
    from . import explain

    return explain.ANONYMOUS if user == ANONYMOUS else explain.subject_for_user(store, user, overrides)


@dataclass
class MatrixResult:
    users: list[str]
    cells: list[Cell]
    skipped: int  # cells with mutating methods not sent live (no --unsafe)


def parse_users(option: str | None) -> list[str] | None:
    """``--users a,b`` -> names (None: every active user)."""
    if option is None:
        return None
    return [name.strip() for name in option.split(",") if name.strip()]


def build(
    store: "Store", *, users: list[str] | None = None, app_spec: str | None = None, live: bool = False,
    url: str | None = None, openapi: bool = False, params: Mapping[str, str] | None = None, unsafe: bool = False,
) -> MatrixResult:
    """The whole matrix: offline from the app's routes (observed too with ``live``/``url``),
    or, with ``openapi``, observed only from a foreign server's ``/openapi.json``."""
    from . import explain, probe, routes

    params = params or {}
    if users is None:
        users = [user.username for user in store.list_users(status="active")]
    for name in users:
        if name != ANONYMOUS:
            store.get_user(name)  # NotFound: exit 1 before anything is sent
    users = [name for name in dict.fromkeys(users) if name != ANONYMOUS] + [ANONYMOUS]
    if url:
        probe.check_transport(url, sends_token=True, insecure_transport=False)
    skipped = 0
    if openapi:
        if not url:
            raise InvalidInput("--openapi reads the routes of a running server: give --url")
        spec = probe.send(probe.Request("GET", "/openapi.json"), url=url)
        if spec.status != 200:
            raise InvalidInput(f"{url}/openapi.json answered {spec.status}")
        cells = observed_cells(store, openapi_routes(spec.body, params), users)
        skipped = attach_live(cells, url=url, unsafe=unsafe)
        return MatrixResult(users, cells, skipped)
    app = routes.load_app(app_spec)
    cells = offline_cells(store, app, users, params, token_per_cell=bool(live or url))
    if url:
        skipped = attach_live(cells, url=url, unsafe=unsafe)
    elif live:
        with explain.snapshot_app(store, app_spec) as snapshot:
            skipped = attach_live(cells, app=snapshot, unsafe=unsafe)
    return MatrixResult(users, cells, skipped)


# --------------------------------------------------------------------------- OpenAPI (apps without the integration)


def openapi_routes(spec: Mapping[str, Any], params: Mapping[str, str]) -> list[Route]:
    """Routes of a foreign app from its OpenAPI document; path parameters from examples, types or --param."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("paths"), Mapping):
        raise InvalidInput("the server's /openapi.json has no paths")
    result = []
    for template, operations in spec["paths"].items():
        if not isinstance(operations, Mapping) or not str(template).startswith("/") or str(template).startswith("//"):
            continue  # only paths on this server: a URL here would carry the tokens elsewhere
        for method, operation in operations.items():
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not isinstance(operation, Mapping):
                continue
            defaults = {}
            for parameter in operation.get("parameters", []) or []:
                if isinstance(parameter, Mapping) and parameter.get("in") == "path":
                    defaults[parameter.get("name", "")] = _example(parameter)
            secured = bool(operation.get("security") or spec.get("security"))
            result.append(Route(method.upper(), template, fill_path(template, params, defaults),
                                "secured (per OpenAPI)" if secured else "not declared"))
    return result


def _example(parameter: Mapping[str, Any]) -> str:
    schema = parameter.get("schema") or {}
    for source in (parameter.get("example"), schema.get("example"), *(schema.get("examples") or [None])[:1]):
        if source is not None:
            return str(source)
    return "1" if schema.get("type") in ("integer", "number") else "example"


def observed_cells(store: "Store", routes_: list[Route], users: list[str]) -> list[Cell]:
    return [Cell(route, user, None, token=_subject(store, user).token) for route in routes_ for user in users]


# --------------------------------------------------------------------------- live and expectations


def attach_live(cells: list[Cell], *, app: Any = None, url: str | None = None, unsafe: bool = False) -> int:
    """Send each cell's request; mutating methods only with ``unsafe``. Returns how many were skipped."""
    from . import probe

    sendable = [c for c in cells if unsafe or c.route.method in ("GET", "HEAD", "OPTIONS")]
    requests = [probe.Request(c.route.method, c.route.path, c.token) for c in sendable]
    for cell, response in zip(sendable, probe.send_all(requests, app=app, url=url)):
        cell.live = response
    return len(cells) - len(sendable)


def load_expectations(path: str) -> dict[tuple[str, str], dict[str, str]]:
    """``[["DELETE /student/{id}"]] rahul = 403``-style TOML: route -> user -> allow / 401 / 403."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid TOML ({str(exc).splitlines()[0]})") from None
    table = data.get("expect", data)
    expectations: dict[tuple[str, str], dict[str, str]] = {}
    for route, users in table.items():
        method, _, template = route.partition(" ")
        if not template.startswith("/") or not isinstance(users, Mapping):
            raise InvalidInput(f"{path}: {route[:60]!r} must be a table named \"METHOD /path\"")
        expectations[(method.upper(), template)] = {user: _expectation(path, route, user, v) for user, v in users.items()}
    return expectations


def _expectation(path: str, route: str, user: str, value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("allow", "allowed", "200", "ok"):
        return "allow"
    if text in ("401", "403"):
        return text
    raise InvalidInput(f"{path}: {route} / {user}: expected allow, 401 or 403, got {str(value)[:20]!r}")


def apply_expectations(cells: list[Cell], expectations: Mapping[tuple[str, str], Mapping[str, str]]) -> list[str]:
    """Set each cell's expectation; returns expectations that name no known cell."""
    index = {(c.route.method, c.route.template, c.user): c for c in cells}
    unknown = []
    for (method, template), users in expectations.items():
        for user, expected in users.items():
            cell = index.get((method, template, user))
            if cell is None:
                unknown.append(f"{method} {template} / {user}")
            else:
                cell.expected = expected
    return unknown


# --------------------------------------------------------------------------- formats


def to_csv(cells: list[Cell]) -> str:
    import io

    from . import csvsafe

    buffer = io.StringIO()
    columns = ["method", "route", "path", "user", "requires", "unprotected", "decision", "live", "agrees",
               "expected", "meets_expectation", "outcome"]
    writer = csvsafe.DictWriter(buffer, fieldnames=columns)  # cells from an app's paths and names: no formulas
    writer.writeheader()
    for cell in cells:
        writer.writerow({k: "" if v is None else v for k, v in cell.as_dict().items()})
    return buffer.getvalue()


def to_junit(cells: list[Cell]) -> str:
    """One test case per cell: a failure is a live disagreement or an unmet expectation."""
    from xml.sax.saxutils import quoteattr

    failures = sum(cell.failed for cell in cells)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="authctl matrix" tests="{len(cells)}" failures="{failures}" errors="0" skipped="0">']
    for cell in cells:
        name = quoteattr(f"{cell.route.method} {cell.route.path} as {cell.user}")
        classname = quoteattr(f"{cell.route.method} {cell.route.template}")
        lines.append(f"  <testcase classname={classname} name={name}>")
        if cell.agrees is False:
            message = f"offline decision {cell.decision}, live status {cell.live_status}"
            lines.append(f"    <failure message={quoteattr(message)} type=\"mismatch\"/>")
        elif cell.meets_expectation is False:
            message = f"expected {cell.expected}, got {cell.outcome}"
            lines.append(f"    <failure message={quoteattr(message)} type=\"expectation\"/>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"
