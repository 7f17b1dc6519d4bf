"""The bundled demo app: seeding, `init --demo`, the lazy module-level app."""

from __future__ import annotations

import json

import pytest

import authctl.app
from authctl.app import create_app
from authctl.app.data import DEMO_USERS, seed_demo
from authctl.errors import Conflict, PasswordRejected
from authctl.passwords import Hasher
from authctl.store import Store
from tests.apphelpers import DEMO_PASSWORDS, PASSWORD, Client, issue


def test_seed_users_roles_and_ids(demo_db):
    with Store.open(demo_db) as store:
        users = {u.username: u for u in store.list_users()}
        assert (users["suman"].id, users["rahul"].id, users["priya"].id) == (1, 2, 3)
        assert users["suman"].roles == ("admin",) and users["rahul"].roles == ("student",)
        assert users["priya"].roles == ("instructor",)
        assert store.get_role("admin").inherits == ("instructor",)
        assert store.get_role("instructor").inherits == ("student",)
        assert set(store.access(users["suman"]).permissions) == {
            "students:read", "students:delete", "courses:write", "admin:access"}
        assert set(store.access(users["priya"]).permissions) == {"students:read", "courses:write"}
        assert store.access(users["rahul"]).permissions == {}


def test_seed_data_rahul_owns_record_2_and_student_3_exists(demo_db):
    app = create_app(demo_db)
    client = Client(app)
    try:
        with Store.open(demo_db) as store:
            token = issue(store, "suman")
        students = {s["id"]: s["name"] for s in client.get("/students", token=token).json()}
        assert students[2] == "Rahul" and 3 in students and 1 not in students
        assert len(client.get("/courses").json()) == 3
    finally:
        client.close()
        app.state.auth.close()


def test_seed_generates_passwords_shown_once(cli):
    assert cli("init").exit_code == 0
    with Store.open(cli.db) as store:
        created = seed_demo(store, {"rahul": PASSWORD})
        by_name = {u.username: u for u in created}
        assert by_name["rahul"].password is None  # given, so not echoed back
        generated = by_name["suman"].password
        assert generated and generated != by_name["priya"].password
        assert Hasher().verify(generated, store.get_user("suman").password_hash)[0]


def test_seed_rejects_a_weak_password_and_creates_nothing(cli):
    assert cli("init").exit_code == 0
    with Store.open(cli.db) as store:
        with pytest.raises(PasswordRejected):
            seed_demo(store, {"suman": "password"})
        assert store.user_count() == 0 and store.list_roles() == []


def test_seed_twice_is_a_conflict_and_changes_nothing(demo_db):
    with Store.open(demo_db) as store:
        with pytest.raises(Conflict):
            seed_demo(store, DEMO_PASSWORDS)
        assert store.user_count() == 3


def test_data_routes_without_demo_tables(cli):
    assert cli("init").exit_code == 0
    with Store.open(cli.db) as store:
        store.add_role("boss")
        store.grant("boss", ["students:read", "students:delete"])
        store.add_user("boss", Hasher().hash(PASSWORD), ["boss"])
        token = issue(store, "boss")
    app = create_app(cli.db)
    client = Client(app)
    try:
        assert client.get("/students", token=token).json() == []
        assert client.get("/courses").json() == []
        assert client.delete("/student/3", token=token).status_code == 404
    finally:
        client.close()
        app.state.auth.close()


# --------------------------------------------------------------------------- init --demo


def test_init_demo_prints_generated_passwords_once(cli):
    result = cli("init", "--demo")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == [name for name, _ in DEMO_USERS]
    assert [line[1] for line in lines] == [role for _, role in DEMO_USERS]
    with Store.open(cli.db) as store:
        for username, _, password in lines:
            assert Hasher().verify(password, store.get_user(username).password_hash)[0]


def test_init_demo_password_stdin(cli):
    result = cli("init", "--demo", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    with Store.open(cli.db) as store:
        for username, _ in DEMO_USERS:
            assert Hasher().verify(PASSWORD, store.get_user(username).password_hash)[0]


def test_init_demo_json(cli):
    result = cli("init", "--demo", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    users = data["demo"]["users"]
    assert [(u["username"], u["role"], u["user_id"]) for u in users] == [
        ("suman", "admin", 1), ("rahul", "student", 2), ("priya", "instructor", 3)]
    assert all(u["password"] for u in users)


def test_init_demo_weak_password_leaves_no_database(cli):
    result = cli("init", "--demo", "--password-stdin", input="password\n")
    assert result.exit_code == 1
    assert "password rejected" in result.stderr
    assert not cli.db.exists()


def test_password_stdin_needs_demo(cli):
    result = cli("init", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert "--demo" in result.stderr


# --------------------------------------------------------------------------- the module-level app


def test_module_app_is_built_lazily_from_authctl_db(demo_db, monkeypatch):
    monkeypatch.setenv("AUTHCTL_DB", str(demo_db))
    monkeypatch.setattr(authctl.app, "_app", None)
    app = authctl.app.app
    assert app is authctl.app.app  # built once
    client = Client(app)
    try:
        response = client.post("/token", data={"username": "rahul", "password": PASSWORD})
        assert response.status_code == 200
    finally:
        client.close()
        app.state.auth.close()
    with pytest.raises(AttributeError):
        authctl.app.no_such_thing  # noqa: B018
