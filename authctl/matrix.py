"""``authctl matrix``: users (and anonymous) × routes, each cell an ``Outcome``.

Offline cells come from the same engine as ``authctl check``; live cells (in-process
on a snapshot, or a running server) are observed and compared: agreement means the
same outcome, so a live 404, 422 or 5xx never agrees with an offline "allowed". On a
route with the app's own security (``routes.decide_native``) a cell whose guard
decides in code is ``Outcome.UNDECIDED`` offline: it never agrees and never meets an
expectation; the live answer is its answer. For an app authctl cannot import, routes
and their declared security come from its OpenAPI document (``authctl.openapi``).
``--expect`` turns either into a test that cannot pass by mistake: every route and
user it names must exist, and a cell that was never sent never meets an expectation.
A ``--target`` makes every cell speak that target's credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .errors import InvalidInput
from .names import nearest
from .explain import SAFE_METHODS
from .policy import NEVER_AGREES, Outcome

if TYPE_CHECKING:
    from .explain import Subject
    from .probe import Response
    from .routes import RouteInfo
    from .store import Store

ANONYMOUS = "anonymous"
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")
#: ``progress(done, total)``: told after each live answer.
Progress = Callable[[int, int], None]
#: authctl's own credential endpoints: the credentials travel in the body, never as a bearer token.
_CREDENTIAL_ENDPOINTS = ("Auth._build_router.<locals>.token", "Auth._build_router.<locals>.refresh")


@dataclass(frozen=True)
class Route:
    """A route as the matrix sees it: a template, and the concrete path it sends.

    ``needs_body``: the route takes a request body the matrix does not build, so its
    cells are not sent (a body-less request tests validation, not the verdict).
    """

    method: str
    template: str
    path: str
    requires: str
    unprotected: bool = False
    needs_body: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class Cell:
    route: Route
    user: str
    decision: int | None = None  # offline status (None: observed only)
    live: "Response | None" = None
    expected: Outcome | None = None
    token: str | None = field(default=None, repr=False)
    not_sent: str | None = None  # in a live run: why this cell was not sent
    reason: str | None = None  # the engine's reason for the offline decision (the HTML report's trace)
    credential: Any = field(default=None, repr=False)  # a target's credential, sent instead of the token
    undecided: str | None = None  # the code (a guard) that decides: offline has no answer
    secured: bool | None = None  # the route reads credentials (None: not known)
    missing_scopes: tuple[str, ...] = ()

    @property
    def decided(self) -> bool:
        return self.undecided is None or self.live is not None

    @property
    def live_status(self) -> int | None:
        return None if self.live is None else self.live.status

    @property
    def decision_outcome(self) -> Outcome | None:
        if self.decision is None:
            return None
        return Outcome.UNDECIDED if self.undecided else Outcome.of_status(self.decision)

    @property
    def agrees(self) -> bool | None:
        """Same outcome offline and live (``None``: nothing to compare, or offline is undecided)."""
        if self.live is None or self.decision is None or self.undecided:
            return None
        return Outcome.of_status(self.decision).agrees_with(self.live.outcome)

    @property
    def outcome(self) -> Outcome:
        """What the cell showed: the observed outcome, NOT_SENT for an unsent cell, else the decision
        (UNDECIDED where a guard decides in code: it meets no expectation)."""
        if self.live is not None:
            return self.live.outcome
        if self.not_sent is not None or self.decision is None:
            return Outcome.NOT_SENT
        return self.decision_outcome  # type: ignore[return-value]

    @property
    def meets_expectation(self) -> bool | None:
        return None if self.expected is None else self.expected.agrees_with(self.outcome)

    @property
    def failed(self) -> bool:
        return self.agrees is False or self.meets_expectation is False

    def summary(self) -> list[tuple[str, str]]:
        """The cell's short text in pieces, each with what it shows (an outcome's value, ``offline-undecided``,
        ``agrees``, ``disagrees`` or ``note``), for the terminal table to colour and the reports to join:
        ``200`` offline; ``200 ✓`` observed and agreeing; ``200 → 422 ✗`` when the server answered otherwise;
        ``200 · not sent``; observed only: the live status, or ``not sent``; ``?`` undecided offline (a guard)."""
        parts: list[tuple[str, str]] = []
        if self.decision is not None and self.undecided:  # a guard decides: ``?`` offline, the live status is the answer
            if self.live is not None:
                parts.append((str(self.live_status), self.outcome.value))
            else:
                parts.append(("?", "offline-undecided"))
                if self.not_sent is not None:
                    parts.append((" · not sent", "note"))
        elif self.decision is None:  # observed only
            parts.append(("not sent" if self.live is None else str(self.live_status), self.outcome.value))
        else:
            decided = self.decision_outcome
            parts.append((str(self.decision), decided.value if decided is not None else ""))
            if self.live is not None:
                if self.agrees:
                    parts.append((" ✓", "agrees"))
                elif self.live_status == self.decision:  # same status, no agreement: a 5xx
                    parts.append((" ✗", "disagrees"))
                else:
                    parts.append((f" → {self.live_status} ✗", "disagrees"))
            elif self.not_sent is not None:
                parts.append((" · not sent", "note"))
        if self.meets_expectation is False and self.expected is not None:
            parts.append((f" (expected {self.expected.value})", "disagrees"))
        return parts

    def as_dict(self) -> dict[str, Any]:
        decision = self.decision_outcome
        return {
            "method": self.route.method, "route": self.route.template, "path": self.route.path, "user": self.user,
            "requires": self.route.requires, "unprotected": self.route.unprotected,
            "decision": self.decision, "live": self.live_status, "agrees": self.agrees,
            "expected": None if self.expected is None else self.expected.value,
            "meets_expectation": self.meets_expectation, "outcome": self.outcome.value,
            "decision_outcome": None if decision is None else decision.value,
            "live_outcome": None if self.live is None else self.live.outcome.value, "not_sent": self.not_sent,
            "undecided": self.undecided, "lints": [] if self.live is None else list(self.live.lints),
        }


class Unfillable(InvalidInput):
    """A path parameter with no ``--param`` and no valid sample of its type."""


def _fill_path(template: str, params: Mapping[str, str], defaults: Mapping[str, str | None] | None = None) -> str:
    """``/students/{id}`` -> ``/students/1``: ``--param`` first, then the sample of the parameter's type.

    Raises ``Unfillable`` for a parameter that has neither (a sample of the wrong type
    would test the router's 404 or the validator's 422, not the verdict).
    """

    def value(match: re.Match) -> str:
        name, convertor = match.group(1), match.group(2)
        if name in params:
            return str(params[name])
        if defaults and name in defaults:
            if defaults[name] is None:
                raise Unfillable(f"no valid sample for {{{name}}}: give --param {name}=VALUE")
            return str(defaults[name])
        from .routes import SAMPLES

        if convertor is None:  # an untyped name: ids are numbers more often than not
            return "1" if name == "id" or name.endswith("_id") else "example"
        sample = SAMPLES.get(convertor)
        if sample is None:
            raise Unfillable(f"no valid sample for {{{name}:{convertor}}}: give --param {name}=VALUE")
        return sample

    return _PARAM.sub(value, template)


def _normalize_template(template: str) -> str:
    """``/items/{id:int}`` and ``/items/{id}`` name the same route."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--param takes name=value, got {pair[:40]!r}")
        params[name.strip()] = value
    return params


def _needs_body(info: "RouteInfo") -> bool:
    endpoint = getattr(info.route, "endpoint", None)
    if getattr(endpoint, "__module__", "") == "authctl.fastapi" and getattr(endpoint, "__qualname__", "") in _CREDENTIAL_ENDPOINTS:
        return True
    body = getattr(info.route, "body_field", None)
    info_ = getattr(body, "field_info", None)
    return bool(body is not None and info_ is not None and info_.is_required())


def app_routes(app: Any, params: Mapping[str, str], notes: list[str] | None = None) -> list[tuple[Route, "RouteInfo"]]:
    """The app's own API routes (docs, schema and static mounts left out).

    A route whose path parameters cannot be filled is left out with a line in ``notes``.
    """
    from . import routes

    chosen = []
    for info in routes.inventory(app):
        if not info.include_in_schema or info.method in ("HEAD", "OPTIONS", "*") or info.path.endswith("/{path}"):
            continue
        try:
            path = _fill_path(info.path, params, routes.path_samples(info))
        except Unfillable as exc:
            if notes is not None:
                notes.append(f"{info.method} {info.path} skipped: {exc}")
            continue
        route = Route(info.method, info.path, path, info.describe(), info.unprotected, _needs_body(info))
        chosen.append((route, info))
    return chosen


def offline_cells(
    store: "Store", app: Any, users: list[str], params: Mapping[str, str], *, token_per_cell: bool = False,
    notes: list[str] | None = None, target: Any = None,
) -> list[Cell]:
    """Every user × route decided by the engine (``target``: speak that target's credentials).

    ``token_per_cell`` mints a fresh token for each cell, for cells that will be sent
    live: a ``POST /logout`` then ends only its own cell's session. A route whose
    filled path the router does not match (a ``--param`` of the wrong type) is left
    out with a line in ``notes``, not an abort.
    """
    from . import routes
    from .explain import app_overrides

    overrides = app_overrides(app)
    minted = {} if token_per_cell else {user: _subject(store, user, overrides, target) for user in users}
    cells = []
    for route, info, path_params in decidable_routes(app, params, notes):
        for user in users:
            subject = _subject(store, user, overrides, target) if token_per_cell else minted[user]
            decision = routes.decide(store, info, subject.token, path_params, overrides=overrides,
                                     credential=subject.credential)
            cells.append(decided_cell(route, info, user, subject, decision))
    return cells


def decided_cell(route: Route, info: "RouteInfo", user: str, subject: "Subject", decision: Any) -> Cell:
    """A cell from the engine's decision, with what a native decision adds (undecided, missing scopes)."""
    return Cell(route, user, decision.status, token=subject.token, reason=decision.reason,
                credential=subject.credential, undecided=getattr(decision, "undecided", None),
                secured=info.is_native or None, missing_scopes=tuple(getattr(decision, "missing_scopes", ())))


def decidable_routes(
    app: Any, params: Mapping[str, str], notes: list[str] | None = None,
) -> list[tuple[Route, "RouteInfo", dict[str, Any]]]:
    """``app_routes`` with the path parameters the router converts from each filled path.

    A route whose filled path the router does not match (a ``--param`` of the wrong
    type) is left out with a line in ``notes``.
    """
    from . import routes
    from .errors import NoRoute

    chosen = []
    for route, info in app_routes(app, params, notes):
        try:
            path_params = routes.path_params(app, info, route.path)
        except NoRoute as exc:
            if notes is not None:
                notes.append(f"{route.key} skipped: {route.path} does not match it ({exc})")
            continue
        chosen.append((route, info, path_params))
    return chosen


def _subject(store: "Store", user: str, overrides: dict[str, Any] | None = None, target: Any = None) -> "Subject":
    from . import explain

    return explain.subject(store, user=None if user == ANONYMOUS else user, overrides=overrides, target=target)


@dataclass
class MatrixResult:
    users: list[str]
    cells: list[Cell]
    skipped: int  # cells of a live run that were not sent (each says why in ``not_sent``)
    notes: list[str] = field(default_factory=list)  # routes left out, and why
    without_expectation: list[str] = field(default_factory=list)  # --strict: routes nobody decided on
    target: str | None = None  # where live requests went
    groups: list[Any] | None = None  # --by role-set: one ``groups.Group`` per column (``users`` are their names)

    @property
    def failed(self) -> bool:
        return any(cell.failed for cell in self.cells) or bool(self.without_expectation)


def parse_users(option: str | None) -> list[str] | None:
    """``--users a,b`` -> names (None: every active user)."""
    if option is None:
        return None
    return [name.strip() for name in option.split(",") if name.strip()]


def build(
    store: "Store", *, users: list[str] | None = None, app_spec: str | None = None, live: bool = False,
    url: str | None = None, openapi: bool = False, params: Mapping[str, str] | None = None, unsafe: bool = False,
    expectations: "Expectations | None" = None, strict: bool = False, progress: "Progress | None" = None,
    target: Any = None, openapi_url: str | None = None,
) -> MatrixResult:
    """The whole matrix: offline from the app's routes (observed too with ``live``/``url``),
    or, with ``openapi``, from a running server's OpenAPI document (decided from its
    declared security where it can be, observed always). ``target`` (a ``targets.Target``):
    every cell speaks its credentials.

    Expectations are checked against the routes and users before anything is sent.
    ``live`` on a proven snapshot sends mutating cells too (as ``check --live`` does);
    on an app authctl could not rebind they need ``unsafe``, as with ``url``.
    """
    from . import explain, probe, routes

    params = params or {}
    if users is None:
        users = [user.username for user in store.list_users(status="active")]
    users = [store.get_user(name).username if name != ANONYMOUS else name for name in users]  # NotFound: exit 1
    users = [name for name in dict.fromkeys(users) if name != ANONYMOUS] + [ANONYMOUS]
    if url:
        probe.check_transport(url, sends_token=True, insecure_transport=False)
    notes: list[str] = []
    if openapi:
        if not url:
            raise InvalidInput("the OpenAPI document is read from a running server", hint="url")
        app = routes.load_app(app_spec) if app_spec else None  # only to learn where it serves its document
        spec_path = openapi_url or getattr(app, "openapi_url", None) or "/openapi.json"
        status, body = probe.fetch_document(spec_path, url=url)
        if status != 200:
            raise InvalidInput(f"{url}{spec_path} answered {status}", hint="openapi_url")
        from . import openapi as spec_reader

        cells = spec_cells(store, spec_reader.operations(spec_reader.parse(body, f"{url}{spec_path}")),
                           users, params, target, notes)
        without = _expect(cells, users, expectations, strict)
        skipped = attach_live(cells, url=url, unsafe=unsafe, progress=progress)
        return MatrixResult(users, cells, skipped, notes, without, url)
    app = routes.load_app(app_spec)
    cells = offline_cells(store, app, users, params, token_per_cell=bool(live or url), notes=notes, target=target)
    without = _expect(cells, users, expectations, strict)
    skipped, went_to = 0, None
    if url:
        skipped, went_to = attach_live(cells, url=url, unsafe=unsafe, progress=progress), url
    elif live:
        with explain.in_process(store, app_spec) as running:
            skipped = attach_live(cells, app=running.app, unsafe=unsafe or running.snapshot, progress=progress)
            went_to = running.source
    return MatrixResult(users, cells, skipped, notes, without, went_to)


def _expect(cells: list[Cell], users: list[str], expectations: "Expectations | None", strict: bool) -> list[str]:
    if expectations is None:
        if strict:
            raise InvalidInput("strict checking needs expectations", hint="strict")
        return []
    return apply_expectations(cells, expectations, users=users, strict=strict)


# --------------------------------------------------------------------------- OpenAPI (apps without the integration)


def _spec_route(operation: Any, params: Mapping[str, str], notes: list[str] | None) -> Route | None:
    """The matrix's route for one ``openapi.Operation`` (``None``: a path parameter cannot be filled)."""
    from . import openapi as spec_reader

    defaults = {p["name"]: spec_reader.sample(p) for p in operation.parameters if p.get("in") == "path"}
    try:
        path = _fill_path(operation.path, params, defaults)
    except Unfillable as exc:
        if notes is not None:
            notes.append(f"{operation.method} {operation.path} skipped: {exc}")
        return None
    return Route(operation.method, operation.path, path, operation.requires, needs_body=operation.needs_body)


def spec_cells(store: "Store", operations: list[Any], users: list[str], params: Mapping[str, str],
               target: Any = None, notes: list[str] | None = None) -> list[Cell]:
    """Every user × operation of an OpenAPI document, decided from its declared security where it can be.

    An operation that declares nothing is observed only; ``security: []`` is public;
    a declared scheme is decided like the app's own scheme (401 without its
    credential, 403 for a missing scope, undecided when the credential is not a target's).
    """
    from . import routes
    from .policy import PUBLIC

    subjects = {user: _subject(store, user, None, target) for user in users}
    cells = []
    for operation in operations:
        route = _spec_route(operation, params, notes)
        if route is None:
            continue
        info = routes.RouteInfo(operation.method, operation.path, PUBLIC if operation.security == "public" else None,
                                native=operation.native)
        for user in users:
            subject = subjects[user]
            cell = Cell(route, user, None, token=subject.token, credential=subject.credential,
                        secured=operation.security == "secured")
            if operation.security == "public":
                cell.decision = 200
            elif info.is_native:
                decision = routes.decide_native(info, subject.token, subject.credential)
                cell.decision, cell.undecided = decision.status, decision.undecided
                cell.missing_scopes = tuple(decision.missing_scopes)
            cells.append(cell)
    return cells


# --------------------------------------------------------------------------- live and expectations


def attach_live(
    cells: list[Cell], *, app: Any = None, url: str | None = None, unsafe: bool = False, progress: "Progress | None" = None,
) -> int:
    """Send each cell's request; mutating methods only with ``unsafe``. Returns how many were not sent.

    An unsent cell records why (``not_sent``): it is NOT_SENT, never "allowed".
    ``progress(done, total)`` is called after each answer (the CLI's progress bar).
    """
    from . import probe

    for cell in cells:
        if cell.route.needs_body:
            cell.not_sent = "the route needs a request body, which the matrix does not send"
        elif not unsafe and cell.route.method not in SAFE_METHODS:
            cell.not_sent = f"{cell.route.method} may change data: add --unsafe to send it"
    sendable = [c for c in cells if c.not_sent is None]
    planned = [probe.Planned(probe.Request(c.route.method, c.route.path, c.token, c.credential),
                             anonymous=c.user == ANONYMOUS, secured=c.secured, missing_scopes=c.missing_scopes,
                             decided=c.decision)
               for c in sendable]
    for cell, response in zip(sendable, probe.send_planned(planned, app=app, url=url, on_response=progress)):
        cell.live = response
    return len(cells) - len(sendable)


#: route ("METHOD /template") -> user as written -> expected outcome
Expectations = dict[tuple[str, str], dict[str, Outcome]]

#: What an expectation may name: an outcome (by name or by an HTTP status), never one that cannot pass.
_UNEXPECTABLE = NEVER_AGREES


def load_expectations(path: str) -> Expectations:
    """``["DELETE /student/{id}"] rahul = 403``-style TOML: route -> user -> expected outcome."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid TOML ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return expectations_from(data.get("expect", data), path)


def expectations_from(table: Mapping[str, Any], source: str) -> Expectations:
    """An expectation table already read (a ``--expect`` file, a policy file's ``[expect]``)."""
    expectations: Expectations = {}
    for route, users in table.items():
        method, _, template = route.strip().partition(" ")
        template = template.strip()
        if not template.startswith("/") or not isinstance(users, Mapping):
            raise InvalidInput(f"{source}: {route[:60]!r} must be a table named \"METHOD /path\"")
        expectations[(method.upper(), _normalize_template(template))] = {
            user: _expectation(source, route, user, value) for user, value in users.items()
        }
    return expectations


def expectation_text(outcome: Outcome) -> str:
    """How a file writes an expected outcome: ``allow``, ``401``, ``403``, else its name (parses back the same)."""
    return {Outcome.ALLOWED: "allow", Outcome.UNAUTHENTICATED: "401", Outcome.FORBIDDEN: "403"}.get(outcome, outcome.value)


def _expectation(path: str, route: str, user: str, value: Any) -> Outcome:
    """``allow``/``ok``, an outcome name (``forbidden``) or a status (``403``: ``Outcome.of_status``)."""
    text = str(value).strip().lower()
    names = {outcome.value: outcome for outcome in Outcome}
    if text in ("allow", "ok"):
        return Outcome.ALLOWED
    outcome = Outcome.of_status(int(text)) if text.isdigit() and len(text) == 3 else names.get(text)
    if outcome is None or outcome in _UNEXPECTABLE:
        raise InvalidInput(
            f"{path}: {route} / {user}: expected allow, 401, 403, 404 or client_error, got {str(value)[:20]!r}"
        )
    return outcome


def _user_key(name: str) -> str:
    from .names import username_key

    if name == ANONYMOUS:
        return name
    try:
        return username_key(name)
    except InvalidInput:
        return name


def apply_expectations(
    cells: list[Cell], expectations: Mapping[tuple[str, str], Mapping[str, Outcome]], *,
    users: list[str] | None = None, strict: bool = False,
) -> list[str]:
    """Set each cell's expectation; returns, with ``strict``, the routes that have none.

    A route or user that matches nothing is an ``InvalidInput`` naming it and the
    nearest real one (an expectation that checks nothing must not pass). Usernames
    match as authctl matches them: case-folded (``RAHUL`` is rahul).
    """
    routes_ = {c.route.key: c.route for c in cells}
    users = users if users is not None else list(dict.fromkeys(c.user for c in cells))
    by_key = {_user_key(u): u for u in users}
    index = {(c.route.method, _normalize_template(c.route.template), c.user): c for c in cells}
    known = {(r.method, _normalize_template(r.template)) for r in routes_.values()}
    covered = set()
    for (method, template), expected_users in expectations.items():
        if (method, template) not in known:
            raise InvalidInput(f"expectation for {method} {template} matches no route"
                               + nearest(f"{method} {template}", [f"{m} {t}" for m, t in sorted(known)]))
        covered.add((method, template))
        for user, expected in expected_users.items():
            name = by_key.get(_user_key(user))
            if name is None:
                raise InvalidInput(f"expectation for {method} {template} names user {user!r}, who is not in the matrix"
                                   + nearest(user, users))
            cell = index.get((method, template, name))
            if cell is not None:
                cell.expected = expected
    if not strict:
        return []
    return [r.key for r in routes_.values() if (r.method, _normalize_template(r.template)) not in covered]


# --------------------------------------------------------------------------- formats


def to_csv(cells: list[Cell]) -> str:
    import io

    from . import csvsafe

    buffer = io.StringIO()
    columns = ["method", "route", "path", "user", "requires", "unprotected", "decision", "live", "agrees",
               "expected", "meets_expectation", "outcome", "decision_outcome", "live_outcome", "not_sent", "undecided",
               "lints"]
    writer = csvsafe.DictWriter(buffer, fieldnames=columns)  # cells from an app's paths and names: no formulas
    writer.writeheader()
    for cell in cells:
        row = cell.as_dict()
        row["lints"] = "; ".join(row["lints"])
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def to_junit(cells: list[Cell], without_expectation: Iterable[str] = ()) -> str:
    """One test case per cell: a failure is a live disagreement or an unmet expectation;
    a cell a live run did not send, or one undecided offline, is skipped (or a failure, when it
    carried an expectation).
    With ``--strict``, each route that has no expectation is a failing test case too."""
    from xml.sax.saxutils import quoteattr

    missing = list(without_expectation)
    failures = sum(cell.failed for cell in cells) + len(missing)
    skipped = sum((cell.not_sent is not None or cell.outcome is Outcome.UNDECIDED) and not cell.failed for cell in cells)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="authctl matrix" tests="{len(cells) + len(missing)}" failures="{failures}" '
             f'errors="0" skipped="{skipped}">']
    for cell in cells:
        name = quoteattr(f"{cell.route.method} {cell.route.path} as {cell.user}")
        classname = quoteattr(f"{cell.route.method} {cell.route.template}")
        lines.append(f"  <testcase classname={classname} name={name}>")
        if cell.agrees is False:
            message = (f"offline decision {cell.decision} ({cell.decision_outcome.value}), "  # type: ignore[union-attr]
                       f"live status {cell.live_status} ({cell.outcome.value})")
            lines.append(f"    <failure message={quoteattr(message)} type=\"mismatch\"/>")
        elif cell.meets_expectation is False:
            got = cell.outcome.value + (f" ({cell.not_sent})" if cell.not_sent else "")
            message = f"expected {cell.expected.value}, got {got}"  # type: ignore[union-attr]
            lines.append(f"    <failure message={quoteattr(message)} type=\"expectation\"/>")
        elif cell.not_sent is not None:
            lines.append(f"    <skipped message={quoteattr('not sent: ' + cell.not_sent)}/>")
        elif cell.outcome is Outcome.UNDECIDED:
            lines.append(f"    <skipped message={quoteattr(f'undecided offline: {cell.undecided} decides in code')}/>")
        lines.append("  </testcase>")
    for route in missing:
        lines.append(f"  <testcase classname=\"strict\" name={quoteattr(route + ' has an expectation')}>")
        message = f"{route} has no expectation (--strict): decide who may call it"
        lines.append(f"    <failure message={quoteattr(message)} type=\"strict\"/>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"
