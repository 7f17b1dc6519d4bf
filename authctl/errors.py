"""One exception tree for authctl; the CLI's error boundary maps it to exit codes.

    AuthctlError                 exit 1  (any known error: one line on stderr)
    ├── NotFound                 exit 1  unknown user, role, key, ...
    ├── Conflict                 exit 1  already exists, still in use, cycle
    ├── InvalidInput             exit 1  bad name, bad value, bad file
    │   └── PasswordRejected     exit 1  a password policy rule failed
    ├── DatabaseError            exit 1  missing, corrupt, too new, insecure, busy
    ├── AuthenticationError      exit 3  the 401 case
    │   └── TokenError           exit 3  a token failed verification
    │       ├── TokenMalformed, TokenExpired, TokenNotYetValid, TokenSignatureInvalid,
    │       ├── TokenClaimInvalid, TokenRevoked, TokenTypeMismatch, UnknownKey
    │       ├── TokenUserInvalid  (unknown/disabled user, stale token version)
    │       └── RefreshReused     (a refresh token used twice: its family is revoked)
    ├── Forbidden                exit 4  the 403 case
    ├── NoRoute                  exit 5  no route matches (404 / 405)
    └── Mismatch                 exit 6  the live server disagrees with the offline decision

Messages never contain secrets: passwords, private keys or whole tokens.
"""

from __future__ import annotations


class AuthctlError(Exception):
    exit_code = 1


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


class Mismatch(AuthctlError):
    exit_code = 6
