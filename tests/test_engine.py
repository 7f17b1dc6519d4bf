"""Unit tests of the decision engine (policy), one explained request (explain) and the matrix,
called as a library against a real SQLite store and the real demo app, with no CLI or HTTP."""

from __future__ import annotations

import pytest

from authctl import explain, matrix, policy, tokens
from authctl.app import create_app
from authctl.errors import AuthenticationError, Forbidden, InvalidInput, Mismatch, NoRoute, RouteNotFound
from authctl.policy import AUTHENTICATED, PUBLIC, Outcome, permission
from authctl.store import Store

# --------------------------------------------------------------------------- policy


def test_policy_public_route_passes_without_reading_a_token(store: Store) -> None:
    decision = policy.decide(store, "not-a-token", PUBLIC)
    assert decision.allowed and decision.reason == "the route is public"


def test_policy_no_token_is_401_and_a_bad_one_names_its_failure(store: Store) -> None:
    missing = policy.decide(store, None, AUTHENTICATED)
    assert missing.outcome is Outcome.UNAUTHENTICATED and not missing.authentication.given
    bad = policy.decide(store, "a.b.c", AUTHENTICATED, explain=True)
    assert bad.outcome is Outcome.UNAUTHENTICATED and bad.authentication.given
    assert bad.authentication.checks and any(check.ok is False for check in bad.authentication.checks)


def test_policy_permission_is_403_with_what_is_missing_and_the_smallest_fix(store: Store) -> None:
    rahul = tokens.issue(store, "rahul").token
    decision = policy.decide(store, rahul, permission("students:delete"), explain=True)
    assert decision.outcome is Outcome.FORBIDDEN and decision.missing == ("students:delete",)
    assert decision.hint and "students:delete" in decision.hint
    suman = tokens.issue(store, "suman").token
    allowed = policy.decide(store, suman, permission("students:delete"))
    assert allowed.allowed and allowed.granted_by == {"students:delete": "admin"}


def test_policy_any_of_needs_one_and_the_owner_param_allows_the_owner(store: Store) -> None:
    rahul = tokens.issue(store, "rahul")
    either = permission("students:delete", "students:read", any_of=True)
    assert policy.decide(store, rahul.token, either).allowed
    own = permission("students:delete", owner_param="id")
    rahul_id = store.get_user("rahul").id
    assert policy.decide(store, rahul.token, own, {"id": str(rahul_id)}).owner_match
    assert not policy.decide(store, rahul.token, own, {"id": str(rahul_id + 100)}).allowed


def test_policy_a_revoked_role_counts_on_the_next_decision(store: Store) -> None:
    token = tokens.issue(store, "suman").token
    assert policy.decide(store, token, permission("students:delete")).allowed
    store.unassign("suman", ["admin"])
    assert policy.decide(store, token, permission("students:delete")).outcome is Outcome.FORBIDDEN


def test_policy_outcomes_exit_with_their_error_class_code() -> None:
    assert Outcome.ALLOWED.error is None and Outcome.ALLOWED.exit_code == 0
    assert Outcome.UNAUTHENTICATED.error is AuthenticationError and Outcome.UNAUTHENTICATED.exit_code == 3
    assert Outcome.FORBIDDEN.error is Forbidden and Outcome.FORBIDDEN.exit_code == 4
    assert Outcome.NO_ROUTE.error is NoRoute and Outcome.NO_ROUTE.exit_code == 5
    assert Mismatch.exit_code == 6
    assert {Outcome.SERVER_ERROR.exit_code, Outcome.NOT_SENT.exit_code, Outcome.ERROR.exit_code} == {1}


# --------------------------------------------------------------------------- explain


@pytest.fixture
def seeded_app(demo_db):
    """The demo app on the seeded demo database (test_routes' demo_app never opens one)."""
    app = create_app(demo_db)
    yield app
    app.state.auth.close()


def test_explain_check_decides_the_matched_route_offline(demo_db, seeded_app) -> None:
    with Store.open(demo_db) as store:
        rahul = explain.subject_for_user(store, "rahul")
        result = explain.check(store, seeded_app, "delete", "/student/3", rahul)
        assert (result.method, result.route.path, result.path_params) == ("DELETE", "/student/{id}", {"id": 3})
        assert result.decision.outcome is Outcome.FORBIDDEN and result.exit_code == 4
        assert result.live is None and result.agrees is None
        anonymous = explain.check(store, seeded_app, "GET", "/students", explain.ANONYMOUS)
        assert anonymous.decision.outcome is Outcome.UNAUTHENTICATED and anonymous.exit_code == 3
        data = result.as_dict()
        assert data["verdict"]["status"] == 403 and data["authorization"]["missing"] == ["students:delete"]
        assert rahul.token and rahul.token not in str(data)  # never the whole token


def test_explain_check_of_a_missing_route_is_no_route(demo_db, seeded_app) -> None:
    with Store.open(demo_db) as store, pytest.raises(RouteNotFound):
        explain.check(store, seeded_app, "GET", "/nowhere", explain.ANONYMOUS)


def test_explain_mutating_methods_need_unsafe() -> None:
    explain.require_safe_method("GET", False)
    explain.require_safe_method("DELETE", True)
    with pytest.raises(InvalidInput):
        explain.require_safe_method("POST", False)


# --------------------------------------------------------------------------- matrix


def test_matrix_offline_cells_are_the_engine_decisions(demo_db, seeded_app) -> None:
    with Store.open(demo_db) as store:
        cells = matrix.offline_cells(store, seeded_app, ["suman", "rahul", matrix.ANONYMOUS], {})
    by = {(c.route.method, c.route.template, c.user): c for c in cells}
    assert by[("DELETE", "/student/{id}", "suman")].decision == 200
    assert by[("DELETE", "/student/{id}", "rahul")].decision == 403
    assert by[("DELETE", "/student/{id}", "anonymous")].decision == 401
    assert by[("GET", "/health", "anonymous")].decision == 200
    assert all(c.live is None and c.agrees is None for c in cells)  # nothing was sent


def test_matrix_expectations_mark_unmet_cells_and_unknown_users_are_refused(demo_db, seeded_app) -> None:
    with Store.open(demo_db) as store:
        cells = matrix.offline_cells(store, seeded_app, ["rahul", matrix.ANONYMOUS], {})
    expectations = {("DELETE", "/student/{id}"): {"rahul": Outcome.ALLOWED, "anonymous": Outcome.UNAUTHENTICATED}}
    matrix.apply_expectations(cells, expectations)
    checked = {c.user: c for c in cells if c.route.template == "/student/{id}" and c.route.method == "DELETE"}
    assert checked["rahul"].failed and checked["rahul"].meets_expectation is False
    assert not checked["anonymous"].failed and checked["anonymous"].meets_expectation is True
    with pytest.raises(InvalidInput):
        matrix.apply_expectations(cells, {("DELETE", "/student/{id}"): {"nobody": Outcome.ALLOWED}},
                                  users=["rahul", matrix.ANONYMOUS])
