"""`authctl check`, `matrix`, `probe` and `demo` on the bundled app and on fixture apps."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from authctl.store import Store

from .conftest import Cli


def check_json(cli: Cli, *args: str, input: str | None = None) -> tuple[int, dict]:
    result = cli("check", *args, "--json", input=input)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


# --------------------------------------------------------------------------- verdicts


def test_student_delete_is_403_with_the_smallest_fix(demo: Cli) -> None:
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "rahul")
    assert code == 4
    assert data["verdict"]["status"] == 403 and data["verdict"]["result"] == "forbidden"
    assert data["route"]["path"] == "/student/{id}" and data["route"]["path_params"] == {"id": 3}
    assert data["authentication"]["ok"] is True and data["authentication"]["identity"]["username"] == "rahul"
    assert {c["name"] for c in data["authentication"]["checks"] if c["ok"]} >= {"signature", "exp", "revoked", "enabled", "version"}
    assert data["authorization"]["missing"] == ["students:delete"]
    assert data["verdict"]["hint"] == "assign role admin to rahul, or grant students:delete to role student"


def test_human_trace_has_both_phases_and_the_verdict(demo: Cli) -> None:
    result = demo("check", "DELETE", "/student/3", "--as", "rahul")
    assert result.exit_code == 4
    for needle in ("Authentication", "Authorization", "403 FORBIDDEN", "students:delete", "assign role admin to rahul"):
        assert needle in result.stdout


def test_admin_is_allowed_and_names_the_granting_role(demo: Cli) -> None:
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "suman")
    assert code == 0 and data["verdict"]["status"] == 200
    assert data["authorization"]["granted"] == [{"permission": "students:delete", "granted_by": "admin"}]
    assert {"role": "student", "via": "instructor"} in data["authorization"]["roles"]


def test_instructor_may_write_courses_but_not_delete_students(demo: Cli) -> None:
    assert check_json(demo, "POST", "/courses", "--as", "priya")[0] == 0
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "priya")
    assert code == 4 and data["verdict"]["hint"].startswith("assign role admin to priya")


def test_anonymous_is_401_and_authorization_is_not_reached(demo: Cli) -> None:
    code, data = check_json(demo, "DELETE", "/student/3", "--anonymous")
    assert code == 3 and data["verdict"]["status"] == 401
    assert data["authentication"]["identity"] is None
    assert "Authorization: Bearer" in data["verdict"]["hint"]
    assert check_json(demo, "GET", "/health", "--anonymous")[0] == 0


def test_student_reads_their_own_record_but_not_others(demo: Cli) -> None:
    code, data = check_json(demo, "GET", "/students/2", "--as", "rahul")
    assert code == 0 and data["authorization"]["owner_match"] is True
    assert check_json(demo, "GET", "/students/3", "--as", "rahul")[0] == 4


def test_expired_and_revoked_tokens_are_401(demo: Cli) -> None:
    expired = demo("token", "issue", "--as", "suman", "--expired").stdout.strip()
    code, data = check_json(demo, "DELETE", "/student/3", "--token", "-", input=f"Bearer {expired}\n")
    assert code == 3
    assert any(c["name"] == "exp" and c["ok"] is False for c in data["authentication"]["checks"])
    assert "expired" in data["verdict"]["hint"]
    token = demo("token", "issue", "--as", "suman").stdout.strip()
    assert demo("token", "revoke", token).exit_code == 0
    (demo.db.parent / "token.txt").write_text(f"Bearer {token}\n")
    code, data = check_json(demo, "DELETE", "/student/3", "--token", f"@{demo.db.parent / 'token.txt'}")
    assert code == 3
    assert any(c["name"] == "revoked" and c["ok"] is False for c in data["authentication"]["checks"])


def test_disabled_user_is_401(demo: Cli) -> None:
    demo("user", "disable", "suman")
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "suman")
    assert code == 3
    assert any(c["name"] == "enabled" and c["ok"] is False for c in data["authentication"]["checks"])


def test_role_changes_take_effect_immediately(demo: Cli) -> None:
    demo("role", "grant", "student", "students:delete")
    assert check_json(demo, "DELETE", "/student/3", "--as", "rahul")[0] == 0


def test_no_route_and_wrong_method_exit_5(demo: Cli) -> None:
    missing = demo("check", "GET", "/nowhere", "--as", "rahul")
    assert missing.exit_code == 5 and "no route matches GET /nowhere" in missing.stderr
    wrong = demo("check", "PUT", "/student/3", "--as", "rahul")
    assert wrong.exit_code == 5 and "allows DELETE" in wrong.stderr


def test_bad_input(demo: Cli) -> None:
    unknown = demo("check", "GET", "/profile", "--as", "ghost")
    assert unknown.exit_code == 1 and "no user named 'ghost'" in unknown.stderr
    assert demo("check", "FETCH", "/profile", "--as", "rahul").exit_code == 2
    assert demo("check", "GET", "/profile").exit_code == 2
    assert demo("check", "GET", "/profile", "--as", "rahul", "--anonymous").exit_code == 2
    bad_app = demo("check", "GET", "/profile", "--as", "rahul", "--app", "no_such_module:app")
    assert bad_app.exit_code == 1 and "cannot import app" in bad_app.stderr
    garbage = demo("check", "GET", "/profile", "--token", "not-a-token")
    assert garbage.exit_code == 3 and "Traceback" not in garbage.stderr
    unreadable = demo("check", "GET", "/profile", "--token", "@/nonexistent/token.txt")
    assert unreadable.exit_code == 1 and "cannot read /nonexistent/token.txt" in unreadable.stderr


# --------------------------------------------------------------------------- live


def test_live_agrees_and_the_delete_hits_only_a_snapshot(demo: Cli) -> None:
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "suman", "--live")
    assert code == 0
    assert data["live"]["status"] == 200 and data["live"]["agrees"] is True
    with Store.open(demo.db) as store:
        deleted = store.conn.execute("SELECT deleted FROM demo_students WHERE id = 3").fetchone()[0]
    assert deleted == 0  # the original database was not touched
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "rahul", "--live")
    assert code == 4 and data["live"]["status"] == 403 and data["live"]["agrees"] is True


def test_url_mode_refuses_mutating_methods_without_unsafe(demo: Cli) -> None:
    result = demo("check", "DELETE", "/student/3", "--as", "suman", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "--unsafe" in result.stderr
    refused = demo("check", "GET", "/profile", "--as", "suman", "--url", f"http://127.0.0.1:{_closed_port()}")
    assert refused.exit_code == 1 and "connection refused" in refused.stderr


FIXTURE_APP = '''
from fastapi import Depends, FastAPI, HTTPException
from authctl.fastapi import Auth

auth = Auth(db="{db}")
app = FastAPI()
app.include_router(auth.router)

@app.get("/reports")
async def reports():  # forgot its requirement
    return {{"reports": ["q1"]}}

@app.get("/grades", dependencies=[Depends(auth.current_user)])
async def grades():  # the handler denies on its own: offline cannot know
    raise HTTPException(403, "handlers say no")

@app.delete("/student/{{id}}", dependencies=[Depends(auth.require("students:delete"))])
async def delete_student(id: int):
    return {{"deleted": id}}
'''


@pytest.fixture
def fixture_app(demo: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"brokenapp_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(FIXTURE_APP.format(db=demo.db))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{name}:app"
    sys.modules.pop(name, None)


def test_forgotten_requirement_is_unprotected_offline_and_200_live(demo: Cli, fixture_app: str) -> None:
    code, data = check_json(demo, "GET", "/reports", "--anonymous", "--app", fixture_app, "--live")
    assert code == 0
    assert data["verdict"]["unprotected"] is True and "not marked public" in data["verdict"]["reason"]
    assert data["live"]["status"] == 200 and data["live"]["agrees"] is True
    human = demo("check", "GET", "/reports", "--anonymous", "--app", fixture_app)
    assert "unprotected?" in human.stdout
    routes = json.loads(demo("routes", "--app", fixture_app, "--json").stdout)
    assert any(r["path"] == "/reports" and r["unprotected"] for r in routes)


def test_disagreement_exits_6_and_shows_both_sides(demo: Cli, fixture_app: str) -> None:
    code, data = check_json(demo, "GET", "/grades", "--as", "rahul", "--app", fixture_app, "--live")
    assert code == 6
    assert data["verdict"]["status"] == 200 and data["live"]["status"] == 403 and data["live"]["agrees"] is False
    human = demo("check", "GET", "/grades", "--as", "rahul", "--app", fixture_app, "--live")
    assert human.exit_code == 6 and "DISAGREES" in human.stdout


def test_live_snapshot_rebinds_a_user_app_with_its_own_db_path(demo: Cli, fixture_app: str) -> None:
    """The fixture app names the real database; a live logout must still write only to the snapshot."""
    code, data = check_json(demo, "POST", "/logout", "--as", "rahul", "--app", fixture_app, "--live")
    assert code == 0 and data["live"]["status"] == 200 and data["live"]["body"]["access_token_revoked"] is True
    with Store.open(demo.db) as store:
        assert store.conn.execute("SELECT count(*) FROM revoked_tokens").fetchone()[0] == 0


# --------------------------------------------------------------------------- matrix


def test_matrix_offline_json(demo: Cli) -> None:
    result = demo("matrix", "--users", "rahul,suman", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["users"] == ["rahul", "suman", "anonymous"]
    cell = {(c["method"], c["route"], c["user"]): c for c in data["cells"]}
    assert cell[("DELETE", "/student/{id}", "rahul")]["decision"] == 403
    assert cell[("DELETE", "/student/{id}", "suman")]["decision"] == 200
    assert cell[("DELETE", "/student/{id}", "anonymous")]["decision"] == 401
    assert cell[("GET", "/health", "anonymous")]["decision"] == 200
    assert all(c["live"] is None for c in data["cells"])


BODY_ROUTES = {"POST /token", "POST /token/refresh", "POST /courses"}  # the matrix sends no request body


def test_matrix_live_agrees_everywhere_on_the_demo(demo: Cli) -> None:
    result = demo("matrix", "--live", "--param", "id=2", "--json")
    assert result.exit_code == 0, result.stderr
    cells = json.loads(result.stdout)["cells"]
    sent = [c for c in cells if c["live"] is not None]
    assert sent and all(c["agrees"] is True for c in sent)
    assert {f"{c['method']} {c['route']}" for c in cells if c["live"] is None} == BODY_ROUTES
    assert {c["user"] for c in cells} == {"suman", "rahul", "priya", "anonymous"}


def test_matrix_live_on_a_proven_snapshot_sends_mutating_cells(demo: Cli) -> None:
    """The bundled app runs on a snapshot: DELETE and POST /logout are sent without --unsafe, as check --live does."""
    result = demo("matrix", "--live", "--users", "suman", "--param", "id=3", "--json")
    assert result.exit_code == 0, result.stderr
    cells = {(c["method"], c["route"], c["user"]): c for c in json.loads(result.stdout)["cells"]}
    assert cells[("DELETE", "/student/{id}", "suman")]["live"] == 200
    assert cells[("POST", "/logout", "suman")]["live"] == 200
    assert cells[("POST", "/courses", "suman")]["not_sent"].startswith("the route needs a request body")
    assert cells[("POST", "/courses", "suman")]["outcome"] == "not_sent"
    assert "snapshot copy of the database" in result.stderr
    with Store.open(demo.db) as store:
        assert store.conn.execute("SELECT deleted FROM demo_students WHERE id = 3").fetchone()[0] == 0


def test_matrix_flags_unprotected_routes_and_csv(demo: Cli, fixture_app: str) -> None:
    result = demo("matrix", "--app", fixture_app, "--users", "rahul", "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("method,route,path,user")
    assert any(line.startswith("GET,/reports,/reports,rahul,nothing (open?),True,200") for line in lines)
    assert "open? GET /reports" in result.stderr


def test_matrix_expectations_turn_it_into_a_test(demo: Cli, tmp_path: Path) -> None:
    expect = tmp_path / "expect.toml"
    expect.write_text(textwrap.dedent('''
        ["DELETE /student/{id}"]
        rahul = 403
        suman = "allow"
        anonymous = 401
    '''))
    assert demo("matrix", "--expect", str(expect), "--users", "rahul,suman").exit_code == 0
    expect.write_text('["DELETE /student/{id}"]\nrahul = "allow"\n')
    failing = demo("matrix", "--expect", str(expect), "--users", "rahul", "--format", "junit")
    assert failing.exit_code == 6
    assert 'failures="1"' in failing.stdout and "expected allowed, got forbidden" in failing.stdout
    assert "1 unmet expectation" in failing.stderr
    expect.write_text('["DELETE /student/{id}"]\nrahul = "maybe"\n')
    bad = demo("matrix", "--expect", str(expect))
    assert bad.exit_code == 1 and "expected allow, 401, 403" in bad.stderr


def test_foreign_app_routes_from_openapi_observed_only(demo: Cli) -> None:
    """An app without authctl's integration: routes from its OpenAPI, cells observed, expectations checked."""
    from fastapi import FastAPI, Header, HTTPException

    from authctl import matrix, openapi

    foreign = FastAPI()

    @foreign.get("/items/{item_id}")
    async def item(item_id: int, authorization: str | None = Header(default=None)):
        if not authorization:
            raise HTTPException(401, "who are you?", headers={"WWW-Authenticate": "Bearer"})
        return {"item": item_id}

    with Store.open(demo.db) as store:
        cells = matrix.spec_cells(store, openapi.operations(foreign.openapi()), ["rahul", "anonymous"], {})
    assert [(c.route.method, c.route.path) for c in cells] == [("GET", "/items/1")] * 2
    matrix.attach_live(cells, app=foreign)
    assert [(c.user, c.live_status, c.decision) for c in cells] == [("rahul", 200, None), ("anonymous", 401, None)]
    matrix.apply_expectations(cells, {("GET", "/items/{item_id}"): {"anonymous": matrix.Outcome.ALLOWED}})
    assert [c.failed for c in cells] == [False, True]


# --------------------------------------------------------------------------- probe


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app):
    """An ASGI app on a real loopback port, in a thread; stopped on exit."""
    import uvicorn

    port = _closed_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(demo: Cli):
    """The bundled app on a real loopback port."""
    from authctl.app import create_app

    with serving(create_app(demo.db)) as url:
        yield url


def test_matrix_openapi_observes_a_foreign_server_against_expectations(demo: Cli, tmp_path: Path) -> None:
    from fastapi import FastAPI, Header, HTTPException

    foreign = FastAPI()

    @foreign.get("/reports/{report_id}")
    async def report(report_id: int, authorization: str | None = Header(default=None)):
        if not authorization:
            raise HTTPException(401, "who are you?", headers={"WWW-Authenticate": "Bearer"})
        return {"report": report_id}

    @foreign.delete("/reports/{report_id}")
    async def remove(report_id: int):
        return {"deleted": report_id}

    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /reports/{report_id}"]\nrahul = "allow"\nanonymous = 401\n')
    with serving(foreign) as url:
        result = demo("matrix", "--url", url, "--openapi", "--users", "rahul", "--expect", str(expect), "--json")
        assert result.exit_code == 0, result.stderr
        cells = {(c["method"], c["user"]): c for c in json.loads(result.stdout)["cells"]}
        assert cells[("GET", "rahul")]["live"] == 200 and cells[("GET", "anonymous")]["live"] == 401
        assert cells[("GET", "rahul")]["decision"] is None and cells[("GET", "rahul")]["path"] == "/reports/1"
        assert cells[("DELETE", "rahul")]["live"] is None  # mutating: not sent without --unsafe
        expect.write_text('["GET /reports/{report_id}"]\nanonymous = "allow"\n')
        failing = demo("matrix", "--url", url, "--openapi", "--users", "rahul", "--expect", str(expect))
        assert failing.exit_code == 6 and "1 unmet expectation" in failing.stderr
    assert demo("matrix", "--openapi").exit_code == 2


def test_probe_whoami_and_a_forbidden_request(demo: Cli, server: str) -> None:
    result = demo("probe", "DELETE", "/student/3", "--as", "rahul", "--url", server, "--unsafe", "--json")
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert data["whoami"]["status"] == 200 and data["whoami"]["body"]["user"]["username"] == "rahul"
    assert data["request"]["status"] == 403 and data["request"]["outcome"] == "forbidden"
    assert data["request"]["lints"] == []
    human = demo("probe", "--as", "suman", "--url", server)
    assert human.exit_code == 0 and "suman" in human.stdout and "students:delete" in human.stdout


def test_check_url_compares_with_a_running_server(demo: Cli, server: str) -> None:
    code, data = check_json(demo, "GET", "/students", "--as", "rahul", "--url", server)
    assert code == 4 and data["live"]["status"] == 403 and data["live"]["agrees"] is True
    assert data["live"]["source"] == server
    code, data = check_json(demo, "DELETE", "/student/3", "--as", "suman", "--url", server, "--unsafe")
    assert code == 0 and data["live"]["status"] == 200


def test_probe_anonymous_gets_401_with_www_authenticate(demo: Cli, server: str) -> None:
    result = demo("probe", "GET", "/profile", "--url", server, "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["request"]["headers"]["www-authenticate"].startswith("Bearer")


def test_probe_refuses_cleartext_tokens_to_other_hosts_and_reports_refusals(demo: Cli) -> None:
    remote = demo("probe", "--as", "rahul", "--url", "http://192.0.2.10:8000")
    assert remote.exit_code == 1 and "--insecure-transport" in remote.stderr
    refused = demo("probe", "--as", "rahul", "--url", f"http://127.0.0.1:{_closed_port()}")
    assert refused.exit_code == 1 and "connection refused" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert demo("probe", "DELETE", "/student/3", "--as", "rahul", "--url", "http://127.0.0.1:1").exit_code == 1


def test_probe_never_sends_a_token_to_a_host_named_in_the_path(demo: Cli, server: str) -> None:
    for args in (
        ("probe", "GET", "http://192.0.2.2:9/steal", "--as", "suman", "--url", server),
        ("probe", "GET", "//192.0.2.2:9/steal", "--as", "suman", "--url", server),
        ("probe", "--as", "suman", "--url", server, "--whoami-path", "http://192.0.2.2:9/whoami"),
    ):
        result = demo(*args)
        assert result.exit_code == 1 and "is not a path on the server" in result.stderr, args
    from authctl import matrix

    route = matrix.Route("GET", "http://192.0.2.2:9/x", "http://192.0.2.2:9/x", "secured (per OpenAPI)")
    with pytest.raises(Exception, match="not a path on the server"):
        matrix.attach_live([matrix.Cell(route, "suman", token="secret")], url=server)


def test_status_code_lints() -> None:
    from authctl.probe import lint

    assert "WWW-Authenticate" in lint(401, {}, {"detail": "x"}, sent_credentials=True)[0]
    assert "403 for a request with no credentials" in lint(403, {}, {}, sent_credentials=False)[0]
    assert "400 for an inactive user" in lint(400, {}, {"detail": "Inactive user"}, sent_credentials=True)[0]
    assert lint(403, {}, {}, sent_credentials=True) == []


# --------------------------------------------------------------------------- demo


def test_demo_end_to_end_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = Cli(tmp_path / "unused.db")("demo", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    statuses = [(s["verdict"]["status"], s["live"]["status"]) for s in data["steps"]]
    assert statuses == [(401, 401), (403, 403), (200, 200)]
    assert data["token"]["valid"] is True
    sent = [cell for cell in data["matrix"]["cells"] if cell["live"] is not None]
    assert sent and all(cell["agrees"] for cell in sent)
    assert {f"{c['method']} {c['route']}" for c in data["matrix"]["cells"] if c["live"] is None} == BODY_ROUTES
    assert list(tmp_path.iterdir()) == []


def test_demo_human_output_and_keep(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = Cli(tmp_path / "unused.db")("demo", "--keep", str(keep))
    assert result.exit_code == 0
    for needle in ("401 UNAUTHENTICATED", "403 FORBIDDEN", "ALLOWED", "authctl check", "--app yourpackage.main:app"):
        assert needle in result.stdout
    with Store.open(keep / "authctl.db") as store:
        assert [u.username for u in store.list_users()] == ["priya", "rahul", "suman"]


def test_perm_list_names_the_routes_that_need_each_permission(demo: Cli) -> None:
    data = {p["permission"]: p for p in json.loads(demo("perm", "list", "--routes", "--json").stdout)}
    assert data["students:read"]["routes"] == ["GET /students", "GET /students/{id}"]
    assert data["students:delete"] == {"permission": "students:delete", "roles": ["admin"], "routes": ["DELETE /student/{id}"]}
    plain = json.loads(demo("perm", "list", "--json").stdout)
    assert all("routes" not in p for p in plain)


OVERRIDES_APP = '''
from fastapi import Depends, FastAPI
from authctl.fastapi import Auth

auth = Auth(db="{db}", settings={{"audience": "other-api"}})
app = FastAPI()

@app.get("/grades", dependencies=[Depends(auth.current_user)])
async def grades():
    return {{"grades": []}}
'''


def test_an_apps_own_settings_bind_the_server_and_the_offline_decision(demo: Cli, tmp_path: Path, monkeypatch) -> None:
    """Auth(settings={"audience": ...}): tokens for another audience are refused, offline and live alike."""
    name = f"overridesapp_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(OVERRIDES_APP.format(db=demo.db))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        default_audience = demo("token", "issue", "--as", "rahul").stdout.strip()
        code, data = check_json(demo, "GET", "/grades", "--token", default_audience, "--app", f"{name}:app", "--live")
        assert code == 3 and data["live"]["status"] == 401 and data["live"]["agrees"] is True
        assert any(c["name"] == "aud" and c["ok"] is False for c in data["authentication"]["checks"])
        code, data = check_json(demo, "GET", "/grades", "--as", "rahul", "--app", f"{name}:app", "--live")
        assert code == 0 and data["live"]["status"] == 200  # minted as the app's own /token would
    finally:
        sys.modules.pop(name, None)
