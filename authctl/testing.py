"""Authorization tests from a policy: ``authctl policy test`` and the pytest plugin share this.

* ``temporary_store``: a throwaway database built from a policy (a fresh signing key,
  the file's roles and users as the file says, no passwords);
* ``run_expectations``: the policy's expectation tables over the app's routes through
  ``authctl.matrix`` (the same cells, decisions and expectation matching as
  ``matrix --expect``), optionally observed live in-process; every unmet cell gets the
  two-phase trace (authentication, then authorization) of ``authctl check``;
* ``Client``: the app in-process, through its real auth path, acting as a user.

Nothing here imports pytest, fastapi or httpx at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import InvalidInput

if TYPE_CHECKING:
    from .matrix import Cell
    from .policyfile import Policy
    from .store import Store
    from .policy import Outcome
    from .targets import Target


def as_policy(source: "Policy | Mapping[str, Any] | str | Path | None") -> "Policy":
    """A policy from a file path, a TOML-shaped dict (``{"roles": ..., "users": ...}``) or a ``Policy``."""
    from . import policyfile

    if source is None:
        return policyfile.Policy()
    if isinstance(source, policyfile.Policy):
        return source
    if isinstance(source, Mapping):
        return policyfile.parse(source, "the policy given in code")
    return policyfile.load(source)


def temporary_store(policy: "Policy", path: str | Path) -> "Store":
    """A new database at ``path`` holding exactly ``policy`` (users active or disabled as written)."""
    from . import policyfile
    from .bootstrap import create_database

    store, _, _ = create_database(path)
    try:
        policyfile.apply(store, policy, prune=True, users_as_file=True, source="test database",
                         with_targets=False)  # a throwaway database has no target secrets: expectations need none
    except BaseException:
        store.close()
        raise
    return store


# --------------------------------------------------------------------------- expectations


@dataclass
class Failure:
    """A cell that failed (unmet, not sent, or live disagreeing), or a route with no expectation."""

    route: str  # "METHOD /template"
    user: str | None
    message: str
    trace: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([self.message, *("    " + line for line in self.trace)])

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "user": self.user, "message": self.message, "trace": self.trace}


@dataclass
class Report:
    users: list[str]
    cells: list["Cell"]
    failures: list[Failure]
    live: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        checked = sum(cell.expected is not None for cell in self.cells)
        head = f"{checked} expectation(s) over {len({c.route for c in self.cells})} route(s), {len(self.failures)} failure(s)"
        return "\n".join([head, *(failure.text() for failure in self.failures)])

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "live": self.live, "users": self.users, "cells": [c.as_dict() for c in self.cells],
                "failures": [f.as_dict() for f in self.failures]}


def run_expectations(
    store: "Store", app: Any, expectations: Mapping[tuple[str, str], Mapping[str, "Outcome"]], *, strict: bool = False,
    live: bool = False, live_app: Any = None, unsafe: bool = False, params: Mapping[str, str] | None = None,
    target: "Target | None" = None,
) -> Report:
    """Every expectation over the app's routes; ``strict``: a route without any expectation fails too.

    ``live`` also sends each cell to ``live_app`` in-process (mutating methods only with
    ``unsafe``); an expected cell that was not sent is a failure, never a pass. ``target``:
    the cells speak that target's credentials (an app with its own security).
    """
    from . import matrix

    if not strict and not any(expectations.values()):
        raise InvalidInput("there are no expectations: nothing would be tested (add [expect.\"METHOD /path\"] tables)")
    users = sorted({user for cells in expectations.values() for user in cells if user != matrix.ANONYMOUS})
    for user in users:
        store.get_user(user)  # NotFound before anything runs
    users.append(matrix.ANONYMOUS)
    cells = matrix.offline_cells(store, app, users, params or {}, token_per_cell=live, target=target)
    without = matrix.apply_expectations(cells, expectations, users=users, strict=strict)  # unknown names: InvalidInput
    if live:
        matrix.attach_live([c for c in cells if c.expected is not None], app=live_app, unsafe=unsafe)
    failures = []
    for cell in cells:
        message = _failure_message(cell, live)
        if message:
            failures.append(Failure(f"{cell.route.method} {cell.route.template}", cell.user, message,
                                    trace(store, app, cell, target)))
    requires = {c.route.key: c.route.requires for c in cells}
    for key in without:
        failures.append(Failure(key, None, f"{key} ({requires[key]}) has no expectation: decide who may call it"))
    return Report(users, cells, failures, live)


def _failure_message(cell: "Cell", live: bool) -> str | None:
    from . import matrix

    where = f"{cell.route.method} {cell.route.path} as {cell.user}"
    if cell.expected is None:
        return None
    expected = matrix.expectation_text(cell.expected)
    if live and cell.live is None:
        return f"{where}: expected {expected}, not sent ({cell.not_sent or 'no answer'})"
    if cell.agrees is False:
        return f"{where}: the app answered {cell.live_status}, the offline decision is {cell.decision}"
    if cell.meets_expectation is False:
        got = matrix.expectation_text(cell.outcome)
        got = got if cell.live is None else f"{got} (live status {cell.live_status})"
        return f"{where}: expected {expected}, got {got}"
    return None


def trace(store: "Store", app: Any, cell: "Cell", target: "Target | None" = None) -> list[str]:
    """The two phases of ``authctl check`` for one cell, as plain lines (a native route's steps too)."""
    from . import explain, matrix

    if cell.user == matrix.ANONYMOUS:
        subject = explain.ANONYMOUS
    elif target is not None:
        subject = explain.subject_for_target(store, target, cell.user)
    else:
        subject = explain.Subject("user", cell.user, cell.token)
    data = explain.check(store, app, cell.route.method, cell.route.path, subject).as_dict()
    authn, authz, verdict = data["authentication"], data["authorization"], data["verdict"]
    lines = [f"route {data['route']['method']} {data['route']['path']}: requires {authz['requires']}"]
    if data.get("native"):
        for ok, name, detail in ((s["ok"], s["name"], s["detail"]) for s in data["native"]["steps"]):
            lines.append(f"{'ok' if ok else 'FAILED' if ok is False else '?'} {name}: {detail}")
        lines.append(f"verdict {verdict['status']}: {verdict['reason']}")
        if cell.live is not None:
            lines.append(f"live: {cell.live.status} {str(cell.live.body)[:200]}")
        return lines
    if not authn["checked"]:
        lines.append("1 authentication: not checked (the route reads no token)")
    else:
        failing = [f"{c['name']}: {c['detail']}" for c in authn["checks"] if not c["ok"]]
        mark = "ok" if authn["ok"] else "FAILED"
        lines.append(f"1 authentication {mark}: {authn['reason']}" + (f" ({'; '.join(failing)})" if failing else ""))
    if authn["ok"]:
        roles = ", ".join(r["role"] + (f" (via {r['via']})" if r["via"] else "") for r in authz["roles"]) or "none"
        granted = ", ".join(f"{g['permission']} via {g['granted_by']}" for g in authz["granted"]) or "nothing"
        missing = ", ".join(authz["missing"]) or "nothing"
        lines.append(f"2 authorization: roles {roles}; granted {granted}; missing {missing}")
    else:
        lines.append("2 authorization: not reached")
    lines.append(f"verdict {verdict['status']}: {verdict['reason']}")
    if verdict["hint"]:
        lines.append(f"hint: {verdict['hint']}")
    if cell.live is not None:
        lines.append(f"live: {cell.live.status} {str(cell.live.body)[:200]}")
    return lines


def to_junit(report: Report) -> str:
    """One test case per expectation (and per route without one, when strict); traces in the failures."""
    from xml.sax.saxutils import escape, quoteattr

    by_cell = {(f.route, f.user): f for f in report.failures}
    cases = []
    for cell in report.cells:
        if cell.expected is None:
            continue
        route = f"{cell.route.method} {cell.route.template}"
        cases.append((route, f"{route} as {cell.user}", by_cell.get((route, cell.user))))
    cases += [(f.route, f"{f.route}: has an expectation", f) for f in report.failures if f.user is None]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="authctl policy test" tests="{len(cases)}" failures="{sum(c[2] is not None for c in cases)}" '
             'errors="0" skipped="0">']
    for classname, name, failure in cases:
        lines.append(f"  <testcase classname={quoteattr(classname)} name={quoteattr(name)}>")
        if failure is not None:
            lines.append(f"    <failure message={quoteattr(failure.message)}>{escape(chr(10).join(failure.trace))}</failure>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the app, in-process


class Client:
    """The app in-process over ASGI, through its real auth path, on ``store``.

    Every ``authctl.fastapi.Auth`` of the app serves from ``store`` until ``close()``
    (no dependency overrides): ``client.as_user("rahul").delete("/student/3")`` sends
    a token minted for rahul with the active key, exactly as one from ``POST /token``.
    """

    def __init__(self, app: Any, store: "Store", target: "Target | None" = None):
        from . import fastapi as integration
        from .explain import app_overrides
        from .probe import Session

        self.app, self.store, self.target = app, store, target
        self._auths = integration.auth_objects(app)
        for auth in self._auths:
            auth.use_store(store)
        self._overrides = app_overrides(app)
        self._session = Session(app)
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        """An access token for ``username`` (minted once per client, like a login)."""
        from .names import username_key

        key = username_key(username)
        if key not in self._tokens:
            from . import tokens

            self._tokens[key] = tokens.issue(self.store, username, allow_disabled=True, overrides=self._overrides).token
        return self._tokens[key]

    def as_user(self, username: str) -> "Caller":
        """Requests as ``username``: with a target, speaking the app's own credentials (its
        token template, its login, Basic or an API key); otherwise an authctl access token."""
        if self.target is not None:
            from . import targets

            return Caller(self._session, None, targets.credential(self.store, self.target, username))
        return Caller(self._session, self.token(username))

    def anonymous(self) -> "Caller":
        return Caller(self._session, None)

    def close(self) -> None:
        self._session.close()
        for auth in self._auths:
            auth.use_store(None)


class Caller:
    """Requests as one user (or nobody); each returns httpx's response."""

    def __init__(self, session: Any, token: str | None, credential: Any = None):
        self._session, self._token, self._credential = session, token, credential

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._session.request(method.upper(), path, token=self._token, credential=self._credential, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def policy_test(
    policy: "Policy", app_spec: str | None, directory: str | Path, *, live: bool = False, unsafe: bool = False,
    strict: bool = False, params: Mapping[str, str] | None = None,
) -> Report:
    """``authctl policy test``: the file's expectations on a throwaway database built from the file alone."""
    from . import explain, routes

    app = routes.load_app(app_spec)
    with temporary_store(policy, Path(directory) / "policy-test.db") as store:
        expectations = policy.matrix_expectations()
        if not live:
            return run_expectations(store, app, expectations, strict=strict, params=params)
        with explain.snapshot_app(store, app_spec) as snapshot:
            return run_expectations(store, app, expectations, strict=strict, live=True, live_app=snapshot,
                                    unsafe=unsafe, params=params)

