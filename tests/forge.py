"""Tokens a verifier must refuse, sentinel secrets, and the search for leaked secrets.

Shared by the fuzzing (tests/test_fuzz.py) and the leak tests (tests/test_secrets.py),
so both forge tokens the same way and count the same partial echoes as leaks.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

# --------------------------------------------------------------------------- base64url JSON


def b64url_json(data: dict[str, Any]) -> str:
    """A JWT segment: compact JSON, base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unb64url_json(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# --------------------------------------------------------------------------- bad tokens

#: Every kind ``bad_token`` makes.
BAD_KINDS = ("garbage", "expired", "tampered signature", "forged claims", "alg none")


def with_claims(token: str, **changes: Any) -> str:
    """The token's signature under claims it was not made for."""
    header, payload, signature = token.split(".")
    return f"{header}.{b64url_json({**unb64url_json(payload), **changes})}.{signature}"


def with_tampered_signature(token: str) -> str:
    """One character of the signature changed (in the middle: the last one may only carry padding bits)."""
    header, payload, signature = token.split(".")
    i = len(signature) // 2
    return f"{header}.{payload}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1:]}"


def unsigned(token: str) -> str:
    """The same claims with ``alg: none`` and no signature."""
    header, payload, _ = token.split(".")
    return f"{b64url_json({**unb64url_json(header), 'alg': 'none'})}.{payload}."


def bad_token(kind: str, issue: Callable[..., str], **forged_claims: Any) -> str:
    """A token of ``kind`` (one of BAD_KINDS) that must be refused.

    ``issue(expired=False)`` returns a fresh token of the key under test; ``forged_claims``
    are written into the "forged claims" kind (e.g. another user's name and roles).
    """
    if kind == "garbage":
        return f"garbage-{uuid.uuid4().hex}"
    if kind == "expired":
        return issue(expired=True)
    if kind == "tampered signature":
        return with_tampered_signature(issue())
    if kind == "forged claims":
        return with_claims(issue(), **(forged_claims or {"roles": ["admin"]}))
    if kind == "alg none":
        return unsigned(issue())
    raise ValueError(f"unknown kind {kind!r}")


# --------------------------------------------------------------------------- leak search


def sentinel(kind: str = "Pass") -> str:
    """A secret no message could contain by chance."""
    return f"Sentinel-{kind}-{uuid.uuid4().hex}"


WINDOW = 16  # an echo of this many consecutive characters of a secret's random part counts as a leak


def windows(text: str) -> list[str]:
    return [text[i:i + WINDOW] for i in range(len(text) - WINDOW + 1)]


def needles(secret: str) -> list[str]:
    """The secret and every run of WINDOW characters of its random part: a partial echo is a leak too.

    ``Bearer `` is dropped first (an Authorization header value is searched as its token).
    Tokens: the payload segment, and the signature (the header segment and the start of
    the payload are the same in every token of a key, so a fresh login may return them).
    PEM: the body after its first line (which starts with the algorithm's fixed DER
    prefix). Sentinels: the random part.
    """
    found = [secret]
    if secret.startswith("Bearer "):
        secret = secret[len("Bearer "):]
        found.append(secret)
    if "-----BEGIN" in secret:
        body = [line for line in secret.splitlines() if line and not line.startswith("-----")]
        found += body + windows("".join(body[1:]))
    elif secret.count(".") == 2 and " " not in secret:
        _, payload, signature = secret.split(".")
        found += [payload] * bool(payload) + windows(signature)
    elif secret.startswith(("Sentinel-", "garbage-")):
        found += [w for run in re.findall(r"[A-Za-z0-9]+", secret) if len(run) >= WINDOW for w in windows(run)]
    elif len(secret) >= 2 * WINDOW:
        found += windows(secret)
    return found


def leaks(secrets: Iterable[str], text: str) -> list[str]:
    """The needles of ``secrets`` that occur in ``text``."""
    return [needle for secret in secrets for needle in needles(secret) if needle in text]


def assert_hidden(secrets: Iterable[str], **channels: str) -> None:
    """No needle of any secret occurs in any channel (given by name)."""
    secrets = list(secrets)
    for name, text in channels.items():
        found = leaks(secrets, text)
        assert not found, f"a secret ({found[0][:12]}…) leaked into {name}"
