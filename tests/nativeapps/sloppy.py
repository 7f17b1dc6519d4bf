"""Status codes that confuse 401 and 403: a 403 for a forged token, a 401 (without WWW-Authenticate)
for a valid token lacking a scope, and a route declared secured that lets anonymous callers in."""

from __future__ import annotations

from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from tests.nativeapps.common import SECRET

oauth2 = OAuth2PasswordBearer(tokenUrl="token", scopes={"reports:read": "read reports"})
maybe = OAuth2PasswordBearer(tokenUrl="token", auto_error=False, scheme_name="MaybeBearer")
app = FastAPI(title="sloppy statuses")


def caller(security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(403, "bad token") from None  # wrong: a failed authentication is a 401
    if any(s not in str(claims.get("scope", "")).split() for s in security_scopes.scopes):
        raise HTTPException(401, "not enough permissions")  # wrong twice: a 403, and a 401 needs WWW-Authenticate
    return claims


@app.get("/reports")
def reports(user: Annotated[dict, Security(caller, scopes=["reports:read"])]) -> list[str]:
    return ["q1"]


@app.get("/summary")
def summary(token: Annotated[str | None, Depends(maybe)]) -> dict[str, str]:  # declared secured, checks nothing
    return {"summary": "everything"}
