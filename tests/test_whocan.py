"""who-can (the reverse of check) and role graph, through the real CLI and database."""

from __future__ import annotations

import json

from authctl.policy import Outcome


def _who_can(cli, method: str, path: str) -> dict:
    result = cli("who-can", method, path, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_who_can_names_each_allowed_user_with_the_role_that_grants_it(seeded) -> None:
    data = _who_can(seeded, "delete", "/student/3")
    by_user = {entry["username"]: entry for entry in data["users"]}
    assert by_user["suman"]["outcome"] == "allowed" and by_user["suman"]["via"] == ["admin"]
    assert by_user["rahul"]["outcome"] == "forbidden" and by_user["rahul"]["via"] == []
    assert data["anonymous"] == "unauthenticated"
    assert data["roles"] == ["admin"]  # student does not inherit students:delete
    assert (data["allowed"], data["total"]) == (1, 2)


def test_who_can_agrees_with_check_for_every_user(seeded) -> None:
    """One decision engine: each user's who-can outcome is the exit code check gives as that user."""
    assert seeded("user", "add", "priya", "--role", "student", "--generate").exit_code == 0
    assert seeded("user", "disable", "priya").exit_code == 0
    for method, path in (("DELETE", "/student/3"), ("GET", "/students"), ("GET", "/health")):
        data = _who_can(seeded, method, path)
        assert data["total"] == 3
        for entry in data["users"]:
            checked = seeded("check", method, path, "--as", entry["username"])
            assert Outcome(entry["outcome"]).exit_code == checked.exit_code, (method, path, entry)
    priya = next(e for e in _who_can(seeded, "GET", "/students")["users"] if e["username"] == "priya")
    assert priya["outcome"] == "unauthenticated"  # a disabled account is a 401, whatever its roles


def test_who_can_text_report_lists_allowed_users_and_refusals(seeded) -> None:
    result = seeded("who-can", "DELETE", "/student/3")
    assert result.exit_code == 0, result.stderr
    assert "suman" in result.stdout and "admin" in result.stdout
    assert "1 of 2 users allowed" in result.stdout
    assert "refused (403 Forbidden): 1" in result.stdout


def test_who_can_on_no_route_exits_5(seeded) -> None:
    result = seeded("who-can", "GET", "/nowhere")
    assert result.exit_code == 5
    assert result.stdout == ""


def test_role_graph_formats_show_inheritance_and_grants(seeded) -> None:
    mermaid = seeded("role", "graph", "--format", "mermaid")
    assert mermaid.exit_code == 0, mermaid.stderr
    lines = mermaid.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    node = {line.split("[", 1)[1]: line.split("[", 1)[0].strip() for line in lines if "[" in line}
    admin = next(v for k, v in node.items() if "<b>admin</b>" in k and "students:delete" in k)
    student = next(v for k, v in node.items() if "<b>student</b>" in k and "students:read" in k)
    assert f"  {admin} -->|inherits| {student}" in lines

    dot = seeded("role", "graph", "--format", "dot")
    assert '"admin" -> "student" [label="inherits"];' in dot.stdout
    assert dot.stdout.rstrip().endswith("}")

    data = json.loads(seeded("role", "graph", "--json").stdout)
    assert {"from": "admin", "to": "student", "kind": "inherits"} in data["edges"]
    assert {r["name"]: r["permissions"] for r in data["roles"]} == {"admin": ["students:delete"], "student": ["students:read"]}

    tree = seeded("role", "graph")
    assert tree.stdout.index("admin") < tree.stdout.index("inherits student") < tree.stdout.rindex("students:read")


def test_role_graph_refuses_an_unknown_format(seeded) -> None:
    result = seeded("role", "graph", "--format", "png")
    assert result.exit_code == 2


def test_who_can_does_not_list_roles_for_a_route_the_apps_own_code_decides(seeded) -> None:
    """A natively secured route (OAuth2 scopes) has no authctl requirement: roles are unknown, never every role."""
    assert seeded("role", "add", "viewer").exit_code == 0  # a role with no permissions at all
    app = "tests.nativeapps.oauth2_scopes:app"
    result = seeded("who-can", "GET", "/items", "--app", app, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["roles"] is None
    text = seeded("who-can", "GET", "/items", "--app", app)
    assert text.exit_code == 0, text.stderr
    assert "roles that allow it: decided by the app's code" in text.stdout
    assert "viewer" not in text.stdout
    open_route = json.loads(seeded("who-can", "GET", "/health", "--app", app, "--json").stdout)
    assert "viewer" in open_route["roles"]  # a route nothing secures allows every role
