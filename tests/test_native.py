"""FastAPI-native security: what each route of an app with its own auth requires, decided offline
where it can be, and the same answer live (in-process, over ASGI) for every cell offline decides."""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import pytest
from fastapi import FastAPI, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from authctl import explain, probe, routes, targets
from authctl.policy import Outcome
from authctl.store import Store
from tests.nativeapps.common import SECRET, USERS, make_token

KINDS = {
    "oauth2_scopes": {
        ("POST", "/token"): "public", ("GET", "/health"): "public", ("GET", "/users/me"): "authenticated",
        ("GET", "/items"): "scopes", ("POST", "/items"): "scopes", ("DELETE", "/items/{item_id}"): "open",
    },
    "routerdeps": {
        ("GET", "/admin/stats"): "guarded", ("GET", "/admin/users"): "guarded",
        ("GET", "/admin/orders/{order_id}"): "open", ("GET", "/debug/settings"): "open", ("GET", "/"): "public",
    },
    "basic": {("GET", "/reports"): "authenticated", ("GET", "/ping"): "public"},
    "apikey": {("GET", "/data"): "authenticated"},
    "tokenscheme": {("GET", "/notes"): "authenticated"},
    "superuser": {
        ("POST", "/login/access-token"): "public", ("GET", "/me"): "authenticated", ("GET", "/admin/users"): "guarded",
    },
    "optional": {("GET", "/feed"): "authenticated"},
}


def fixture_app(name: str) -> FastAPI:
    return importlib.import_module(f"tests.nativeapps.{name}").app


def api_routes(app: FastAPI) -> dict[tuple[str, str], routes.RouteInfo]:
    return {(i.method, i.path): i for i in routes.inventory(app) if not i.path.startswith(("/docs", "/redoc", "/openapi"))}


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("module", sorted(KINDS))
def test_each_route_kind_is_read_from_the_dependency_tree(module):
    found = {key: info.kind for key, info in api_routes(fixture_app(module)).items()}
    assert found == KINDS[module]


def test_open_routes_are_flagged_only_when_they_look_like_a_mistake():
    shop = api_routes(fixture_app("oauth2_scopes"))
    assert "DELETE" in shop[("DELETE", "/items/{item_id}")].flag
    assert shop[("GET", "/health")].flag is None and not shop[("GET", "/health")].unprotected
    assert shop[("POST", "/token")].login and shop[("POST", "/token")].flag is None  # the tokenUrl: public by design
    office = api_routes(fixture_app("routerdeps"))
    assert "every other route under /admin is protected" in office[("GET", "/admin/orders/{order_id}")].flag
    assert "under /debug" in office[("GET", "/debug/settings")].flag
    assert office[("GET", "/")].flag is None
    assert [i.path for i in api_routes(fixture_app("superuser")).values() if i.unprotected] == []


def test_schemes_carry_name_location_and_auto_error():
    data = api_routes(fixture_app("apikey"))[("GET", "/data")].native
    assert [(s.cls, s.location, s.param, s.auto_error) for s in data.schemes] == [("APIKeyHeader", "header", "X-API-Key", True)]
    feed = api_routes(fixture_app("optional"))[("GET", "/feed")].native
    assert feed.schemes[0].auto_error is False and feed.loaders[0].name == "optional_user"
    guard = api_routes(fixture_app("superuser"))[("GET", "/admin/users")].native.guards
    assert [(g.name, g.module) for g in guard] == [("get_current_active_superuser", "tests.nativeapps.superuser")]


_scheme = OAuth2PasswordBearer(tokenUrl="token")


def _caller(security_scopes: SecurityScopes, token: Annotated[str, Security(_scheme, scopes=["base"])]) -> str:
    return token


def _admin_caller(user: Annotated[str, Security(_caller, scopes=["admin"])]) -> str:
    return user


def test_scopes_merge_along_the_path_as_fastapi_merges_them():
    app = FastAPI()

    @app.get("/x", include_in_schema=False)  # not in OpenAPI: read from the tree alone
    def x(user: Annotated[str, Security(_admin_caller, scopes=["x:read"])]) -> str:
        return user

    @app.get("/y")
    def y(user: Annotated[str, Security(_admin_caller, scopes=["x:read"])]) -> str:
        return user

    found = api_routes(app)
    assert set(found[("GET", "/x")].native.scopes) == {"x:read", "admin", "base"}
    openapi_scopes = app.openapi()["paths"]["/y"]["get"]["security"][0]["OAuth2PasswordBearer"]
    assert set(found[("GET", "/y")].native.scopes) == set(openapi_scopes) == {"x:read", "admin", "base"}
    assert found[("GET", "/x")].native.reads_scopes


def test_a_dependency_tree_that_raises_when_read_is_a_one_line_error(cli, tmp_path, monkeypatch):
    (tmp_path / "brokentree.py").write_text(
        "from fastapi import FastAPI\n"
        "app = FastAPI()\n"
        "@app.get('/x')\n"
        "def x():\n"
        "    return {}\n"
        "class Broken:\n"
        "    @property\n"
        "    def dependencies(self):\n"
        "        raise RuntimeError('no')\n"
        "app.router.routes[-1].dependant = Broken()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli("routes", "--app", "brokentree:app")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "cannot read the dependencies of /x" in result.stderr and "Traceback" not in result.stderr


def test_routes_command_json_shows_native_security(cli):
    result = cli("routes", "--app", "tests.nativeapps.oauth2_scopes:app", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {(r["method"], r["path"]): r for r in json.loads(result.stdout)}
    items = rows[("POST", "/items")]
    assert items["kind"] == "scopes" and items["native"]["scopes"] == ["items:write"]
    assert items["native"]["schemes"][0]["token_url"] == "token"
    assert rows[("DELETE", "/items/{item_id}")]["unprotected"] is True
    table = cli("routes", "--app", "tests.nativeapps.routerdeps:app")
    assert "staff_member" in table.stderr and "/admin/orders/{order_id}" in table.stderr


# --------------------------------------------------------------------------- offline decisions


def test_missing_credentials_status_follows_the_fastapi_version():
    bearer = routes.Scheme("HTTPBearer", "HTTPBearer", "http", "header", "Authorization", True, "bearer")
    key = routes.Scheme("APIKeyHeader", "APIKeyHeader", "apiKey", "header", "X-API-Key", True)
    basic = routes.Scheme("HTTPBasic", "HTTPBasic", "http", "header", "Authorization", True, "basic")
    oauth = routes.Scheme("OAuth2PasswordBearer", "OAuth2PasswordBearer", "oauth2", "header", "Authorization", True, "bearer")
    assert [s.missing_status((0, 115, 14)) for s in (bearer, key, basic, oauth)] == [403, 403, 401, 401]
    assert [s.missing_status((0, 122, 0)) for s in (bearer, key, basic, oauth)] == [401, 401, 401, 401]


@pytest.mark.parametrize("module", sorted(KINDS))
def test_no_credentials_on_a_scheme_route_is_never_allowed_as_unchecked(module):
    for info in api_routes(fixture_app(module)).values():
        decision = routes.decide(None, info, None)  # type: ignore[arg-type]
        if info.is_native:
            assert "does not check" not in decision.reason
            if any(s.auto_error for s in info.native.schemes):
                assert decision.status == info.native.schemes[0].missing_status() and decision.decided
            else:
                assert decision.undecided == "`optional_user`"


def test_a_custom_scheme_with_no_credential_sent_says_none_was_sent():
    from fastapi import Depends
    from fastapi.security import HTTPBearer

    class MyBearer(HTTPBearer):
        async def __call__(self, request):  # type: ignore[override]
            return await super().__call__(request)

    app = FastAPI()

    @app.get("/mine")
    def mine(credentials=Depends(MyBearer())):
        return {}

    info = api_routes(app)[("GET", "/mine")]
    decision = routes.decide_native(info, None)
    assert "a credential is present" not in decision.reason
    assert decision.reason == "no credentials sent; `MyBearer` decides" and decision.undecided == "`MyBearer`"


def _target(module: str) -> targets.Target:
    config = TARGETS[module]
    secret = {"passwords": {u: USERS[u]["password"] for u in USERS}} if config["mode"] in ("login", "basic") else {}
    if config["mode"] == "static":
        secret = {"passwords": {u: USERS[u]["api_key"] for u in USERS}}
    if config["mode"] == "token":
        import base64

        secret = {"key": base64.b64encode(SECRET.encode()).decode()}
    return targets.Target(module, {"send_param": None, **config}, "now", secret)


TARGETS = {
    "oauth2_scopes": {"mode": "token", "send": "bearer", "alg": "HS256", "kid": None, "sub": {}, "scope_claim": "scope",
                      "scopes": {"rahul": ["items:read"], "suman": ["items:read", "items:write"]}, "ttl": 600},
    "routerdeps": {"mode": "token", "send": "bearer", "alg": "HS256", "sub": {}, "ttl": 600},
    "basic": {"mode": "basic", "send": "bearer"},
    "apikey": {"mode": "static", "send": "header", "send_param": "X-API-Key"},
    "tokenscheme": {"mode": "token", "send": "scheme", "send_param": "Token", "alg": "HS256", "sub": {}, "ttl": 600},
    "superuser": {"mode": "login", "send": "bearer", "token_url": "/login/access-token"},
    "optional": {"mode": "token", "send": "bearer", "alg": "HS256", "sub": {}, "ttl": 600},
}


@pytest.fixture
def native_store(tmp_path):
    with Store.create(tmp_path / "native.db") as store:
        for name in USERS:
            store.add_user(name, None)
        yield store


def _subjects(store, module):
    target = _target(module)
    return [explain.ANONYMOUS] + [explain.subject_for_target(store, target, name) for name in USERS]


@pytest.mark.parametrize("module", sorted(KINDS))
def test_offline_agrees_with_live_for_every_cell_offline_decides(native_store, module):
    """Every route × (anonymous, rahul, suman) through the app's own security, in-process over ASGI."""
    app = fixture_app(module)
    infos = {key: info for key, info in api_routes(app).items() if not info.login}  # a login's answer is its form's
    cells = [(info, subject) for info in infos.values() for subject in _subjects(native_store, module)]
    sent = probe.send_all(
        [probe.Request(i.method, i.path.replace("{item_id}", "1").replace("{order_id}", "1"), s.token, s.credential)
         for i, s in cells], app=app,
    )
    decided = 0
    for (info, subject), response in zip(cells, sent):
        decision = routes.decide(native_store, info, subject.token, credential=subject.credential)
        if getattr(decision, "undecided", None):
            continue  # the guard's answer: live only
        decided += 1
        assert Outcome.of_status(response.status).agrees_with(decision.outcome), (
            module, info.method, info.path, subject.label, decision.status, response.status, decision.reason)
    assert decided >= len(infos)  # at least the anonymous row of every route is decided


def test_insufficient_scope_is_a_403_naming_the_missing_scope(native_store):
    info = api_routes(fixture_app("oauth2_scopes"))[("POST", "/items")]
    rahul = explain.subject_for_target(native_store, _target("oauth2_scopes"), "rahul")
    decision = routes.decide(native_store, info, rahul.token, credential=rahul.credential)
    assert decision.status == 403 and decision.missing_scopes == ("items:write",)
    assert "insufficient_scope" in decision.reason and "items:write" in decision.reason


def test_a_guard_leaves_the_decision_to_its_code(native_store):
    info = api_routes(fixture_app("superuser"))[("GET", "/admin/users")]
    suman = explain.subject_for_target(native_store, _target("superuser"), "suman")
    decision = routes.decide(native_store, info, None, credential=suman.credential)
    assert decision.undecided == "`get_current_active_superuser`" and decision.verdict == "undecided"
    assert decision.reason == "authenticated; the guard `get_current_active_superuser` decides in code"


def test_a_token_not_from_a_target_is_undecided_on_a_native_route(native_store):
    info = api_routes(fixture_app("oauth2_scopes"))[("GET", "/users/me")]
    decision = routes.decide(native_store, info, make_token("rahul"))
    assert decision.undecided and "does not know this app's key" in decision.steps[-1][2]


def test_a_forged_token_checked_against_the_target_key_is_a_401(native_store):
    info = api_routes(fixture_app("oauth2_scopes"))[("GET", "/users/me")]
    forged = make_token("rahul")[:-4] + "AAAA"
    subject = explain.subject_for_target_token(_target("oauth2_scopes"), forged)
    decision = routes.decide(native_store, info, subject.token, credential=subject.credential)
    assert decision.status == 401 and decision.decided and "signature" in decision.reason
    live = probe.send_all([probe.Request("GET", "/users/me", subject.token, subject.credential)], app=fixture_app("oauth2_scopes"))
    assert live[0].status == 401


def test_undecided_never_agrees_and_never_passes(native_store):
    from authctl.matrix import Cell, Route
    from authctl.policy import Outcome

    app = fixture_app("superuser")
    subject = explain.subject_for_target(native_store, _target("superuser"), "rahul")
    result = explain.check(native_store, app, "GET", "/admin/users", subject)
    assert result.undecided and result.exit_code == 1 and result.agrees is None
    explain.attach_live([result], app=app, source="in-process")
    assert result.live.status == 403 and result.agrees is None and result.exit_code == 4  # the live answer decides
    cell = Cell(Route("GET", "/admin/users", "/admin/users", "guarded"), "rahul", 200, expected=Outcome.ALLOWED,
                undecided="`get_current_active_superuser`")
    assert cell.outcome is Outcome.UNDECIDED and cell.meets_expectation is False and cell.agrees is None
    assert cell.as_dict()["outcome"] == cell.as_dict()["decision_outcome"] == "undecided"
