"""The pytest plugin, run with ``pytester``: passing and failing suites, strict mode, and its import cost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.apphelpers import ARTICLE_POLICY as POLICY

pytest_plugins = ["pytester"]

PASSING = '''
def test_the_article(authctl_client, authctl_app):
    assert authctl_client.as_user("rahul").delete("/student/3").status_code == 403
    assert authctl_client.anonymous().delete("/student/3").status_code == 401
    assert authctl_client.as_user("suman").get("/students").status_code == 200
    assert authctl_app.dependency_overrides == {}  # the real auth path, nothing overridden

def test_token_is_accepted_by_the_app(authctl_token, authctl_client):
    import httpx
    response = authctl_client.anonymous().get("/whoami", headers={"Authorization": "Bearer " + authctl_token("rahul")})
    assert response.json()["user"]["username"] == "rahul"

def test_policy_expectations(authctl_matrix):
    report = authctl_matrix.check()
    assert sum(cell.expected is not None for cell in report.cells) == 3
'''


@pytest.fixture(autouse=True)
def imported_here() -> None:
    """In-process pytester forgets modules first imported by the inner run; a compiled extension
    (cryptography's) cannot be imported twice, so everything the inner runs use is imported here."""
    from authctl import keys, testing, tokens  # noqa: F401
    from authctl.app import create_app

    keys.generate("ES256")
    create_app()


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", policy=POLICY)
    pytester.makeini("[pytest]\nauthctl_policy = policy.toml\n")
    return pytester


def test_a_passing_suite_passes_through_the_real_auth_path(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app=PASSING)
    result = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_failing_expectation_prints_the_two_phase_trace(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app='''
def test_rahul_may_delete(authctl_matrix):
    authctl_matrix.check({"DELETE /student/{id}": {"rahul": "allow", "anonymous": 401}})
''')
    result = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*DELETE /student/1 as rahul: expected allow, got 403*",
        "*1 authentication ok: authenticated as rahul*",
        "*2 authorization: roles student; granted nothing; missing students:delete*",
        "*verdict 403: rahul lacks students:delete*",
    ])
    assert "as anonymous" not in result.stdout.str()  # the met cell is not reported


def test_a_user_the_database_does_not_know_fails_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app='''
def test_typo(authctl_matrix):
    authctl_matrix.check({"DELETE /student/{id}": {"rahull": 403}})
''')
    result = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no user named 'rahull'*"])


def test_strict_mode_fails_on_a_route_without_an_expectation(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_app='''
import pytest

def test_table(authctl_matrix):
    authctl_matrix.check()

@pytest.mark.authctl_strict
def test_table_marked_strict(authctl_matrix):
    authctl_matrix.check()
''')
    lenient = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider", "-k", "not marked")
    lenient.assert_outcomes(passed=1, deselected=1)
    marked = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider", "-k", "marked")
    marked.assert_outcomes(failed=1, deselected=1)
    marked.stdout.fnmatch_lines(["*GET /admin/dashboard (admin:access) has no expectation*"])
    strict = suite.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider", "--authctl-strict")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*POST /courses (courses:write) has no expectation*"])


def test_a_database_built_from_code(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_code='''
import pytest

@pytest.fixture
def authctl_policy():
    return {"roles": {"admin": {"permissions": ["admin:access"]}}, "users": {"suman": {"roles": ["admin"]}},
            "expect": {"GET /admin/dashboard": {"suman": "allow", "anonymous": 401}}}

def test_dashboard(authctl_client, authctl_matrix, authctl_db):
    assert authctl_db.get_user("suman").roles == ("admin",)
    assert authctl_client.as_user("suman").get("/admin/dashboard").status_code == 200
    authctl_matrix.check(live=True)
''')
    result = pytester.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


NATIVE_POLICY = '''
[users.rahul]
[users.suman]

[expect."GET /items"]
rahul = "allow"
suman = "allow"
anonymous = 401

[expect."POST /items"]
rahul = 403
suman = "allow"
anonymous = 401
'''

NATIVE_TARGETS = '''
import pytest
from authctl import targets
from tests.nativeapps.common import SECRET, USERS

@pytest.fixture
def authctl_target(authctl_db):
    if MODE == "login":  # the app's own OAuth2 password login, each user's password given in code
        return targets.add(authctl_db, "shop", mode="login", token_url="/token",
                           passwords={name: user["password"] for name, user in USERS.items()})
    return targets.add(authctl_db, "shop", mode="token", key=SECRET.encode(), alg="HS256", scope_claim="scope",
                       scopes={name: " ".join(user["scopes"]) for name, user in USERS.items()})
'''

NATIVE_TESTS = '''
def test_the_app_is_spoken_to_in_its_own_credentials(authctl_client, authctl_app):
    assert authctl_client.as_user("suman").post("/items").status_code == 200
    assert authctl_client.as_user("rahul").post("/items").status_code == 403
    assert authctl_client.anonymous().get("/items").status_code == 401
    assert authctl_app.dependency_overrides == {}

def test_native_expectations_live(authctl_matrix):
    report = authctl_matrix.check(live=True)
    assert sum(cell.live is not None for cell in report.cells if cell.expected is not None) == 6
'''


@pytest.mark.parametrize("mode", ["token", "login"])
def test_a_native_app_through_a_target(pytester: pytest.Pytester, mode: str) -> None:
    """An app with its own OAuth2 security: the client speaks a target's credentials, the
    expectations are observed live, and a wrong one fails with the native steps in its trace."""
    pytester.makefile(".toml", policy=NATIVE_POLICY)
    pytester.makeini("[pytest]\nauthctl_policy = policy.toml\nauthctl_app = tests.nativeapps.oauth2_scopes:app\n")
    pytester.makeconftest(f"MODE = {mode!r}\n" + NATIVE_TARGETS)
    pytester.makepyfile(test_native=NATIVE_TESTS)
    result = pytester.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

    pytester.makepyfile(test_native='''
def test_rahul_may_add(authctl_matrix):
    authctl_matrix.check({"POST /items": {"rahul": "allow"}}, live=True)
''')
    failing = pytester.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider")
    failing.assert_outcomes(failed=1)
    failing.stdout.fnmatch_lines(["*POST /items as rahul: expected allow, got 403 (live status 403)*",
                                  "*OAuth2PasswordBearer (bearer): the request carries its credential*",
                                  "*live: 403*"])
    if mode == "token":  # the template's scopes are known offline: the trace names the missing one
        failing.stdout.fnmatch_lines(["*FAILED scope items:write: missing*"])


def test_the_plugin_costs_nothing_for_suites_that_do_not_use_it() -> None:
    code = ("import sys, authctl.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'httpx', 'jwt', 'rich',"
            " 'typer', 'sqlite_utils') or m in ('authctl.store', 'authctl.testing', 'authctl.policyfile')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_entry_point_names_the_plugin_module() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"authctl.pytest_plugin": "authctl.pytest_plugin"}


def test_the_readme_test_file_works_as_it_stands(pytester: pytest.Pytester, tmp_path) -> None:
    """The README's pytest.ini and test file, with a policy.toml exported by `authctl policy export`."""
    import re
    from pathlib import Path

    from typer.testing import CliRunner

    from authctl.cli import app
    from authctl.store import Store
    from tests.apphelpers import add_article_users

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### The pytest plugin"):]
    ini = re.search(r"```ini\n(.*?)```", section, re.S).group(1)
    test_file = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(test_file.strip().splitlines()) <= 12
    with Store.create(tmp_path / "auth.db") as store:
        add_article_users(store)
    exported = CliRunner().invoke(app, ["--db", str(tmp_path / "auth.db"), "policy", "export"])
    assert exported.exit_code == 0
    pytester.makefile(".toml", policy=exported.stdout)
    pytester.makeini(ini)
    pytester.makepyfile(test_authz=test_file)
    pytester.runpytest("-p", "authctl.pytest_plugin", "-p", "no:cacheprovider").assert_outcomes(passed=2)
