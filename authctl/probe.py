"""Live HTTP checks with httpx: a running server, or an app in-process (ASGI).

Requests never follow redirects, have bounded timeouts, and a bearer token is not
sent over plain HTTP to a host other than loopback unless explicitly allowed.
Connection failures become one-line ``ConnectionFailed`` errors (exit 1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit

from .errors import AuthctlError, ConnectionFailed, InvalidInput
from .policy import Outcome

KEY_HEADERS = ("www-authenticate", "content-type", "cache-control", "location")
BODY_LIMIT = 2000
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str | None = None
    credential: Any = field(default=None, repr=False)  # a targets.Credential: sent instead of the bearer token


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any
    lints: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return Outcome.of_status(self.status)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "outcome": self.outcome.value, "headers": self.headers, "body": self.body,
                "lints": self.lints}


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport(url: str, *, sends_token: bool, insecure_transport: bool) -> None:
    """Refuse to send a bearer token in clear text to another machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"invalid URL {url[:80]!r}: use http(s)://host[:port]")
    if sends_token and parts.scheme == "http" and not is_loopback(parts.hostname) and not insecure_transport:
        raise InvalidInput(
            f"refusing to send a bearer token over plain HTTP to {parts.hostname}; use https", hint="insecure_transport"
        )


def _check_path(path: str) -> str:
    """A request path on the target server, never a URL: httpx would send a full URL
    (and the bearer token with it) to whatever host it names."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        raise InvalidInput(f"{path[:80]!r} is not a path on the server: give /path", hint="url_host")
    return path


def lint(response_status: int, headers: dict[str, str], body: Any, *, sent_credentials: bool) -> list[str]:
    """Status-code smells that confuse 401 and 403 (or hide them)."""
    problems = []
    if response_status == 401 and "www-authenticate" not in headers:
        problems.append("401 without a WWW-Authenticate header (RFC 9110 requires one)")
    if response_status == 403 and not sent_credentials:
        problems.append("403 for a request with no credentials: that is a 401 (authentication, not authorization)")
    text = json.dumps(body).lower() if not isinstance(body, str) else body.lower()
    if response_status == 400 and ("inactive" in text or "disabled" in text):
        problems.append("400 for an inactive user: an unusable identity is a 401 (or 403), not a bad request")
    return problems


def _response(raw: Any, sent_credentials: bool) -> Response:
    headers = {name: raw.headers[name] for name in KEY_HEADERS if name in raw.headers}
    try:
        body: Any = raw.json()
    except ValueError:
        body = raw.text[:BODY_LIMIT]
    return Response(raw.status_code, headers, body, lint(raw.status_code, headers, body, sent_credentials=sent_credentials))


def _client(*, url: str | None, app: Any, timeout: float) -> Any:
    """The client of one run: the app in-process (its exceptions become 500s), else the server at ``url``;
    redirects are never followed (a 3xx is an answer of its own)."""
    import httpx

    if app is not None:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://authctl.local", follow_redirects=False, timeout=timeout)
    return httpx.AsyncClient(base_url=url or DEFAULT_URL, follow_redirects=False, timeout=timeout)


async def _send_all(
    requests: Sequence[Request], *, url: str | None, app: Any, timeout: float, on_response: Any = None,
) -> list[Response]:
    import httpx

    client = _client(url=url, app=app, timeout=timeout)
    target = url or "the app"
    responses = []
    logins: dict[Any, Any] = {}
    async with client:
        for request in requests:
            _check_path(request.path)
            headers = {"Authorization": f"Bearer {request.token}"} if request.token else {}
            params: dict[str, str] = {}
            cookies: dict[str, str] = {}
            if request.credential is not None:
                credential = await _logged_in(client, request.credential, logins, target)
                headers, params, cookies = dict(credential.headers), dict(credential.query), dict(credential.cookies)
            try:
                raw = await client.request(request.method, request.path, headers=headers, params=params or None,
                                           cookies=cookies or None)
            except httpx.HTTPError as exc:
                raise _connection_failed(exc, f"{request.method} {request.path}", target, timeout) from None
            sent = bool(request.token) or (request.credential is not None and bool(headers or params or cookies))
            responses.append(_response(raw, sent_credentials=sent))
            if on_response is not None:
                on_response(len(responses), len(requests))
    return responses


async def _logged_in(client: Any, credential: Any, logins: dict[Any, Any], target: str) -> Any:
    """A target's credential ready to send: its password login performed first (once per user and run)."""
    import httpx

    login = credential.login
    if login is None:
        return credential
    key = (login.token_url, login.username)
    if key not in logins:
        _check_path(login.token_url)
        try:
            raw = await client.post(login.token_url, data={"username": login.username, "password": login.password})
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"login as {login.username} at {login.token_url} on {target} failed: {type(exc).__name__}") from None
        try:
            body = raw.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if raw.status_code != 200 or not isinstance(token, str) or not token:
            raise AuthctlError(f"login as {login.username} at {login.token_url} answered {raw.status_code}"
                               + ("" if raw.status_code != 200 else " without an access_token"))
        logins[key] = login.credential_for(token, credential.label)
    return logins[key]


def _connection_failed(exc: Exception, what: str, target: str, timeout: float) -> ConnectionFailed:
    """One line for an httpx failure: refused, timed out, or another transport error (by its class name)."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(f"cannot connect to {target}: connection refused (is the server running?)")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(f"{what} on {target} timed out after {timeout:g} s")
    return ConnectionFailed(f"request to {target} failed: {type(exc).__name__}")


def send_all(
    requests: Sequence[Request], *, url: str | None = None, app: Any = None, timeout: float = 10.0, on_response: Any = None,
) -> list[Response]:
    """Send requests in order to a URL, or in-process to an ASGI app; ``on_response(done, total)`` after each."""
    return asyncio.run(_send_all(requests, url=url, app=app, timeout=timeout, on_response=on_response))


def send(request: Request, **target: Any) -> Response:
    return send_all([request], **target)[0]


@dataclass(frozen=True)
class Planned:
    """A request to send live with what the offline side knew of it, for the answer's lints."""

    request: Request
    anonymous: bool
    secured: bool | None = None
    missing_scopes: tuple[str, ...] = ()
    decided: int | None = None  # the offline status, if decided


def send_planned(planned: Sequence[Planned], *, url: str | None = None, app: Any = None,
                 on_response: Any = None) -> list[Response]:
    """The one way check and matrix send live: ``send_all``, then each answer's context lints."""
    responses = send_all([p.request for p in planned], url=url, app=app, on_response=on_response)
    for plan, response in zip(planned, responses):
        credential = plan.request.credential
        response.lints += context_lints(
            response.status, anonymous=plan.anonymous, secured=plan.secured,
            credential_valid=getattr(credential, "valid", None), missing_scopes=plan.missing_scopes,
            target_rejected=bool(getattr(credential, "trusted", False)) and plan.decided not in (None, 401))
    return responses


def context_lints(status: int, *, anonymous: bool, secured: bool | None = None, credential_valid: bool | None = None,
                  missing_scopes: Sequence[str] = (), target_rejected: bool = False) -> list[str]:
    """Status smells that need to know what was sent and what the route declares.

    ``target_rejected``: a target's own credential, expected to authenticate, got this status.
    """
    problems = []
    if target_rejected and status == 401:
        problems.append("401 for the target's own credential: its key, claims or passwords do not match the app "
                        "(see `authctl target show`)")
    if anonymous and secured and 200 <= status < 300:  # a 3xx is REDIRECTED: often a login page
        problems.append(f"{status} for an anonymous request on a route declared secured: nothing checks it")
    if credential_valid is False and status == 403:
        problems.append("403 for an expired or forged token: that is a 401 (authentication failed)")
    if missing_scopes and status == 401:
        problems.append(f"401 for a valid token lacking scope {' '.join(missing_scopes)}: that is a 403 "
                        "(RFC 6750 insufficient_scope)")
    return problems


async def _fetch(path: str, *, url: str | None, app: Any, limit: int, timeout: float) -> tuple[int, bytes]:
    import httpx

    _check_path(path)
    client = _client(url=url, app=app, timeout=timeout)
    target = url or "the app"
    chunks: list[bytes] = []
    size = 0
    async with client:
        try:
            async with client.stream("GET", path) as raw:
                async for chunk in raw.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InvalidInput(f"{path} on {target} is larger than {limit // (1024 * 1024)} MB")
                    chunks.append(chunk)
                return raw.status_code, b"".join(chunks)
        except httpx.HTTPError as exc:
            raise _connection_failed(exc, f"GET {path}", target, timeout) from None


def fetch_document(path: str, *, url: str | None = None, app: Any = None, limit: int = 10 * 1024 * 1024,
                   timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body) of one GET, read as a stream and refused past ``limit`` bytes (a document, not a request)."""
    return asyncio.run(_fetch(path, url=url, app=app, limit=limit, timeout=timeout))
# --------------------------------------------------------------------------- probe


def _identity_problem(whoami: Response, path: str) -> str | None:
    """Why the identity endpoint's answer says nothing about who we are (``None``: it does).

    A 200 with a JSON object, a 401 or a 403 is the server's view of the caller; a 404,
    a 400 or a 5xx means the endpoint is missing or failing, which must not pass as "allowed".
    """
    outcome = whoami.outcome
    if outcome in (Outcome.UNAUTHENTICATED, Outcome.FORBIDDEN):
        return None
    if outcome is Outcome.ALLOWED:
        if whoami.status == 200 and isinstance(whoami.body, dict):
            return None
        return f"the identity endpoint GET {path} answered {whoami.status} without a JSON object: it says nothing about who you are"
    hint = "; give the right one with --whoami-path" if outcome is Outcome.NO_ROUTE else ""
    return f"the identity endpoint GET {path} answered {whoami.status} ({outcome.label}){hint}"


@dataclass
class Probe:
    """``authctl probe``: the server's view of the caller, then (optionally) one request."""

    whoami_path: str
    whoami: Response
    request: tuple[str, str] | None = None
    response: Response | None = None

    @property
    def problem(self) -> str | None:
        return _identity_problem(self.whoami, self.whoami_path)

    @property
    def exit_code(self) -> int:
        """The request's outcome (the identity's, without one); 1 when the identity endpoint failed."""
        if self.problem is not None:
            return 1
        return (self.response or self.whoami).outcome.exit_code


def run_probe(token: str | None, *, url: str, whoami_path: str = "/whoami", request: tuple[str, str] | None = None,
              timeout: float = 10.0, credential: Any = None) -> Probe:
    """The identity endpoint, then ``request``, each sent with ``token`` or a target's ``credential``."""
    requests = [Request("GET", whoami_path, token, credential)]
    if request is not None:
        requests.append(Request(request[0], request[1], token, credential))
    responses = send_all(requests, url=url, timeout=timeout)
    return Probe(whoami_path, responses[0], request, responses[1] if request is not None else None)


class Session:
    """A persistent synchronous client of an app in-process (ASGI), for the pytest plugin.

    One event loop and one ``httpx.AsyncClient`` for its whole life, so a request costs
    what a hand-made ASGI client's does; ``token`` goes in ``Authorization: Bearer``.
    Returns httpx's own response. Redirects are not followed.
    """

    def __init__(self, app: Any, *, base_url: str = "http://testserver", raise_app_exceptions: bool = True):
        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions), base_url=base_url,
            follow_redirects=False,
        )
        self._logins: dict[Any, Any] = {}

    def request(self, method: str, path: str, *, token: str | None = None, credential: Any = None, **kwargs: Any) -> Any:
        """``credential`` (a ``targets.Credential``) is sent the target's way, its login performed once first."""
        _check_path(path)
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if credential is not None:
            ready = self._loop.run_until_complete(_logged_in(self._client, credential, self._logins, "the app"))
            headers.update(ready.headers)
            if ready.query:
                kwargs["params"] = {**dict(kwargs.get("params") or {}), **ready.query}
            if ready.cookies:  # a Cookie header: httpx deprecates per-request cookies
                cookie = "; ".join(f"{name}={value}" for name, value in ready.cookies.items())
                headers["Cookie"] = f"{headers['Cookie']}; {cookie}" if headers.get("Cookie") else cookie
        return self._loop.run_until_complete(self._client.request(method, path, headers=headers, **kwargs))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()
