"""Shared by the native-security fixture apps: their users, one HS256 secret, token helpers.

These apps stand for apps that do not use authctl: each keeps its own users and
checks credentials in its own code. Written for authctl's tests.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import jwt
from fastapi import HTTPException

SECRET = "fixture-apps-hs256-secret-0123456789abcdef"  # 40 bytes: strong enough for a target without opt-in
USERS: dict[str, dict[str, Any]] = {
    "rahul": {"username": "rahul", "password": "rahul-fixture-pw", "scopes": ["items:read"], "superuser": False,
              "staff": False, "active": True, "api_key": "key-rahul-7f3a"},
    "suman": {"username": "suman", "password": "suman-fixture-pw", "scopes": ["items:read", "items:write"],
              "superuser": True, "staff": True, "active": True, "api_key": "key-suman-91bc"},
}


def password_ok(username: str, password: str) -> dict[str, Any] | None:
    user = USERS.get(username)
    expected = user["password"] if user else "x" * 16
    matches = hmac.compare_digest(expected.encode(), password.encode())
    return user if user and matches else None


def make_token(username: str, scopes: list[str] | None = None, ttl: int = 600) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": username, "iat": now, "exp": now + ttl}
    if scopes is not None:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, SECRET, algorithm="HS256")


def unauthorized(detail: str = "could not validate the credential", scheme: str = "Bearer") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": scheme})


def user_from_token(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(user, claims) of a valid token, else a 401."""
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise unauthorized('invalid token', 'Bearer error="invalid_token"') from None
    user = USERS.get(claims["sub"])
    if user is None or not user["active"]:
        raise unauthorized("unknown or inactive user")
    return user, claims
