"""Schema-driven fuzzing of the demo app in-process (ASGI, no socket) with schemathesis.

Every operation of the app's OpenAPI schema gets positive and (where it has
inputs) negative cases from schemathesis, sent with one of several credentials.
Whatever the input, the app must never answer 5xx, every 401 must carry an RFC 6750
``WWW-Authenticate: Bearer`` challenge, a protected route must never succeed
without valid credentials, and no secret the client sent (token, Authorization
header, refresh token, password) may come back in the response.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from authctl.app import create_app
from authctl.store import Store
from tests.apphelpers import PASSWORD, issue, make_demo_db
from tests.conftest import Cli

#: Examples per operation, per credential and per generation mode: bounded for CI.
MAX_EXAMPLES = 12
SENTINEL_PASSWORD = f"Sentinel-Pass-{uuid.uuid4()}"
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the demo app's schema (building the app opens no database)."""
    document = create_app(os.devnull).openapi()
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


OPERATIONS = _operations()
CREDENTIALS = ("anonymous", "admin", "student", "bad")
BAD_KINDS = ("garbage", "expired", "forged", "alg-none")


# --------------------------------------------------------------------------- tokens


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unb64(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _bad_token(store: Store, kind: str) -> str:
    """A token the app must refuse with a 401: garbage, expired, re-written claims, or unsigned."""
    if kind == "garbage":
        return f"garbage-{uuid.uuid4().hex}"
    if kind == "expired":
        return issue(store, "suman", expired=True)
    header, payload, signature = issue(store, "rahul").split(".")
    if kind == "forged":  # rahul's signature under claims that say suman
        suman = store.get_user("suman")
        claims = {**_unb64(payload), "sub": suman.uid, "name": suman.username, "roles": ["admin"]}
        return f"{header}.{_b64(claims)}.{signature}"
    assert kind == "alg-none"
    return f"{_b64({**_unb64(header), 'alg': 'none'})}.{payload}."


class Credentials:
    """Fresh tokens per request (so a fuzzed POST /logout cannot spoil later cases)."""

    def __init__(self, store: Store, name: str):
        self.store = store
        self.name = name

    def access(self, bad_kind: str) -> str | None:
        if self.name == "anonymous":
            return None
        if self.name == "bad":
            return _bad_token(self.store, bad_kind)
        return issue(self.store, "suman" if self.name == "admin" else "rahul")

    def refresh(self, bad_kind: str) -> str | None:
        if self.name == "anonymous":
            return None
        if self.name == "bad":
            return _bad_token(self.store, bad_kind)
        return issue(self.store, "suman" if self.name == "admin" else "rahul", refresh=True)


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


def test_fuzzed_operations_cover_the_whole_schema(fuzz_target):
    """The parametrisation below is the served schema: no route escapes the fuzzing."""
    _, schema, _ = fuzz_target
    served = sorted((op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations())
    assert served == sorted(OPERATIONS)
    assert ("DELETE", "/student/{id}") in served and ("POST", "/token") in served


# --------------------------------------------------------------------------- the property


def _strategy(operation: Any) -> Any:
    """Positive cases always; negative ones too when the operation has inputs to break."""
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    has_inputs = any(len(group) for group in (
        operation.body, operation.path_parameters, operation.query, operation.headers, operation.cookies))
    return st.one_of(positive, operation.as_strategy(GenerationMode.NEGATIVE)) if has_inputs else positive


def _requires_auth(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security"))


def _check_response(case: Any, response: Any, secrets: dict[str, str], protected: bool, credentials: str) -> None:
    label = f"{case.operation.label} [{credentials}] -> {response.status_code}"
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, label
    if response.status_code == 401:
        challenges = response.headers.get("www-authenticate", [])
        assert challenges and challenges[0].startswith("Bearer"), f"{label}: 401 without a Bearer challenge"
    if protected and credentials in ("anonymous", "bad"):
        assert not 200 <= response.status_code < 300, f"{label}: protected route succeeded without valid credentials"
    body = response.content.decode("utf-8", "replace")
    echoed_headers = " ".join(v for values in response.headers.values() for v in values)
    for what, secret in secrets.items():
        for needle in _needles(secret):
            assert needle not in body, f"{label}: the {what} came back in the body"
            assert needle not in echoed_headers, f"{label}: the {what} came back in a header"


def _needles(secret: str) -> list[str]:
    """The secret, and the parts of it that are unique to it: a truncated echo is a leak too.

    A JWT's header segment is shared by every token of the key (a fresh login returns
    it legitimately), so only its payload and signature segments count.
    """
    needles = [secret]
    if secret.startswith("Bearer "):
        secret = secret[len("Bearer "):]
    if secret.count(".") == 2:
        needles += [segment for segment in secret.split(".")[1:] if len(segment) >= 16]
    elif secret.startswith(("Sentinel-Pass-", "garbage-")):
        needles.append(secret.split("-", 2)[-1][:16])  # the random part
    return needles


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzzed_requests_keep_the_security_properties(fuzz_target, method: str, path: str, credentials: str):
    """No 5xx, a Bearer challenge on every 401, no success without credentials, no secret echoed."""
    _, schema, store = fuzz_target
    operation = schema[path][method]
    protected = _requires_auth(operation)
    creds = Credentials(store, credentials)
    sends_refresh = "refresh_token" in json.dumps(operation.definition.raw.get("requestBody", {}))
    is_login = (method, path) == ("POST", "/token")
    seen: list[int] = []

    @FUZZ_SETTINGS
    @given(
        case=_strategy(operation),
        bad_kind=st.sampled_from(BAD_KINDS),
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
        _check_response(case, response, secrets, protected, credentials)

    run()
    assert seen, "no request was sent"
