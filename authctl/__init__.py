"""authctl: administer, issue and test authentication and authorization for FastAPI apps.

The public API is what this module names (``__all__``): the FastAPI integration ``Auth``,
the decision engine (``authenticate``, ``authorize``, ``decide`` and their ``Requirement``,
``Decision``, ``Outcome``), and the error tree. Everything else is importable but private:
its modules may change. Names load on first use, so ``import authctl`` (and the CLI's
``--help``) never imports FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .errors import (
        AuthctlError,
        AuthenticationError,
        Conflict,
        ConnectionFailed,
        DatabaseError,
        Forbidden,
        InvalidInput,
        Mismatch,
        MethodNotAllowed,
        NoRoute,
        NotFound,
        PasswordRejected,
        RefreshReused,
        RouteNotFound,
        TokenClaimInvalid,
        TokenError,
        TokenExpired,
        TokenMalformed,
        TokenNotYetValid,
        TokenRevoked,
        TokenSignatureInvalid,
        TokenTypeMismatch,
        TokenUserInvalid,
        UnknownKey,
    )
    from .fastapi import Auth
    from .policy import Decision, Outcome, Requirement, authenticate, authorize, decide

_ERRORS = (
    "AuthctlError", "AuthenticationError", "Conflict", "ConnectionFailed", "DatabaseError", "Forbidden",
    "InvalidInput", "Mismatch", "MethodNotAllowed", "NoRoute", "NotFound", "PasswordRejected", "RefreshReused",
    "RouteNotFound", "TokenClaimInvalid", "TokenError", "TokenExpired", "TokenMalformed", "TokenNotYetValid",
    "TokenRevoked", "TokenSignatureInvalid", "TokenTypeMismatch", "TokenUserInvalid", "UnknownKey",
)
_POLICY = ("Decision", "Outcome", "Requirement", "authenticate", "authorize", "decide")

__all__ = ["__version__", "Auth", *_POLICY, *_ERRORS]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    import importlib

    if name == "Auth":
        module = "authctl.fastapi"
    elif name in _POLICY:
        module = "authctl.policy"
    elif name in _ERRORS:
        module = "authctl.errors"
    else:
        raise AttributeError(f"module 'authctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
