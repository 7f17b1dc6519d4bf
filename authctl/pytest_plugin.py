"""authctl's pytest plugin (entry point ``pytest11``): authorization tests through the real auth path.

Fixtures:

* ``authctl_policy`` -- the policy the test database is built from: the file named by
  the ``authctl_policy`` ini option (or ``--authctl-policy``), else empty; override it to
  return a path, a ``{"roles": ..., "users": ...}`` dict or a ``policyfile.Policy``;
* ``authctl_db`` -- a temporary authctl database holding exactly that policy (a ``Store``);
* ``authctl_app`` -- the app under test: the ``authctl_app`` ini option (``module:attr``),
  else the bundled demo app; override it to return your own;
* ``authctl_client`` -- the app in-process over ASGI on ``authctl_db``, through its real
  dependencies (no ``dependency_overrides``): ``authctl_client.as_user("rahul").get(...)``,
  ``authctl_client.anonymous().delete(...)``;
* ``authctl_target`` -- for an app with its own security (``OAuth2PasswordBearer``, API
  keys, Basic ...): the ``targets.Target`` whose credentials the client speaks (the
  ``authctl_target`` ini option names one in ``authctl_db``; or override the fixture and
  ``targets.add(authctl_db, ...)``); None: authctl's own tokens;
* ``authctl_token`` -- ``authctl_token("rahul")``: an access token for that user;
* ``authctl_matrix`` -- ``authctl_matrix.check(expectations=None)``: asserts a whole
  expectation table (``{"DELETE /student/{id}": {"rahul": 403}}``, a policy, or by
  default the policy's ``[expect]``), failing with the two-phase
  trace of every unmet cell. With ``--authctl-strict`` (or ``@pytest.mark.authctl_strict``)
  a route without any expectation fails too.

Importing this module costs nothing beyond pytest: authctl is imported inside the fixtures.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("authctl", "authorization tests with authctl")
    group.addoption("--authctl-strict", action="store_true", default=False,
                    help="authctl_matrix.check() fails on every route that has no expectation")
    group.addoption("--authctl-policy", default=None, help="policy file for the authctl_db fixture")
    parser.addini("authctl_policy", "policy file for the authctl_db fixture", default="")
    parser.addini("authctl_app", "module:attr of the app for authctl_client (default: the bundled demo)", default="")
    parser.addini("authctl_target", "target (in authctl_db) whose credentials authctl_client speaks", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "authctl_strict: authctl_matrix.check() fails on routes without an expectation")


@pytest.fixture
def authctl_policy(request: pytest.FixtureRequest) -> Any:
    """The policy file (or dict, or Policy) the test database is built from; None: empty."""
    option = request.config.getoption("authctl_policy") or request.config.getini("authctl_policy")
    if not option:
        return None
    from pathlib import Path

    path = Path(option)
    return path if path.is_absolute() else Path(request.config.rootpath) / path


@pytest.fixture
def authctl_db(authctl_policy: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from authctl import testing

    directory = tmp_path_factory.mktemp("authctl")
    with testing.temporary_store(testing.as_policy(authctl_policy), directory / "authctl.db") as store:
        yield store


@pytest.fixture
def authctl_app(request: pytest.FixtureRequest) -> Any:
    from authctl import routes

    spec = request.config.getini("authctl_app") or None
    if spec is None:
        from authctl.app import create_app

        return create_app()
    return routes.load_app(spec)


@pytest.fixture
def authctl_target(request: pytest.FixtureRequest, authctl_db: Any) -> Any:
    """How ``authctl_client`` speaks to an app with its own security: the target named by the
    ``authctl_target`` ini option in ``authctl_db``, else None (authctl's own tokens). Override
    it to make one in code with ``authctl.targets.add(authctl_db, ...)``."""
    name = request.config.getini("authctl_target")
    if not name:
        return None
    from authctl import targets

    return targets.get(authctl_db, name)


@pytest.fixture
def authctl_client(authctl_app: Any, authctl_db: Any, authctl_target: Any) -> Iterator[Any]:
    from authctl import testing

    client = testing.Client(authctl_app, authctl_db, authctl_target)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def authctl_token(authctl_client: Any) -> Any:
    return authctl_client.token


class Matrix:
    """Asserts expectation tables on the app's routes with the offline engine (and, with ``live``, the app)."""

    def __init__(self, app: Any, store: Any, policy: Any, strict: bool, client: Any):
        self.app, self.store, self.policy, self.strict, self._client = app, store, policy, strict, client

    def report(self, expectations: Any = None, *, live: bool = False, unsafe: bool = True,
               strict: bool | None = None) -> Any:
        """The report without asserting: ``expectations`` is a policy (path, dict, Policy) or None for the fixture's."""
        from collections.abc import Mapping

        from authctl import matrix, policyfile, testing

        source = self.policy if expectations is None else expectations
        if isinstance(source, Mapping) and not set(source) & set(policyfile.SECTIONS):
            table = matrix.expectations_from(source, "the table given in code")  # {"METHOD /path": {user: outcome}}
        else:
            table = testing.as_policy(source).matrix_expectations()
        return testing.run_expectations(
            self.store, self.app, table, strict=self.strict if strict is None else strict, live=live,
            live_app=self.app if live else None, unsafe=unsafe, target=self._client.target,
        )

    def check(self, expectations: Any = None, **options: Any) -> Any:
        report = self.report(expectations, **options)
        if not report.ok:
            pytest.fail("authctl: unmet authorization expectations\n" + report.text(), pytrace=False)
        return report


@pytest.fixture
def authctl_matrix(request: pytest.FixtureRequest, authctl_client: Any, authctl_policy: Any) -> Matrix:
    strict = bool(request.config.getoption("authctl_strict")) or request.node.get_closest_marker("authctl_strict") is not None
    return Matrix(authctl_client.app, authctl_client.store, authctl_policy, strict, authctl_client)
