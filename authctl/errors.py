"""One exception tree for authctl; the CLI's error boundary maps it to exit codes.

    AuthctlError                 exit 1  (any known error: one line on stderr)
    ├── NotFound                 exit 1  unknown user, role, key, ...
    ├── Conflict                 exit 1  already exists, still in use, cycle
    ├── InvalidInput             exit 1  bad name, bad value, bad file
    │   └── PasswordRejected     exit 1  a password policy rule failed
    ├── DatabaseError            exit 1  missing, corrupt, too new, insecure, busy
    ├── ConnectionFailed         exit 1  a live request could not be made (refused, timed out, broken)
    ├── AuthenticationError      exit 3  the 401 case
    │   └── TokenError           exit 3  a token failed verification
    │       ├── TokenMalformed, TokenExpired, TokenNotYetValid, TokenSignatureInvalid,
    │       ├── TokenClaimInvalid, TokenRevoked, TokenTypeMismatch, UnknownKey
    │       ├── TokenUserInvalid  (unknown/disabled user, stale token version)
    │       └── RefreshReused     (a refresh token used twice: its family is revoked)
    ├── Forbidden                exit 4  the 403 case
    ├── NoRoute                  exit 5  no route matches (404 / 405)
    │   ├── RouteNotFound        exit 5  no route matches the path (404)
    │   └── MethodNotAllowed     exit 5  the path matches, the method does not (405)
    └── Mismatch                 exit 6  the live server disagrees with the offline decision

Messages never contain secrets: passwords, private keys or whole tokens. Nor do they
name command-line options: an error that the CLI can help with carries a ``hint`` key
(e.g. ``"unsafe"``), and the CLI's error boundary turns it into advice in one place.
"""

from __future__ import annotations


class AuthctlError(Exception):
    """Any known error: one safe line. ``hint`` names advice the CLI may add (``cli.HINTS``)."""

    exit_code = 1

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        self.hint = hint


class NotFound(AuthctlError):
    pass


class Conflict(AuthctlError):
    pass


class InvalidInput(AuthctlError):
    pass


class PasswordRejected(InvalidInput):
    pass


class DatabaseError(AuthctlError):
    pass


class ConnectionFailed(AuthctlError):
    """A live request could not be made or answered: refused, timed out, or broken off."""


class AuthenticationError(AuthctlError):
    exit_code = 3


class TokenError(AuthenticationError):
    """A token failed verification; ``check`` names the failing check."""

    check = "token"


class TokenMalformed(TokenError):
    check = "format"


class TokenSignatureInvalid(TokenError):
    check = "signature"


class UnknownKey(TokenError):
    check = "kid"


class TokenExpired(TokenError):
    check = "exp"


class TokenNotYetValid(TokenError):
    check = "nbf"


class TokenClaimInvalid(TokenError):
    check = "claims"


class TokenTypeMismatch(TokenError):
    check = "typ"


class TokenRevoked(TokenError):
    check = "revoked"


class TokenUserInvalid(TokenError):
    check = "user"


class RefreshReused(TokenRevoked):
    """A refresh token presented a second time: its whole family was revoked."""


class Forbidden(AuthctlError):
    exit_code = 4


class NoRoute(AuthctlError):
    exit_code = 5


class RouteNotFound(NoRoute):
    """No route matches the path (the server answers 404)."""

    status = 404


class MethodNotAllowed(NoRoute):
    """The path matches, the method does not (the server answers 405)."""

    status = 405

    def __init__(self, message: str, allowed: tuple[str, ...]):
        super().__init__(message)
        self.allowed = allowed


class Mismatch(AuthctlError):
    exit_code = 6
