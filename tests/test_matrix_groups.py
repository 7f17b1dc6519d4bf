"""`matrix --by role-set`: one column per group of users the engine cannot tell apart.

The grouping is sound only if one decision per group is every member's decision:
these tests decide every user separately and compare.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authctl import groups, matrix, routes
from authctl.store import Store
from tests.apphelpers import make_demo_db
from tests.conftest import Cli


@pytest.fixture
def crowd(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The demo plus 30 users in four role sets, one with no role, and a disabled student."""
    make_demo_db(cli)
    monkeypatch.setenv("AUTHCTL_DB", str(cli.db))  # the bundled app opens this database
    with Store.open(cli.db) as store:
        password_hash = store.get_user("rahul").password_hash
        records = []
        for i in range(30):
            roles = [["student"], ["instructor"], ["student", "instructor"], []][i % 4]
            records.append((f"crowd{i:02d}", password_hash, roles, False))
        records.append(("gone", password_hash, ["student"], True))
        store.add_users(records)
    return cli


def _per_user_and_grouped(db: Path, params: dict[str, str]):
    with Store.open(db) as store:
        users = [user.username for user in store.list_users()] + [matrix.ANONYMOUS]
        app = routes.load_app(None)
        per_user = matrix.offline_cells(store, app, users, params)
        result = groups.build(store, users=users, params=params)
    return users, per_user, result


def test_group_decisions_are_every_members_own_decision(crowd: Cli) -> None:
    with Store.open(crowd.db) as store:
        owner_id = store.get_user("crowd05").id  # {id} names crowd05: the owner rule allows only them
    users, per_user, result = _per_user_and_grouped(crowd.db, {"id": str(owner_id)})
    column_of = {member: group.name for group in result.groups for member in group.members}
    assert sorted(column_of) == sorted(users)  # every user is in exactly one column
    grouped = {(c.route.key, c.user): c.decision for c in result.cells}
    for cell in per_user:
        assert grouped[(cell.route.key, column_of[cell.user])] == cell.decision, (cell.route.key, cell.user)
    assert len(result.groups) < len(users) / 3  # and it did merge


def test_owner_and_disabled_users_are_never_merged(crowd: Cli) -> None:
    with Store.open(crowd.db) as store:
        owner_id = store.get_user("crowd05").id
    users, per_user, result = _per_user_and_grouped(crowd.db, {"id": str(owner_id)})
    by_name = {group.name: group for group in result.groups}
    owner = next(group for group in result.groups if "crowd05" in group.members)
    assert owner.members == ["crowd05"] and owner.owns and "owner" in owner.name
    disabled = next(group for group in result.groups if "gone" in group.members)
    assert disabled.members == ["gone"] and disabled.disabled and disabled.name == "student (disabled)"
    students = by_name["student"]
    assert "rahul" in students.members and "crowd04" in students.members and "crowd05" not in students.members
    mixed = by_name["instructor + student"]
    assert mixed.roles == ("instructor", "student") and len(mixed.members) == 7
    assert by_name[groups.NO_ROLES].roles == ()
    cell = {(c.route.key, c.user): c for c in result.cells}
    assert cell[("GET /students/{id}", owner.name)].decision == 200  # the owner rule, for them alone
    assert cell[("GET /students/{id}", groups.NO_ROLES)].decision == 403
    assert cell[("GET /profile", disabled.name)].decision == 401


def test_grouped_offline_decides_once_per_group_not_per_user(crowd: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost is groups × routes: count the engine's calls and the tokens minted."""
    calls = {"decide": 0, "mint": 0}
    from authctl import explain

    real_decide, real_subject = routes.decide, explain.subject_for_user

    def decide(*args, **kwargs):
        calls["decide"] += 1
        return real_decide(*args, **kwargs)

    def subject(*args, **kwargs):
        calls["mint"] += 1
        return real_subject(*args, **kwargs)

    monkeypatch.setattr(routes, "decide", decide)
    monkeypatch.setattr(explain, "subject_for_user", subject)
    with Store.open(crowd.db) as store:
        result = groups.build(store, users=None, params={})
    route_count = len({c.route.key for c in result.cells})
    assert calls["decide"] == len(result.groups) * route_count
    assert calls["mint"] == len(result.groups) - 1  # anonymous needs no token
    assert sum(len(g.members) for g in result.groups) == 3 + 30 + 1  # demo, crowd, anonymous: the disabled one is not active


def test_matrix_by_role_set_json_names_count_and_members(crowd: Cli) -> None:
    result = crowd("matrix", "--by", "role-set", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    student = next(g for g in data["groups"] if g["name"] == "student")
    assert student["count"] == len(student["members"]) == 9 and "rahul" in student["members"]
    assert data["users"] == [g["name"] for g in data["groups"]]
    assert {c["user"] for c in data["cells"]} == set(data["users"])


def test_matrix_table_groups_by_default_and_json_stays_per_user(crowd: Cli) -> None:
    table = crowd("matrix")
    assert table.exit_code == 0, table.stderr
    assert "instructor + student" in table.stdout and "crowd07" not in table.stdout
    assert "(7)" in table.stdout  # the column names its size
    per_user = json.loads(crowd("matrix", "--json").stdout)
    assert "crowd07" in per_user["users"] and "groups" not in per_user


def test_live_cells_merge_only_where_every_member_answered_alike(crowd: Cli) -> None:
    """A live run is per user; columns merge afterwards only over identical cells."""
    result = crowd("matrix", "--live", "--by", "role-set", "--param", "id=2", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    members = [m for g in data["groups"] for m in g["members"]]
    assert len(members) == len(set(members)) == 3 + 30 + 1
    cells = {(c["method"], c["route"], c["user"]): c for c in data["cells"]}
    owner = next(g for g in data["groups"] if "rahul" in g["members"])  # demo student 2 is rahul's own record
    assert owner["members"] == ["rahul"]
    assert cells[("GET", "/students/{id}", owner["name"])]["live"] == 200
    others = next(g for g in data["groups"] if "crowd00" in g["members"])
    assert cells[("GET", "/students/{id}", others["name"])]["live"] == 403


# --------------------------------------------------------------------------- progress on live runs


class _Terminal:
    """A stderr that says it is a terminal and keeps what was drawn."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def isatty(self) -> bool:
        return True

    def write(self, data: str) -> int:
        return self.buffer.write(data)

    def flush(self) -> None:
        pass


def test_live_matrix_reports_each_answer_to_the_progress_callback(crowd: Cli) -> None:
    seen: list[tuple[int, int]] = []
    with Store.open(crowd.db) as store:
        result = matrix.build(store, users=["rahul", "suman"], live=True, progress=lambda d, t: seen.append((d, t)))
    sent = sum(cell.live is not None for cell in result.cells)
    assert sent > 0 and seen == [(i, sent) for i in range(1, sent + 1)]


def test_progress_bar_is_drawn_on_a_terminal_stderr_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from authctl import render

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with render.live_progress("sending the matrix's requests", after=0) as progress:
        assert progress is not None
        for done in range(1, 4):
            progress(done, 4)
    assert "sending the matrix's requests" in terminal.buffer.getvalue()
    assert "3/4" in terminal.buffer.getvalue()

    import io

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # piped: no bar at all
    with render.live_progress("sending", after=0) as progress:
        assert progress is None


def test_progress_bar_stays_hidden_on_a_run_that_ends_before_it_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from authctl import render

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with render.live_progress("sending", after=3600) as progress:
        for done in range(1, 5):
            progress(done, 4)
    assert terminal.buffer.getvalue() == ""


def test_strict_without_expectations_is_refused_by_the_library_too(demo: Cli) -> None:
    """Callers other than the CLI (which says it as a usage error) get the one check in ``matrix.build``."""
    from authctl.errors import InvalidInput

    with Store.open(demo.db) as store:
        for build in (matrix.build, groups.build):
            with pytest.raises(InvalidInput, match="strict checking needs expectations"):
                build(store, users=None, strict=True)
