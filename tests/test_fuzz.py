"""Schema-driven fuzzing of the demo app in-process (ASGI, no socket) with schemathesis.

Every route of the app gets positive and (where it has inputs) negative cases
from schemathesis, sent with one of several credentials. Which routes are public is
pinned here (PUBLIC), not read from the app, so a route that lost its auth
dependency fails instead of becoming public. Whatever the input, the app must never
answer 5xx, every 401 must carry an RFC 6750 ``WWW-Authenticate: Bearer`` challenge
(``error="invalid_token"`` when a bad token was sent, none without a token), a
protected route must never succeed without valid credentials, and no secret the
client sent (token, Authorization header, refresh token, password) may come back in
the response, whole or in part.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from authctl.app import create_app
from authctl.store import Store
from tests import forge
from tests.apphelpers import PASSWORD, issue, make_demo_db
from tests.conftest import Cli

#: Examples per operation, per credential and per generation mode: bounded for CI.
MAX_EXAMPLES = 12
SENTINEL_PASSWORD = forge.sentinel()
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _routes(app: Any) -> list[tuple[str, str]]:
    """(METHOD, path) of every route the app serves and documents, from its routing table (not its schema).

    The docs routes (``include_in_schema=False``) are not fuzzed.
    """
    return sorted({(method, route.path_format) for route in app.routes
                   if isinstance(route, APIRoute) and route.include_in_schema for method in route.methods})


OPERATIONS = _routes(create_app(os.devnull))  # building the app opens no database
#: The operations anyone may call. Every other operation requires a valid token.
PUBLIC = {
    ("POST", "/token"),
    ("POST", "/token/refresh"),  # authenticated by the refresh token in its body, not a bearer token
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/health"),
    ("GET", "/courses"),
}
LOGIN = ("POST", "/token")
CREDENTIALS = ("anonymous", "admin", "student", "bad")


class Credentials:
    """Fresh tokens per request (so a fuzzed POST /logout cannot spoil later cases)."""

    def __init__(self, store: Store, name: str):
        self.store = store
        self.name = name

    def access(self, bad_kind: str) -> str | None:
        if self.name == "anonymous":
            return None
        if self.name == "bad":
            return self.bad(bad_kind)
        return issue(self.store, "suman" if self.name == "admin" else "rahul")

    def refresh(self, bad_kind: str) -> str | None:
        if self.name == "anonymous":
            return None
        if self.name == "bad":
            return self.bad(bad_kind, refresh=True)
        return issue(self.store, "suman" if self.name == "admin" else "rahul", refresh=True)

    def bad(self, kind: str, *, refresh: bool = False) -> str:
        """One of forge.BAD_KINDS, made from rahul's tokens; forged claims say suman, an admin."""
        suman = self.store.get_user("suman")
        return forge.bad_token(
            kind, lambda expired=False: issue(self.store, "rahul", expired=expired, refresh=refresh),
            sub=suman.uid, name=suman.username, roles=["admin"])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory):
    """One seeded database, the demo app on it, its schema and a second connection for issuing tokens."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("AUTHCTL_")]:
            patch.delenv(key)
        db = make_demo_db(Cli(tmp_path_factory.mktemp("fuzz") / "fuzz.db"))

        async def no_sleep(seconds: float) -> None:  # login backoff would only slow the fuzzing down
            return None

        app = create_app(db, sleep=no_sleep)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        store = Store.open(db)
        try:
            yield app, schema, store
        finally:
            _end_lifespans()  # schemathesis keeps the app's lifespan running; ending it closes the app's database
            app.state.auth.close()
            store.close()


def _end_lifespans() -> None:
    try:
        from schemathesis.python.asgi import shutdown_lifespans
    except ImportError:  # a schemathesis that does not keep lifespans running
        return
    shutdown_lifespans()


def test_fuzzed_operations_are_the_apps_routes(fuzz_target):
    """Every route the running app serves is in the schema schemathesis fuzzes, and nothing else is.

    The parametrisation below comes from the app's routing table; a route missing from
    the schema would otherwise escape the fuzzing unnoticed.
    """
    app, schema, _ = fuzz_target
    served = _routes(app)
    fuzzable = sorted((op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations())
    assert fuzzable == served == OPERATIONS
    assert PUBLIC < set(OPERATIONS), PUBLIC - set(OPERATIONS)
    assert ("DELETE", "/student/{id}") in served and LOGIN in served


# --------------------------------------------------------------------------- the property


def _strategy(operation: Any) -> Any:
    """Positive cases always; negative ones too when the operation has inputs to break."""
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    has_inputs = any(len(group) for group in (
        operation.body, operation.path_parameters, operation.query, operation.headers, operation.cookies))
    return st.one_of(positive, operation.as_strategy(GenerationMode.NEGATIVE)) if has_inputs else positive


def _requires_auth(operation: Any) -> bool:
    """What the app's schema says: the operation declares a security scheme."""
    return bool(operation.definition.raw.get("security"))


def _check_response(case: Any, response: Any, secrets: dict[str, str], key: tuple[str, str], credentials: str) -> None:
    label = f"{case.operation.label} [{credentials}] -> {response.status_code}"
    protected = key not in PUBLIC
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, label
    if response.status_code == 401:
        challenges = response.headers.get("www-authenticate", [])
        assert challenges and challenges[0].startswith("Bearer"), f"{label}: 401 without a Bearer challenge"
        if key == LOGIN:  # a failed login is not a token error (and reads no token)
            assert challenges == ["Bearer"], f"{label}: {challenges}"
        elif credentials == "bad":  # RFC 6750 3.1: a token was sent and refused
            assert challenges == ['Bearer error="invalid_token"'], f"{label}: {challenges}"
        elif credentials == "anonymous" and protected:  # no token: a challenge with no error code
            assert challenges == ["Bearer"], f"{label}: {challenges}"
    if protected and credentials in ("anonymous", "bad"):
        assert not 200 <= response.status_code < 300, f"{label}: protected route succeeded without valid credentials"
    body = response.content.decode("utf-8", "replace")
    echoed_headers = " ".join(v for values in response.headers.values() for v in values)
    for what, secret in secrets.items():
        assert not forge.leaks([secret], body), f"{label}: the {what} came back in the body"
        assert not forge.leaks([secret], echoed_headers), f"{label}: the {what} came back in a header"


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzzed_requests_keep_the_security_properties(fuzz_target, method: str, path: str, credentials: str):
    """No 5xx, the right Bearer challenge on every 401, no success without credentials, no secret echoed."""
    _, schema, store = fuzz_target
    operation = schema[path][method]
    key = (method, path)
    assert _requires_auth(operation) == (key not in PUBLIC), "the schema's security disagrees with PUBLIC"
    creds = Credentials(store, credentials)
    sends_refresh = "refresh_token" in json.dumps(operation.definition.raw.get("requestBody", {}))
    is_login = key == LOGIN
    seen: list[int] = []

    @FUZZ_SETTINGS
    @given(
        case=_strategy(operation),
        bad_kind=st.sampled_from(forge.BAD_KINDS),
        login=st.sampled_from(("generated", "sentinel", "real")),
        use_refresh=st.booleans(),
    )
    def run(case: Any, bad_kind: str, login: str, use_refresh: bool) -> None:
        secrets: dict[str, str] = {}
        headers: dict[str, str] = {}
        token = creds.access(bad_kind)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            secrets.update({"bearer token": token, "Authorization header": headers["Authorization"]})
        if is_login and isinstance(case.body, dict) and login != "generated":
            # A password the test knows, so a leak is recognisable (a generated one may be "a").
            if login == "real":
                case.body["username"], case.body["password"] = "rahul", PASSWORD
                secrets["real password"] = PASSWORD
            else:
                case.body["password"] = SENTINEL_PASSWORD
                secrets["sent password"] = SENTINEL_PASSWORD
        if sends_refresh and use_refresh and isinstance(case.body, dict):
            refresh = creds.refresh(bad_kind)
            if refresh is not None:
                case.body["refresh_token"] = refresh
                secrets["refresh token"] = refresh
        response = case.call(headers=headers)
        seen.append(response.status_code)
        _check_response(case, response, secrets, key, credentials)

    run()
    assert seen, "no request was sent"
    if key not in PUBLIC and credentials in ("anonymous", "bad"):
        assert 401 in seen, f"never refused: {sorted(set(seen))}"  # the challenge checks above ran
