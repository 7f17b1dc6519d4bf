"""`matrix --url URL --openapi`: an app's OpenAPI document read for security and scopes, hostile
documents refused in bounded time and memory, and the status lints the declared security allows."""

from __future__ import annotations

import json
import time

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse

from authctl import explain, matrix, openapi, probe, targets
from authctl.errors import InvalidInput
from authctl.store import Store
from tests.nativeapps import oauth2_scopes, sloppy
from tests.nativeapps.common import SECRET, USERS, make_token
from tests.test_check import serving


def ops(document):
    return {(o.method, o.path): o for o in openapi.operations(document)}


def test_openapi_security_and_scopes_are_read_per_operation():
    found = ops(oauth2_scopes.app.openapi())
    assert found[("GET", "/users/me")].security == "secured"
    items = found[("POST", "/items")]
    assert items.native.scopes == ("items:write",) and items.native.schemes[0].token_url == "token"
    assert found[("GET", "/health")].security == "undeclared"
    assert found[("DELETE", "/items/{item_id}")].security == "undeclared"


def test_openapi_security_empty_list_is_public_and_global_security_applies():
    document = {
        "openapi": "3.1.0", "security": [{"key": []}],
        "components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}}},
        "paths": {"/open": {"get": {"security": []}}, "/closed": {"get": {}}, "/maybe": {"get": {"security": [{}, {"key": []}]}}},
    }
    found = ops(document)
    assert found[("GET", "/open")].security == "public"
    closed = found[("GET", "/closed")]
    assert closed.security == "secured" and closed.native.schemes[0].param == "X-Key"
    assert found[("GET", "/maybe")].security == "optional" and not found[("GET", "/maybe")].native.schemes[0].auto_error


def test_openapi_refs_and_path_level_parameters_are_resolved():
    document = {
        "servers": [{"url": "/api/v1"}],
        "components": {"parameters": {"Id": {"$ref": "#/components/parameters/RealId"},
                                      "RealId": {"name": "id", "in": "path", "schema": {"$ref": "#/components/schemas/Uuid"}}},
                       "schemas": {"Uuid": {"type": "string", "format": "uuid"}}},
        "paths": {"/things/{id}": {"parameters": [{"$ref": "#/components/parameters/Id"}],
                                   "get": {"security": []}, "delete": {"security": [], "parameters": [
                                       {"name": "id", "in": "path", "schema": {"type": "integer"}}]}}},
    }
    found = ops(document)
    get = found[("GET", "/api/v1/things/{id}")]
    assert openapi.sample(get.parameters[0]) == "00000000-0000-4000-8000-000000000001"
    assert openapi.sample(found[("DELETE", "/api/v1/things/{id}")].parameters[0]) == "1"  # the operation's own wins


@pytest.mark.parametrize("document,fragment", [
    ({"paths": {"/a": {"$ref": "#/paths/~1b"}, "/b": {"$ref": "#/paths/~1a"}}}, "recursive $ref"),
    ({"paths": {"/a": {"$ref": "https://elsewhere.example/spec.json"}}}, "points outside the document"),
    ({"paths": {"/a": {"$ref": "#/nothing/here"}}}, "points at nothing"),
    ({"paths": {f"/p{i}": {"get": {}} for i in range(10_000)}}, "more than 2000 operations"),
    ({"paths": {"/a": {"get": {"security": [{"ghost": []}]}}}}, "does not define"),
])
def test_hostile_openapi_documents_are_one_line_errors(document, fragment):
    start = time.process_time()
    with pytest.raises(InvalidInput) as error:
        openapi.operations(openapi.parse(json.dumps(document).encode()))
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert time.process_time() - start < 30  # bounded (a generous bound: never a timing target)


@pytest.mark.parametrize("data,fragment", [
    (b"{not json", "not valid JSON"), (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"openapi": "3.1.0"}', "has no paths"), (b" " * (openapi.MAX_BYTES + 1), "larger than 10 MB"),
])
def test_broken_openapi_bytes_are_one_line_errors(data, fragment):
    with pytest.raises(InvalidInput) as error:
        openapi.parse(data)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_50_mb_document_is_refused_while_streaming_never_read_whole():
    app = FastAPI(openapi_url=None)

    @app.get("/openapi.json")
    def huge():
        return StreamingResponse((b" " * (1024 * 1024) for _ in range(50)), media_type="application/json")

    with pytest.raises(InvalidInput, match="larger than 10 MB"):
        probe.fetch_document("/openapi.json", app=app)
    with serving(app) as url:  # over a socket the stream stops at the limit
        with pytest.raises(InvalidInput, match="larger than 10 MB"):
            probe.fetch_document("/openapi.json", url=url)


# --------------------------------------------------------------------------- live, with the declared security


@pytest.fixture
def native_db(tmp_path):
    path = tmp_path / "native.db"
    with Store.create(path) as store:
        for name in USERS:
            store.add_user(name, None)
        targets.add(store, "shop", mode="token", key=SECRET.encode(), scope_claim="scope",
                    scopes={"rahul": "items:read reports:read", "suman": "items:read items:write"})
    return path


def test_spec_cells_agree_with_the_app_live(native_db):
    with Store.open(native_db) as store:
        target = targets.get(store, "shop")
        cells = matrix.spec_cells(store, openapi.operations(oauth2_scopes.app.openapi()), ["rahul", "suman", "anonymous"],
                                  {}, target)
        matrix.attach_live(cells, app=oauth2_scopes.app, unsafe=True)
    by = {(c.route.method, c.route.template, c.user): c for c in cells}
    assert by[("POST", "/items", "rahul")].decision == 403 and by[("POST", "/items", "rahul")].agrees is True
    assert by[("GET", "/users/me", "anonymous")].decision == 401 and by[("GET", "/users/me", "anonymous")].agrees
    decided = [c for c in cells if c.decision is not None and c.route.template != "/token"]
    assert decided and all(c.agrees for c in decided), [(c.route.template, c.user) for c in decided if not c.agrees]
    assert by[("DELETE", "/items/{item_id}", "anonymous")].decision is None  # declares nothing: observed only


def test_status_lints_from_the_declared_security(native_db):
    with Store.open(native_db) as store:
        target = targets.get(store, "shop")
        cells = matrix.spec_cells(store, openapi.operations(sloppy.app.openapi()), ["suman", "anonymous"], {}, target)
        matrix.attach_live(cells, app=sloppy.app)
        forged = explain.subject_for_target_token(target, make_token("rahul")[:-3] + "xyz")
        checked = explain.check(store, sloppy.app, "GET", "/reports", forged)
        explain.attach_live([checked], app=sloppy.app, source="in-process")
    by = {(c.route.template, c.user): c for c in cells}
    lacking = by[("/reports", "suman")]  # suman's token has no reports:read
    assert lacking.live.status == 401 and lacking.agrees is False
    assert any("401 for a valid token lacking scope reports:read" in p for p in lacking.live.lints)
    assert any("without a WWW-Authenticate" in p for p in lacking.live.lints)
    anonymous = by[("/summary", "anonymous")]
    assert anonymous.live.status == 200 and any("anonymous request on a route declared secured" in p
                                                 for p in anonymous.live.lints)
    assert checked.live.status == 403 and checked.decision.status == 401 and checked.agrees is False
    assert any("403 for an expired or forged token" in p for p in checked.live.lints)


def test_matrix_openapi_finds_the_document_under_a_prefix(cli, native_db, tmp_path, monkeypatch):
    api = FastAPI(openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    router = APIRouter(prefix="/api/v1")
    router.add_api_route("/items", oauth2_scopes.list_items, methods=["GET"])
    api.include_router(router)
    (tmp_path / "prefixed.py").write_text("from tests.test_openapi import PREFIXED as app\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    global PREFIXED
    PREFIXED = api
    cli.db = native_db
    with serving(api) as url:
        missing = cli("matrix", "--url", url, "--openapi", "--users", "rahul")
        assert missing.exit_code == 1 and "--openapi-url" in missing.stderr and missing.stderr.count("\n") == 1
        for extra in (["--openapi-url", "/api/v1/openapi.json"], ["--app", "prefixed:app"]):
            result = cli("matrix", "--url", url, "--openapi", "--users", "rahul", "--target", "shop", "--json", *extra)
            assert result.exit_code == 0, result.stderr
            cells = {(c["route"], c["user"]): c for c in json.loads(result.stdout)["cells"]}
            assert cells[("/api/v1/items", "rahul")]["live"] == 200 and cells[("/api/v1/items", "rahul")]["agrees"]
            assert cells[("/api/v1/items", "anonymous")]["decision"] == 401


PREFIXED: FastAPI | None = None
