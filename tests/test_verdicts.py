"""Verdicts you can trust: one outcome vocabulary, live runs that never touch real data,
expectations that cannot pass by mistake, --app failures, typed path samples, probe's identity."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from authctl.policy import Outcome
from authctl.store import Store

from .conftest import Cli
from .test_check import check_json, serving


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a fixture app module (a fresh name per test) and return its module name."""
    written: list[str] = []

    def write(source: str, **values: object) -> str:
        name = f"fixture_{len(written)}_{abs(hash(str(tmp_path))) % 10**8}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source).format(**values))
        written.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for name in written:
        sys.modules.pop(name, None)


# --------------------------------------------------------------------------- one outcome vocabulary


def test_agreement_means_the_same_outcome_and_a_5xx_never_agrees() -> None:
    assert Outcome.of_status(200).agrees_with(Outcome.of_status(204))
    for status in (400, 404, 422, 500, 503):
        assert not Outcome.ALLOWED.agrees_with(Outcome.of_status(status)), status
    assert not Outcome.SERVER_ERROR.agrees_with(Outcome.SERVER_ERROR)
    assert not Outcome.NOT_SENT.agrees_with(Outcome.NOT_SENT)
    assert Outcome.of_status(422) is Outcome.CLIENT_ERROR and Outcome.of_status(405) is Outcome.NO_ROUTE


FAILING_APP = '''
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from authctl.fastapi import Auth, public

auth = Auth(db="{db}")
app = FastAPI()
app.include_router(auth.router)

@app.get("/boom", dependencies=[Depends(public)])
async def boom():
    return JSONResponse({{"detail": "crashed"}}, status_code=500)

@app.get("/bad", dependencies=[Depends(auth.current_user)])
async def bad():
    return JSONResponse({{"detail": "Inactive user"}}, status_code=400)

@app.get("/invalid", dependencies=[Depends(public)])
async def invalid():
    return JSONResponse({{"detail": "unprocessable"}}, status_code=422)
'''


@pytest.mark.parametrize("path,status,outcome", [
    ("/boom", 500, "server_error"), ("/bad", 400, "client_error"), ("/invalid", 422, "client_error"),
])
def test_a_live_500_400_or_422_never_agrees_with_allowed(demo: Cli, module, path: str, status: int, outcome: str) -> None:
    app = module(FAILING_APP, db=demo.db)
    code, data = check_json(demo, "GET", path, "--as", "rahul", "--app", f"{app}:app", "--live")
    assert data["verdict"]["outcome"] == "allowed" and data["verdict"]["status"] == 200
    assert data["live"]["status"] == status and data["live"]["outcome"] == outcome
    assert data["live"]["agrees"] is False and code == 6
    human = demo("check", "GET", path, "--as", "rahul", "--app", f"{app}:app", "--live")
    assert "DISAGREES" in human.stdout and "agrees" not in human.stdout.replace("DISAGREES", "")


def test_matrix_shows_the_observed_status_beside_the_decision(demo: Cli, module) -> None:
    app = module(FAILING_APP, db=demo.db)
    table = demo("matrix", "--app", f"{app}:app", "--live", "--users", "rahul")
    assert table.exit_code == 6
    row = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.startswith("│")}
    assert "200 → 500 ✗" in row["GET /boom"] and "200 → 400 ✗" in row["GET /bad"] and "200 → 422 ✗" in row["GET /invalid"]
    cells = json.loads(demo("matrix", "--app", f"{app}:app", "--live", "--users", "rahul", "--json").stdout)["cells"]
    boom = next(c for c in cells if c["route"] == "/boom" and c["user"] == "rahul")
    assert (boom["decision_outcome"], boom["live_outcome"], boom["outcome"], boom["agrees"]) == (
        "allowed", "server_error", "server_error", False)


REDIRECT_APP = '''
from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from authctl.fastapi import Auth, public

auth = Auth(db="{db}")
app = FastAPI()
app.include_router(auth.router)

@app.get("/account", dependencies=[Depends(public)])
async def account():
    return RedirectResponse("/login", status_code=302)  # how a session-auth app refuses an anonymous caller
'''


def test_a_redirect_is_its_own_outcome_that_never_agrees_and_cannot_be_expected() -> None:
    assert Outcome.of_status(302) is Outcome.REDIRECTED and Outcome.of_status(307) is Outcome.REDIRECTED
    assert Outcome.of_status(204) is Outcome.ALLOWED and Outcome.of_status(399) is Outcome.REDIRECTED
    assert not Outcome.ALLOWED.agrees_with(Outcome.REDIRECTED) and not Outcome.REDIRECTED.agrees_with(Outcome.REDIRECTED)
    assert Outcome.REDIRECTED.exit_code == Outcome.CLIENT_ERROR.exit_code == 1
    assert "not followed" in Outcome.REDIRECTED.label


def test_a_live_302_is_redirected_never_agrees_and_fails_an_allowed_expectation(
    demo: Cli, module, tmp_path: Path
) -> None:
    app = f"{module(REDIRECT_APP, db=demo.db)}:app"
    code, data = check_json(demo, "GET", "/account", "--anonymous", "--app", app, "--live")
    assert data["verdict"]["outcome"] == "allowed"  # offline sees an open route
    assert data["live"]["status"] == 302 and data["live"]["outcome"] == "redirected"
    assert data["live"]["agrees"] is False and code == 6
    human = demo("check", "GET", "/account", "--anonymous", "--app", app, "--live")
    assert "DISAGREES" in human.stdout and "not followed" in human.stdout
    expect = _expect(tmp_path, '["GET /account"]\nanonymous = "allow"\n')
    result = demo("matrix", "--app", app, "--live", "--users", "rahul", "--expect", expect, "--json")
    assert result.exit_code == 6
    cell = next(c for c in json.loads(result.stdout)["cells"] if c["route"] == "/account" and c["user"] == "anonymous")
    assert (cell["live"], cell["outcome"], cell["agrees"], cell["meets_expectation"]) == (302, "redirected", False, False)
    html = demo("matrix", "--app", app, "--live", "--users", "rahul", "--format", "html")
    assert 'data-outcome="redirected"' in html.stdout
    for written in ("302", "redirected"):
        refused = demo("matrix", "--expect", _expect(tmp_path, f'["GET /account"]\nanonymous = "{written}"\n'),
                       "--app", app)
        assert refused.exit_code == 1 and "expected allow" in refused.stderr, written


# --------------------------------------------------------------------------- live runs never touch real data


OWN_DATA_APP = '''
import sqlite3
from fastapi import FastAPI

DB = "{data}"
app = FastAPI()

@app.get("/items")
def items():
    with sqlite3.connect(DB) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM items")]

@app.delete("/items/{{item_id}}")
def remove(item_id: int):
    with sqlite3.connect(DB) as conn:
        conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
    return {{"deleted": item_id}}
'''


def _items(data: Path) -> list[int]:
    with sqlite3.connect(data) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM items ORDER BY id")]


def test_live_on_an_app_authctl_cannot_rebind_needs_unsafe_and_leaves_its_data_intact(
    demo: Cli, module, tmp_path: Path
) -> None:
    data = tmp_path / "items.db"
    with sqlite3.connect(data) as conn:
        conn.executescript("CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO items VALUES (1), (2);")
    app = f"{module(OWN_DATA_APP, data=data)}:app"
    refused = demo("check", "DELETE", "/items/1", "--anonymous", "--app", app, "--live")
    assert refused.exit_code == 1 and "--unsafe" in refused.stderr and "snapshot" in refused.stderr
    assert _items(data) == [1, 2]
    matrix = json.loads(demo("matrix", "--app", app, "--live", "--users", "rahul", "--json").stdout)
    assert "NOT a snapshot" in matrix["target"]
    assert all(c["live"] is None and "--unsafe" in c["not_sent"] for c in matrix["cells"] if c["method"] == "DELETE")
    assert _items(data) == [1, 2]
    code, sent = check_json(demo, "GET", "/items", "--anonymous", "--app", app, "--live")
    assert sent["live"]["snapshot"] is False and "NOT a snapshot" in sent["live"]["source"]
    code, sent = check_json(demo, "DELETE", "/items/1", "--anonymous", "--app", app, "--live", "--unsafe")
    assert sent["live"]["status"] == 200 and sent["live"]["snapshot"] is False
    assert _items(data) == [2]  # --unsafe really sent it, to the app's own data, and said so


def test_live_on_a_rebound_app_is_a_snapshot_and_says_so(demo: Cli, module) -> None:
    app = module(FAILING_APP, db=demo.db)
    code, data = check_json(demo, "POST", "/logout", "--as", "rahul", "--app", f"{app}:app", "--live")
    assert code == 0 and data["live"]["snapshot"] is True and "snapshot copy of the authctl database" in data["live"]["source"]


def test_rebind_reports_what_it_rebound(demo: Cli, module) -> None:
    from authctl import fastapi as integration
    from authctl import routes

    with Store.open(demo.db) as store:
        assert integration.rebind(routes.load_app(f"{module(OWN_DATA_APP, data='x.db')}:app"), store) == []
        rebound = integration.rebind(routes.load_app(f"{module(FAILING_APP, db=demo.db)}:app"), store)
        assert len(rebound) == 1 and rebound[0].store is store


def test_in_process_gives_a_rebound_app_back_its_own_database(demo: Cli, module) -> None:
    from authctl import explain, routes, tokens
    from authctl.probe import Session

    spec = f"{module(FAILING_APP, db=demo.db)}:app"
    with Store.open(demo.db) as store:
        with explain.in_process(store, spec) as running:
            assert running.snapshot is True
        token = tokens.issue(store, "rahul").token
    app = routes.load_app(spec)
    assert app is running.app  # the same imported object, kept in sys.modules
    session = Session(app)
    try:
        response = session.request("GET", "/whoami", token=token)
    finally:
        session.close()
    assert response.status_code == 200 and response.json()["user"]["username"] == "rahul"


# --------------------------------------------------------------------------- expectations cannot pass by mistake


def _expect(tmp_path: Path, text: str) -> str:
    path = tmp_path / "expect.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_expectation_for_an_unknown_route_is_an_error_naming_the_nearest(demo: Cli, tmp_path: Path) -> None:
    result = demo("matrix", "--expect", _expect(tmp_path, '["DELETE /students/{id}"]\nrahul = 403\n'))
    assert result.exit_code == 1 and result.stdout == ""
    assert "DELETE /students/{id} matches no route" in result.stderr and "'DELETE /student/{id}'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_expectation_for_an_unknown_user_is_an_error_naming_the_nearest(demo: Cli, tmp_path: Path) -> None:
    result = demo("matrix", "--expect", _expect(tmp_path, '["DELETE /student/{id}"]\nrahull = 403\n'))
    assert result.exit_code == 1 and "'rahull'" in result.stderr and "did you mean 'rahul'" in result.stderr


def test_expectation_usernames_match_case_folded_as_authctl_does(demo: Cli, tmp_path: Path) -> None:
    expect = _expect(tmp_path, '["DELETE /student/{id}"]\nRAHUL = "allow"\n')
    result = demo("matrix", "--expect", expect, "--json")
    assert result.exit_code == 6  # RAHUL is rahul, who gets a 403: the expectation is checked, and unmet
    cell = next(c for c in json.loads(result.stdout)["cells"] if c["route"] == "/student/{id}" and c["user"] == "rahul")
    assert cell["expected"] == "allowed" and cell["meets_expectation"] is False


def test_an_expectation_on_an_unsent_cell_is_unmet_and_junit_skips_unsent_cells(demo: Cli, tmp_path: Path) -> None:
    expect = _expect(tmp_path, '''
        ["POST /courses"]
        anonymous = 401
        ["GET /students"]
        rahul = "forbidden"
    ''')
    result = demo("matrix", "--live", "--expect", expect, "--users", "rahul", "--format", "junit")
    assert result.exit_code == 6
    assert "expected unauthenticated, got not_sent" in result.stdout
    assert 'failures="1"' in result.stdout
    not_sent_without_expectation = 3 * 2 - 1  # POST /token, /token/refresh, /courses × (rahul, anonymous), less one
    assert f'skipped="{not_sent_without_expectation}"' in result.stdout
    assert result.stdout.count("<skipped ") == not_sent_without_expectation
    assert "not sent" in result.stderr


def test_strict_fails_on_every_route_without_an_expectation(demo: Cli, tmp_path: Path) -> None:
    partial = _expect(tmp_path, '["DELETE /student/{id}"]\nrahul = 403\n')
    result = demo("matrix", "--expect", partial, "--strict", "--users", "rahul")
    assert result.exit_code == 6 and "with no expectation (--strict)" in result.stderr and "GET /health" in result.stderr
    assert demo("matrix", "--expect", partial, "--users", "rahul").exit_code == 0
    offline = json.loads(demo("matrix", "--users", "rahul", "--json").stdout)["cells"]
    anonymous = {f"{c['method']} {c['route']}": c["outcome"] for c in offline if c["user"] == "anonymous"}
    complete = "".join(f'["{route}"]\nanonymous = "{outcome}"\n' for route, outcome in anonymous.items())
    (tmp_path / "expect.toml").write_text(complete)
    assert demo("matrix", "--expect", str(tmp_path / "expect.toml"), "--strict", "--users", "rahul").exit_code == 0
    assert demo("matrix", "--strict").exit_code == 2


# --------------------------------------------------------------------------- matrix --url against another app


def test_matrix_url_against_another_app_does_not_agree_on_404s(demo: Cli) -> None:
    from fastapi import FastAPI

    other = FastAPI()

    @other.get("/health")
    async def health():
        return {"status": "ok"}

    with serving(other) as url:
        result = demo("matrix", "--url", url, "--users", "rahul", "--json")
    assert result.exit_code == 6
    cells = json.loads(result.stdout)["cells"]
    students = next(c for c in cells if c["route"] == "/students" and c["user"] == "rahul")
    assert students["live"] == 404 and students["outcome"] == "no_route" and students["agrees"] is False
    assert "answered 404/405 live" in result.stderr and "--openapi" in result.stderr


# --------------------------------------------------------------------------- --app failures are errors


@pytest.mark.parametrize("source,fragment", [
    ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
    ("import sys\nsys.exit(3)\n", "called sys.exit(3)"),
    ("raise RuntimeError('boom')\n", "RuntimeError while importing"),
    ("x = 1\n", "has no attribute 'app'"),
    ("app = 42\n", "not a Starlette/FastAPI app"),
    ("import sys\ndef app():\n    sys.exit(0)\n", "the factory called sys.exit(0)"),
])
def test_an_app_that_exits_raises_or_is_missing_is_an_error_never_allowed(demo: Cli, module, source: str, fragment: str) -> None:
    name = module(source)
    for args in (("check", "GET", "/profile", "--anonymous"), ("matrix",), ("routes",)):
        result = demo(*args, "--app", f"{name}:app")
        assert result.exit_code == 1, (args, result.exit_code)
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_app_sys_exit_is_not_called_as_a_factory(demo: Cli) -> None:
    result = demo("check", "GET", "/profile", "--anonymous", "--app", "sys:exit")
    assert result.exit_code == 1 and "not a Starlette/FastAPI app" in result.stderr


# --------------------------------------------------------------------------- path parameters by type


TYPED_APP = '''
import uuid
from fastapi import FastAPI
from starlette.convertors import Convertor, register_url_convertor

class Hex(Convertor):
    regex = "[0-9a-f]{{40}}"
    def convert(self, value): return value
    def to_string(self, value): return value

register_url_convertor("sha_{tag}", Hex())
app = FastAPI()

@app.get("/items/{{item_id:uuid}}")
async def item(item_id: uuid.UUID):
    return {{"item": str(item_id)}}

@app.get("/things/{{thing_id}}")
async def thing(thing_id: uuid.UUID):
    return {{"thing": str(thing_id)}}

@app.get("/n/{{x:int}}/{{y:float}}")
async def numbers(x: int, y: float):
    return {{"x": x, "y": y}}

@app.get("/files/{{rest:path}}")
async def files(rest: str):
    return {{"rest": rest}}

@app.get("/commits/{{sha:sha_{tag}}}")
async def commit(sha: str):
    return {{"sha": sha}}
'''


def test_path_parameters_get_a_valid_sample_of_their_type(demo: Cli, module, tmp_path: Path) -> None:
    from authctl.routes import UUID_SAMPLE

    tag = abs(hash(str(tmp_path))) % 10**6
    app = f"{module(TYPED_APP, tag=tag)}:app"
    result = demo("matrix", "--app", app, "--live", "--users", "rahul", "--json")
    assert result.exit_code == 0, result.stderr
    paths = {c["route"]: c for c in json.loads(result.stdout)["cells"] if c["user"] == "rahul"}
    assert paths["/items/{item_id}"]["path"] == f"/items/{UUID_SAMPLE}" and paths["/items/{item_id}"]["live"] == 200
    assert paths["/things/{thing_id}"]["live"] == 200  # typed by its annotation alone
    assert paths["/n/{x}/{y}"]["path"] == "/n/1/1.5" and paths["/n/{x}/{y}"]["live"] == 200
    assert paths["/files/{rest}"]["live"] == 200
    assert "/commits/{sha}" not in paths  # no sample fits: skipped with a note, not an abort
    assert "GET /commits/{sha} skipped" in result.stderr and "--param sha=" in result.stderr
    given = demo("matrix", "--app", app, "--users", "rahul", "--param", "sha=" + "a" * 40, "--param",
                 "item_id=6b1a2f6e-0000-4000-8000-00000000abcd", "--json")
    paths = {c["route"]: c["path"] for c in json.loads(given.stdout)["cells"]}
    assert paths["/commits/{sha}"] == "/commits/" + "a" * 40
    assert paths["/items/{item_id}"] == "/items/6b1a2f6e-0000-4000-8000-00000000abcd"


def test_openapi_formats_give_typed_samples() -> None:
    from authctl import matrix, openapi
    from authctl.routes import UUID_SAMPLE

    def operation(schema: dict) -> dict:
        return {"get": {"parameters": [{"name": "x", "in": "path", "schema": schema}]}}

    spec = {"paths": {
        "/u/{x}": operation({"type": "string", "format": "uuid"}), "/i/{x}": operation({"type": "integer"}),
        "/f/{x}": operation({"type": "number"}), "/e/{x}": operation({"type": "string", "enum": ["red", "blue"]}),
        "/p/{x}": operation({"type": "string", "pattern": "^[A-Z]{3}$"}),
    }}
    notes: list[str] = []
    found = [matrix._spec_route(operation, {}, notes) for operation in openapi.operations(spec)]
    paths = {r.template: r.path for r in found if r is not None}
    assert paths == {"/u/{x}": f"/u/{UUID_SAMPLE}", "/i/{x}": "/i/1", "/f/{x}": "/f/1.5", "/e/{x}": "/e/red"}
    assert notes == ["GET /p/{x} skipped: no valid sample for {x}: give --param x=VALUE"]
    given = [matrix._spec_route(operation, {"x": "ABC"}, None) for operation in openapi.operations(spec)]
    assert given[-1] is not None and given[-1].path == "/p/ABC"


# --------------------------------------------------------------------------- probe


HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u009b31m\u202eevil"


def test_probe_names_the_identity_path_and_a_failing_identity_endpoint_exits_1(demo: Cli) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    other = FastAPI()

    @other.get("/me")
    async def me():
        return {"user": {"username": "rahul"}, "roles": [], "permissions": []}

    @other.get("/bad-me")
    async def bad_me():
        return JSONResponse({"detail": "Inactive user"}, status_code=400)

    @other.get("/broken-me")
    async def broken_me():
        return JSONResponse({"detail": "down"}, status_code=503)

    with serving(other) as url:
        ok = demo("probe", "--as", "rahul", "--url", url, "--whoami-path", "/me")
        assert ok.exit_code == 0 and "GET /me → 200" in ok.stdout and "GET /whoami" not in ok.stdout
        for path, status in (("/whoami", 404), ("/bad-me", 400), ("/broken-me", 503)):
            result = demo("probe", "--as", "rahul", "--url", url, "--whoami-path", path)
            assert result.exit_code == 1, path
            assert f"GET {path} → {status}" in result.stdout
            assert f"identity endpoint GET {path} answered {status}" in result.stderr
            data = json.loads(demo("probe", "--as", "rahul", "--url", url, "--whoami-path", path, "--json").stdout)
            assert data["whoami"]["path"] == path and data["whoami"]["status"] == status and data["whoami"]["problem"]


def test_probe_escapes_a_hostile_servers_terminal_controls(demo: Cli) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, PlainTextResponse

    hostile = FastAPI()

    @hostile.get("/whoami")
    async def whoami():
        return {"user": {"username": HOSTILE}, "roles": [HOSTILE], "permissions": [HOSTILE]}

    @hostile.get("/page")
    async def page():
        return PlainTextResponse(HOSTILE, headers={"Cache-Control": "\u009b2J\u202e".encode().decode("latin-1")})

    @hostile.get("/json")
    async def as_json():
        return JSONResponse({"detail": HOSTILE}, status_code=403)

    with serving(hostile) as url:
        outputs = [demo("probe", "GET", path, "--as", "rahul", "--url", url) for path in ("/page", "/json")]
    for result in outputs:
        assert "pwned" in result.stdout  # the text is there, escaped
        for raw in ("\x1b", "\x07", "\u009b", "\u202e"):
            assert raw not in result.stdout, repr(raw)
        assert "\\x1b" in result.stdout and "\\u202e" in result.stdout
    assert "\\x9b" in outputs[0].stdout  # in the header too


def test_expectation_for_an_unknown_user_with_no_near_name_lists_the_known_ones(demo: Cli, tmp_path: Path) -> None:
    """The matrix says what it knows, as the policy file does (one ``names.nearest``)."""
    result = demo("matrix", "--expect", _expect(tmp_path, '["DELETE /student/{id}"]\nzzzz = 403\n'))
    assert result.exit_code == 1 and result.stdout == ""
    assert "'zzzz', who is not in the matrix (known: anonymous, priya, rahul, suman)" in result.stderr
