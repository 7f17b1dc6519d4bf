"""The FastAPI integration through httpx.ASGITransport: 401 vs 403, login, refresh, logout."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import Request
from tests.apphelpers import PASSWORD, Client, issue, make_demo_db

from authctl import tokens
from authctl.app import create_app
from authctl.fastapi import Auth, public, requirement_of
from authctl.policy import AUTHENTICATED, PUBLIC, permission
from authctl.store import Store

PROTECTED = [
    ("GET", "/profile"), ("GET", "/students"), ("GET", "/students/2"), ("DELETE", "/student/3"),
    ("POST", "/courses"), ("GET", "/admin/dashboard"), ("GET", "/whoami"), ("POST", "/logout"),
]


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def app(demo_db, sleeps):
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    app = create_app(demo_db, backoff_base=0.01, backoff_max=0.04, sleep=record)
    yield app
    app.state.auth.close()


@pytest.fixture
def client(app):
    client = Client(app)
    yield client
    client.close()


@pytest.fixture
def admin(demo_db):
    """A second connection, as `authctl` on the command line would have."""
    with Store.open(demo_db) as store:
        yield store


def _body(method: str) -> dict:
    return {"json": {"title": "New course"}} if method == "POST" else {}


# --------------------------------------------------------------------------- 401


@pytest.mark.parametrize("method,path", PROTECTED)
def test_anonymous_gets_401_with_bearer_challenge(client, method, path):
    response = client.request(method, path, **_body(method))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not authenticated" in response.json()["detail"]


@pytest.mark.parametrize("method,path", PROTECTED)
def test_bad_token_gets_401_invalid_token(client, method, path):
    response = client.request(method, path, token="not.a.token", **_body(method))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "not.a.token" not in response.text


def test_non_bearer_authorization_is_no_credentials(client):
    response = client.get("/profile", headers={"Authorization": f"Basic cmFodWw6{PASSWORD}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_token_is_401(client, admin):
    token = issue(admin, "rahul", expired=True)
    response = client.get("/profile", token=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "expire" in response.json()["detail"]


def test_revoked_token_is_401_on_the_next_request(client, admin):
    token = issue(admin, "rahul")
    assert client.get("/profile", token=token).status_code == 200
    tokens.revoke(admin, token, reason="test")
    response = client.get("/profile", token=token)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_refresh_token_cannot_stand_in_for_an_access_token(client, admin):
    refresh = issue(admin, "rahul", refresh=True)
    assert client.get("/profile", token=refresh).status_code == 401


def test_disabled_user_takes_effect_on_the_next_request(client, admin):
    token = issue(admin, "suman")
    assert client.delete("/student/3", token=token).status_code == 200
    admin.set_disabled("suman", True)
    response = client.delete("/student/3", token=token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    admin.set_disabled("suman", False)
    assert client.delete("/student/3", token=token).status_code == 200


def test_revoked_role_takes_effect_on_the_next_request(client, admin):
    token = issue(admin, "priya")
    assert client.get("/students", token=token).status_code == 200
    admin.unassign("priya", ["instructor"])
    response = client.get("/students", token=token)
    assert response.status_code == 403
    assert "students:read" in response.json()["detail"]
    admin.assign("priya", ["instructor"])
    assert client.get("/students", token=token).status_code == 200


def test_revoked_grant_takes_effect_on_the_next_request(client, admin):
    token = issue(admin, "suman")
    assert client.get("/admin/dashboard", token=token).status_code == 200
    admin.revoke("admin", ["admin:access"])
    assert client.get("/admin/dashboard", token=token).status_code == 403


def test_logout_everywhere_ends_tokens_on_the_next_request(client, admin):
    token = issue(admin, "rahul")
    assert client.get("/profile", token=token).status_code == 200
    admin.bump_token_version("rahul")
    assert client.get("/profile", token=token).status_code == 401


def test_token_in_the_query_string_is_ignored(client, admin):
    token = issue(admin, "suman")
    for name in ("access_token", "token", "authorization"):
        response = client.get(f"/profile?{name}={token}")
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/profile", token=token).status_code == 200


# --------------------------------------------------------------------------- 403 and allowed


def test_student_rahul(client, admin):
    token = issue(admin, "rahul")
    assert client.get("/profile", token=token).json()["username"] == "rahul"
    assert client.get("/students/2", token=token).json()["name"] == "Rahul"  # his own record
    for method, path, needed in [
        ("GET", "/students", "students:read"), ("GET", "/students/3", "students:read"),
        ("DELETE", "/student/3", "students:delete"), ("POST", "/courses", "courses:write"),
        ("GET", "/admin/dashboard", "admin:access"),
    ]:
        response = client.request(method, path, token=token, **_body(method))
        assert response.status_code == 403, (method, path)
        assert response.json() == {"detail": f"forbidden: requires {needed}"}
        assert "www-authenticate" not in response.headers


def test_instructor_priya(client, admin):
    token = issue(admin, "priya")
    assert client.get("/students", token=token).status_code == 200
    assert client.get("/students/3", token=token).status_code == 200
    created = client.post("/courses", token=token, json={"title": "JWT in practice"})
    assert created.status_code == 201
    assert created.json()["instructor"] == "priya"
    assert any(c["title"] == "JWT in practice" for c in client.get("/courses").json())
    assert client.delete("/student/3", token=token).status_code == 403
    assert client.get("/admin/dashboard", token=token).status_code == 403


def test_admin_suman(client, admin):
    token = issue(admin, "suman")
    assert client.get("/students", token=token).status_code == 200
    assert client.get("/students/2", token=token).status_code == 200
    assert client.post("/courses", token=token, json={"title": "Admin course"}).status_code == 201
    dashboard = client.get("/admin/dashboard", token=token).json()
    assert dashboard["users"] == 3 and dashboard["students"] == 4
    response = client.delete("/student/3", token=token)
    assert response.status_code == 200
    assert response.json() == {"message": "Student 3 deleted"}
    assert client.delete("/student/3", token=token).status_code == 200  # idempotent
    assert client.get("/students/3", token=token).status_code == 404
    assert client.delete("/student/999", token=token).status_code == 404


def test_public_routes_need_no_token_and_ignore_a_bad_one(client):
    for path in ("/health", "/courses", "/.well-known/jwks.json"):
        assert client.get(path).status_code == 200
        assert client.get(path, token="garbage").status_code == 200


def test_hide_forbidden_detail(client, admin):
    admin.set_setting("hide_forbidden_detail", "true")
    response = client.delete("/student/3", token=issue(admin, "rahul"))
    assert response.status_code == 403
    assert response.json() == {"detail": "forbidden"}


def test_require_any_and_owner(demo_db, admin):
    from fastapi import Depends, FastAPI

    auth = Auth(db=demo_db)
    app = FastAPI()

    @app.get("/either", dependencies=[Depends(auth.require_any("students:delete", "courses:write"))])
    async def either() -> dict:
        return {"ok": True}

    @app.get("/mine/{user_id}", dependencies=[Depends(auth.require("admin:access", owner_param="user_id"))])
    async def mine(user_id: str) -> dict:
        return {"ok": True}

    client = Client(app)
    try:
        assert client.get("/either", token=issue(admin, "priya")).status_code == 200
        denied = client.get("/either", token=issue(admin, "rahul"))
        assert denied.status_code == 403
        assert denied.json()["detail"] == "forbidden: requires one of students:delete, courses:write"
        rahul = issue(admin, "rahul")
        assert client.get("/mine/2", token=rahul).status_code == 200
        assert client.get("/mine/1", token=rahul).status_code == 403
    finally:
        client.close()
        auth.close()


def test_your_own_app_with_the_router_under_a_prefix(demo_db, admin):
    from fastapi import Depends, FastAPI

    auth = Auth(db=demo_db, prefix="/auth")
    app = FastAPI()
    app.include_router(auth.router)

    @app.delete("/student/{id}")
    async def delete_student(id: int, user=Depends(auth.require("students:delete"))) -> dict:
        return {"message": f"Student {id} deleted by {user.username}"}

    client = Client(app)
    try:
        login = client.post("/auth/token", data={"username": "suman", "password": PASSWORD})
        assert login.status_code == 200
        token = login.json()["access_token"]
        assert client.delete("/student/3", token=token).json() == {"message": "Student 3 deleted by suman"}
        assert client.get("/auth/whoami", token=token).json()["user"]["username"] == "suman"
        assert client.get("/auth/.well-known/jwks.json").status_code == 200
        assert client.delete("/student/3", token=issue(admin, "rahul")).status_code == 403
        spec = client.get("/openapi.json").json()
        (scheme,) = spec["components"]["securitySchemes"].values()
        assert scheme["flows"]["password"]["tokenUrl"] == "auth/token"
    finally:
        client.close()
        auth.close()


def test_current_user_and_require_authenticate_once(demo_db, admin, monkeypatch):
    from fastapi import Depends, FastAPI

    from authctl import policy

    calls = []
    real = policy.authenticate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(policy, "authenticate", counting)
    auth = Auth(db=demo_db)
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(auth.require("students:read"))])
    async def x(user=Depends(auth.current_user), identity=Depends(auth.identity)) -> dict:
        return {"user": user.username, "jti": identity.jti}

    client = Client(app)
    try:
        response = client.get("/x", token=issue(admin, "priya"))
        assert response.status_code == 200 and response.json()["user"] == "priya"
        assert len(calls) == 1
    finally:
        client.close()
        auth.close()


def test_dependencies_carry_their_requirement(demo_db):
    auth = Auth(db=demo_db)
    assert requirement_of(auth.current_user) == AUTHENTICATED
    assert requirement_of(auth.public) == PUBLIC and auth.public is public
    assert requirement_of(auth.require("students:delete")) == permission("students:delete")
    assert requirement_of(auth.require("students:read", owner_param="id")).owner_param == "id"
    assert requirement_of(auth.require_any("a:b", "c:d")).mode == "any"
    assert auth.require("students:delete") is auth.require("students:delete")  # cached per requirement


def test_database_unavailable_is_503_not_500(tmp_path, cli):
    make_demo_db(cli)
    with Store.open(cli.db) as store:
        token = issue(store, "rahul")
    app = create_app(tmp_path / "missing.db")
    client = Client(app)
    try:
        response = client.get("/profile", token=token)
        assert response.status_code == 503
        assert token not in response.text
    finally:
        client.close()


# --------------------------------------------------------------------------- errors, docs


def test_unexpected_error_is_a_generic_500_echoing_nothing(app, admin):
    token = issue(admin, "suman")

    @app.get("/boom")
    async def boom(request: Request) -> dict:
        raise RuntimeError(f"failed with {request.headers['authorization']} and {request.headers['x-secret']}")

    client = Client(app, raise_app_exceptions=False)
    try:
        response = client.get("/boom", token=token, headers={"X-Secret": "s3cr3t-header"})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal server error"}
        assert token not in response.text and "s3cr3t" not in response.text
        assert not any(token in value or "s3cr3t" in value for value in response.headers.values())
    finally:
        client.close()


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    hosts = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", html)
    assert hosts == [], hosts
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html):
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert '"validatorUrl": null' in html
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_openapi_has_the_password_flow_for_swaggers_authorize_button(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    (scheme,) = schemes.values()
    assert scheme["type"] == "oauth2" and scheme["flows"]["password"]["tokenUrl"] == "token"
    assert "security" in spec["paths"]["/student/{id}"]["delete"]
    assert "security" not in spec["paths"]["/health"]["get"]


# --------------------------------------------------------------------------- router: whoami, jwks


def test_whoami_is_the_servers_view(client, admin):
    token = issue(admin, "suman")
    body = client.get("/whoami", token=token).json()
    assert body["user"]["username"] == "suman" and body["user"]["id"] == 1
    assert {r["role"] for r in body["roles"]} == {"admin", "instructor", "student"}
    assert body["direct_roles"] == ["admin"]
    permissions = {p["permission"]: p["granted_by"] for p in body["permissions"]}
    assert permissions["students:delete"] == "admin" and permissions["students:read"] == "instructor"
    facts = body["token"]
    assert facts["type"] == "access" and facts["kid"] and facts["jti"] and facts["expires_in"] > 0
    assert token not in str(body)


def test_jwks_publishes_public_keys_only(client):
    response = client.get("/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert keys and all("d" not in key and "k" not in key for key in keys)
    assert "max-age" in response.headers["cache-control"]


# --------------------------------------------------------------------------- login


def test_login_returns_tokens_with_no_store(client):
    response = client.login("suman")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0 and body["refresh_expires_in"] > 0
    assert client.get("/profile", token=body["access_token"]).json()["username"] == "suman"
    assert client.get("/profile", token=body["refresh_token"]).status_code == 401


def test_login_is_case_insensitive_and_records_last_login(client, admin):
    assert client.login("SUMAN").status_code == 200
    assert admin.get_user("suman").last_login_at is not None


def test_login_failures_look_the_same(client, admin, monkeypatch):
    """Unknown user, wrong password, disabled and locked: same status, body and headers."""
    from authctl.passwords import Hasher

    admin.add_user("dora", Hasher().hash(PASSWORD), ["student"], disabled=True)
    admin.set_setting("lockout_threshold", "3")
    for _ in range(3):
        client.login("priya", "wrong-password-1")
    assert admin.login_failures("priya") == (3, True)

    dummy_calls = []
    real_dummy = Hasher.dummy_verify
    monkeypatch.setattr(Hasher, "dummy_verify", lambda self: (dummy_calls.append(1), real_dummy(self))[1])
    responses = {
        "unknown": client.login("nobody-here"),
        "wrong": client.login("rahul", "wrong-password-1"),
        "disabled": client.login("dora"),
        "locked": client.login("priya"),  # the right password, but locked
    }
    assert dummy_calls == [1]  # only the unknown user had no hash to verify
    shapes = {
        name: (r.status_code, r.content, r.headers.get("www-authenticate"), r.headers.get("cache-control"))
        for name, r in responses.items()
    }
    assert len(set(shapes.values())) == 1, shapes
    assert responses["unknown"].status_code == 401
    assert responses["unknown"].json() == {"detail": "incorrect username or password"}


def test_failure_counter_is_atomic_under_50_parallel_logins(app, admin):
    before = admin.login_failures("rahul")[0]

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*[
                client.post("/token", data={"username": "rahul", "password": f"wrong-{i}"}) for i in range(50)
            ])
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert statuses == [401] * 50
    assert admin.login_failures("rahul")[0] == before + 50


def test_unknown_usernames_are_counted_and_locked_too(client, admin):
    admin.set_setting("lockout_threshold", "4")
    for _ in range(4):
        client.login("Ghost", "whatever-password")
    assert admin.login_failures("ghost") == (4, True)


def test_backoff_after_five_failures_grows_and_is_capped(client, sleeps):
    for _ in range(5):
        client.login("rahul", "wrong-password-1")
    assert sleeps == []
    for _ in range(4):
        client.login("rahul", "wrong-password-1")
    assert sleeps == [0.01, 0.02, 0.04, 0.04]


def test_backoff_uses_asyncio_sleep_by_default(demo_db):
    auth = Auth(db=demo_db)
    assert auth.sessions.sleep is asyncio.sleep
    assert auth.login_delay(4) == 0 and auth.login_delay(5) == 0.25 and auth.login_delay(100) == 8.0


def test_lockout_and_unlock(client, admin, cli):
    admin.set_setting("lockout_threshold", "3")
    for _ in range(3):
        assert client.login("rahul", "wrong-password-1").status_code == 401
    assert client.login("rahul").status_code == 401  # locked: even the right password fails
    result = cli("user", "unlock", "rahul")
    assert result.exit_code == 0, result.stderr
    assert client.login("rahul").status_code == 200
    assert admin.login_failures("rahul") == (0, False)


def test_success_clears_failures(client, admin):
    client.login("rahul", "wrong-password-1")
    assert admin.login_failures("rahul")[0] == 1
    assert client.login("rahul").status_code == 200
    assert admin.login_failures("rahul") == (0, False)


def test_login_upgrades_an_outdated_hash(client, admin):
    import bcrypt

    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    admin.add_user("old-timer", legacy, ["student"])
    assert client.login("old-timer").status_code == 200
    upgraded = admin.get_user("old-timer").password_hash
    assert upgraded.startswith("$argon2id$")
    assert client.login("old-timer").status_code == 200  # and the new hash works


def test_health_answers_while_logins_hash(app):
    """Hashing runs in worker threads: the event loop keeps serving during a burst of logins."""

    async def scenario() -> tuple[int, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            logins = [
                asyncio.ensure_future(client.post("/token", data={"username": "suman", "password": PASSWORD}))
                for _ in range(12)
            ]
            await asyncio.sleep(0.01)
            health = await client.get("/health")
            pending = not all(task.done() for task in logins)
            results = await asyncio.gather(*logins)
        assert all(r.status_code == 200 for r in results)
        return health.status_code, pending

    status, logins_still_pending = asyncio.run(scenario())
    assert status == 200
    assert logins_still_pending


def test_overlong_password_is_a_plain_failure(client):
    assert client.login("rahul", "x" * 5000).status_code == 401


# --------------------------------------------------------------------------- refresh, logout


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    first = client.login("rahul").json()
    rotated = client.post("/token/refresh", data={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/profile", token=second["access_token"]).status_code == 200

    reused = client.post("/token/refresh", data={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "reuse" in reused.json()["detail"]
    # the thief's rotation and the victim's both end: the whole family is revoked,
    # access tokens issued with it included
    assert client.post("/token/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/profile", token=first["access_token"]).status_code == 401
    assert client.get("/profile", token=second["access_token"]).status_code == 401
    assert client.get("/profile", token=client.login("rahul").json()["access_token"]).status_code == 200


def test_refresh_accepts_json_and_rejects_access_tokens(client):
    first = client.login("rahul").json()
    assert client.post("/token/refresh", json={"refresh_token": first["access_token"]}).status_code == 401
    assert client.post("/token/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 200
    assert client.post("/token/refresh", json={}).status_code == 400
    assert client.post(f"/token/refresh?refresh_token={first['refresh_token']}").status_code == 400


def test_refresh_token_issued_by_the_cli_starts_a_family(client, admin):
    refresh = issue(admin, "rahul", refresh=True)
    assert client.post("/token/refresh", data={"refresh_token": refresh}).status_code == 200
    assert client.post("/token/refresh", data={"refresh_token": refresh}).status_code == 401


def test_logout_revokes_the_access_token_and_the_refresh_family(client):
    pair = client.login("rahul").json()
    response = client.post("/logout", token=pair["access_token"], data={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 200
    assert response.json()["refresh_family_revoked"] is True
    assert client.get("/profile", token=pair["access_token"]).status_code == 401
    assert client.post("/token/refresh", data={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_logout_without_refresh_token(client):
    pair = client.login("rahul").json()
    response = client.post("/logout", token=pair["access_token"])
    assert response.status_code == 200 and response.json()["refresh_family_revoked"] is False
    assert client.get("/profile", token=pair["access_token"]).status_code == 401


@pytest.mark.parametrize("username,spellings", [
    ("rahul", ["\uff32\uff21\uff28\uff35\uff2c", "RAHUL", "Rahul", "r\uff41hul"]),  # fullwidth, case, mixed
    ("kiran", ["\u212aIRAN", "\u212airan", "\uff4biran", "KIRAN"]),  # Kelvin sign, fullwidth k
])
def test_look_alike_usernames_count_towards_one_lockout(client, admin, username, spellings):
    """Failures under any compatibility-caseless spelling lock the one account, so look-alikes can't dodge the threshold."""
    from authctl.passwords import Hasher

    if admin.find_user(username) is None:
        admin.add_user(username, Hasher().hash(PASSWORD), ["student"])
    assert client.login(spellings[0]).status_code == 200  # the look-alike is this account, not another name
    admin.set_setting("lockout_threshold", str(len(spellings)))
    for spelling in spellings:
        assert client.login(spelling, "wrong-password-1").status_code == 401
    assert admin.login_failures(username) == (len(spellings), True)
    assert client.login(username).status_code == 401  # locked: even the right password fails
    assert client.login(spellings[0]).status_code == 401


# --------------------------------------------------------------------------- malformed requests: 400 invalid_request


@pytest.mark.parametrize("method,path", [("DELETE", "/student/3"), ("GET", "/whoami")])
def test_two_authorization_headers_are_an_invalid_request(client, admin, method, path):
    """RFC 6750 §3.1 / RFC 9110 §5.3: neither header silently wins, in either order."""
    suman, rahul = issue(admin, "suman"), issue(admin, "rahul")
    for first, second in ((rahul, suman), (suman, rahul)):
        headers = [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]
        response = client.request(method, path, headers=headers)
        assert response.status_code == 400, response.text
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_request"'
        assert first not in response.text and second not in response.text
    assert client.request(method, path, token=suman).status_code == 200  # one header: as before


def test_repeated_token_parameters_are_an_invalid_request(client):
    """RFC 6749 §3.2: `username=suman&username=rahul` is refused, not decided by the last one."""
    for data in ({"username": ["rahul", "suman"], "password": PASSWORD},
                 {"username": "suman", "password": [PASSWORD, PASSWORD]}):
        response = client.post("/token", data=data)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "invalid_request" and "more than once" in body["error_description"]
        assert "access_token" not in body and response.headers["cache-control"] == "no-store"
    assert client.login("suman").status_code == 200


def test_repeated_refresh_token_parameters_are_an_invalid_request(client):
    tokens_ = client.login("suman").json()
    refresh = tokens_["refresh_token"]
    form = client.post("/token/refresh", data={"refresh_token": [refresh, refresh]})
    as_json = client.post("/token/refresh", content=f'{{"refresh_token": "{refresh}", "refresh_token": "x"}}',
                          headers={"content-type": "application/json"})
    for response in (form, as_json):
        assert response.status_code == 400 and "more than once" in response.json()["detail"]
    assert client.post("/token/refresh", data={"refresh_token": refresh}).status_code == 200  # not used up


def test_use_store_none_goes_back_to_the_store_the_auth_was_given(demo_db, tmp_path):
    """A live check rebinds an app's Auth to a snapshot and back: an ``Auth(store=...)`` returns to
    that very store, never to whatever ``AUTHCTL_DB`` or ./authctl.db would open."""
    with Store.open(demo_db) as own, Store.open(demo_db) as snapshot:
        auth = Auth(store=own)
        auth.use_store(snapshot)
        assert auth.store is snapshot
        auth.use_store(None)
        assert auth.store is own
        assert not (tmp_path / "authctl.db").exists()
