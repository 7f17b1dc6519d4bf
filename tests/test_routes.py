"""The route inventory and matcher (authctl/routes.py) and `authctl routes`."""

from __future__ import annotations

import json
import textwrap

import pytest
from fastapi import APIRouter, Depends, FastAPI

from authctl import routes
from authctl.app import create_app
from authctl.errors import InvalidInput, NoRoute
from authctl.fastapi import Auth
from authctl.policy import AUTHENTICATED, PUBLIC, permission
from authctl.store import Store
from tests.apphelpers import Client, issue, make_demo_db

DEMO_ROUTES = {
    ("GET", "/health"): "public",
    ("GET", "/profile"): "authenticated",
    ("GET", "/students"): "students:read",
    ("GET", "/students/{id}"): "students:read (or own {id})",
    ("DELETE", "/student/{id}"): "students:delete",
    ("GET", "/courses"): "public",
    ("POST", "/courses"): "courses:write",
    ("GET", "/admin/dashboard"): "admin:access",
    ("POST", "/token"): "public",
    ("POST", "/token/refresh"): "public",
    ("POST", "/logout"): "authenticated",
    ("GET", "/whoami"): "authenticated",
    ("GET", "/.well-known/jwks.json"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/docs-assets/{path}"): "public",
}


@pytest.fixture
def demo_app():
    return create_app("unused.db")  # the inventory never opens the database


def test_demo_inventory(demo_app):
    found = {(info.method, info.path): info.describe() for info in routes.inventory(demo_app)}
    assert found == DEMO_ROUTES
    assert not [info for info in routes.inventory(demo_app) if info.unprotected]


def test_inventory_reads_requirements_without_a_database(demo_app, tmp_path):
    routes.inventory(demo_app)
    assert not (tmp_path / "unused.db").exists()


def _app_with_gaps() -> tuple[FastAPI, Auth]:
    auth = Auth(db="unused.db")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    router = APIRouter(prefix="/api", dependencies=[Depends(auth.require("reports:read"))])

    @router.get("/reports/{rid}")
    async def report(rid: int, user=Depends(auth.current_user)) -> dict:
        return {}

    async def owner_or_admin(user=Depends(auth.require("admin:access"))):  # a user's own dependency
        return user

    @router.post("/reports")
    async def add_report(user=Depends(owner_or_admin)) -> dict:
        return {}

    @app.post("/open")
    async def open_route() -> dict:
        return {"oops": True}

    @app.put("/items/{id}", dependencies=[Depends(auth.public), Depends(auth.require("items:write"))])
    async def put_item(id: int) -> dict:
        return {}

    sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @sub.get("/inner", dependencies=[Depends(auth.require("inner:read"))])
    async def inner() -> dict:
        return {}

    app.include_router(router)
    app.mount("/sub", sub)
    return app, auth


def test_inventory_walks_routers_nested_dependencies_and_mounts():
    app, _ = _app_with_gaps()
    infos = {(i.method, i.path): i for i in routes.inventory(app)}
    report = infos[("GET", "/api/reports/{rid}")]
    assert report.requirement == permission("reports:read")
    assert report.requirements == (permission("reports:read"), AUTHENTICATED)
    add = infos[("POST", "/api/reports")]
    assert add.requirement == permission("reports:read", "admin:access")
    assert infos[("POST", "/open")].unprotected and infos[("POST", "/open")].kind == "open"
    put = infos[("PUT", "/items/{id}")]
    assert put.requirements == (PUBLIC, permission("items:write")) and put.requirement == permission("items:write")
    assert infos[("GET", "/sub/inner")].requirement == permission("inner:read")


@pytest.mark.parametrize("method,path,expected", [
    ("DELETE", "/student/3", ("DELETE", "/student/{id}", {"id": 3})),
    ("GET", "/students/2", ("GET", "/students/{id}", {"id": 2})),
    ("GET", "/students/2?x=1#top", ("GET", "/students/{id}", {"id": 2})),
    ("get", "/health", ("GET", "/health", {})),
    ("GET", "/docs-assets/swagger-ui.css", ("GET", "/docs-assets/{path}", {})),
    ("POST", "/courses", ("POST", "/courses", {})),
])
def test_match(demo_app, method, path, expected):
    info, params = routes.match(demo_app, method, path)
    assert (info.method, info.path, params) == expected


def test_match_no_route_and_wrong_method(demo_app):
    with pytest.raises(routes.RouteNotFound) as missing:
        routes.match(demo_app, "GET", "/nope")
    assert isinstance(missing.value, NoRoute) and missing.value.exit_code == 5
    with pytest.raises(routes.MethodNotAllowed) as wrong:
        routes.match(demo_app, "PUT", "/student/3")
    assert wrong.value.exit_code == 5 and wrong.value.allowed == ("DELETE",)
    assert "DELETE" in str(wrong.value)
    with pytest.raises(routes.MethodNotAllowed) as both:
        routes.match(demo_app, "DELETE", "/courses")
    assert set(both.value.allowed) == {"GET", "POST"}
    with pytest.raises(routes.RouteNotFound) as slash:
        routes.match(demo_app, "GET", "/students/")
    assert "redirects it to /students" in str(slash.value)
    with pytest.raises(routes.RouteNotFound):
        routes.match(demo_app, "GET", "/students/abc")  # {id:int} does not match


def test_match_inside_mounts_and_routers():
    app, _ = _app_with_gaps()
    info, params = routes.match(app, "GET", "/api/reports/7")
    assert info.requirement == permission("reports:read") and params == {"rid": "7"}  # no convertor: a string, as Starlette gives it
    info, _ = routes.match(app, "GET", "/sub/inner")
    assert info.path == "/sub/inner" and info.requirement == permission("inner:read")
    with pytest.raises(routes.RouteNotFound):
        routes.match(app, "GET", "/sub/missing")


CASES = [
    ("GET", "/health"), ("HEAD", "/health"), ("GET", "/nope"), ("PUT", "/student/3"), ("DELETE", "/courses"),
    ("GET", "/students/abc"), ("GET", "/students/2"), ("GET", "/students/3"), ("DELETE", "/student/3"),
    ("GET", "/students"), ("GET", "/admin/dashboard"), ("GET", "/profile"), ("GET", "/whoami"),
    ("GET", "/openapi.json"), ("HEAD", "/openapi.json"), ("GET", "/docs"), ("POST", "/health"),
]


@pytest.mark.parametrize("who", [None, "rahul", "priya", "suman"])
def test_offline_decision_agrees_with_the_server(cli, who):
    """routes.match + routes.decide predict exactly what the app answers (one decision engine)."""
    db = make_demo_db(cli)
    app = create_app(db)
    client = Client(app)
    try:
        with Store.open(db) as store:
            token = issue(store, who) if who else None
            for method, path in CASES:
                actual = client.request(method, path, token=token, follow_redirects=False).status_code
                try:
                    info, params = routes.match(app, method, path)
                except NoRoute as exc:
                    assert actual == exc.status, (method, path, actual)
                    continue
                decision = routes.decide(store, info, token, params)
                if decision.allowed:
                    assert actual < 400 or actual == 404, (method, path, actual)
                else:
                    assert actual == decision.status, (method, path, actual, decision.reason)
    finally:
        client.close()
        app.state.auth.close()


def test_decide_for_an_unprotected_route(cli):
    db = make_demo_db(cli)
    app, _ = _app_with_gaps()
    info, params = routes.match(app, "POST", "/open")
    with Store.open(db) as store:
        decision = routes.decide(store, info, None, params)
    assert decision.allowed and "nothing reads credentials" in decision.reason


# --------------------------------------------------------------------------- load_app


def test_load_app_default_and_module_attr(tmp_path, monkeypatch):
    assert routes.load_app(None).title.startswith("authctl demo")
    (tmp_path / "myapp.py").write_text(textwrap.dedent("""
        from fastapi import FastAPI
        app = FastAPI()
        def make():
            return FastAPI(title="made")
        @app.get("/x")
        def x():
            return {}
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [i.path for i in routes.inventory(routes.load_app("myapp:app")) if i.path == "/x"] == ["/x"]
    assert routes.load_app("myapp").title == "FastAPI"
    assert routes.load_app("myapp:make").title == "made"


@pytest.mark.parametrize("spec,fragment", [
    ("no_such_module_here:app", "no module named"),
    ("authctl.app:nothing", "has no attribute"),
    ("authctl.store:DEFAULT_DB", "not a Starlette/FastAPI app"),
    ("authctl.store:Store", "the factory raised"),
    ("not a spec", "not of the form"),
])
def test_load_app_errors_are_one_line(spec, fragment):
    with pytest.raises(InvalidInput) as error:
        routes.load_app(spec)
    assert fragment in str(error.value) and "\n" not in str(error.value)


# --------------------------------------------------------------------------- the command


def test_routes_command_table(cli):
    result = cli("routes")
    assert result.exit_code == 0, result.stderr
    assert "/student/{id}" in result.stdout and "students:delete" in result.stdout
    assert "unprotected" not in result.stderr


def test_routes_command_json(cli):
    result = cli("routes", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    row = next(r for r in data if r["method"] == "DELETE")
    assert row == {
        "method": "DELETE", "path": "/student/{id}", "name": "delete_student", "kind": "permission",
        "requires": "students:delete", "unprotected": False, "native": None, "flag": None, "login": False,
        "requirement": {"kind": "permission", "permissions": ["students:delete"], "mode": "all", "owner_param": None},
    }
    assert json.loads(cli("--json", "routes").stdout) == data


def test_routes_command_flags_unprotected(cli, tmp_path, monkeypatch):
    (tmp_path / "gappy.py").write_text(textwrap.dedent("""
        from fastapi import FastAPI
        app = FastAPI()
        @app.post("/open")
        def open_route():
            return {}
        @app.get("/fine")
        def fine():
            return {}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli("routes", "--app", "gappy:app")
    assert result.exit_code == 0
    assert "open?" in result.stdout
    assert "POST /open" in result.stderr and "/fine" not in result.stderr
    data = json.loads(cli("routes", "--app", "gappy:app", "--json").stdout)
    assert [r["path"] for r in data if r["unprotected"]] == ["/open"]
    assert next(r for r in data if r["path"] == "/fine")["kind"] == "public"


def test_routes_command_bad_app_is_one_line_exit_1(cli):
    result = cli("routes", "--app", "no_such_module_here:app")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no module named" in result.stderr
