"""Strict JOSE compact serialization: the JWS layer under ``tokens`` (PyJWT's api_jws to its api_jwt).

One token, one spelling: base64url with its own alphabet, no padding and canonical final
bits; UTF-8 JSON objects that refuse duplicate members, NaN/Infinity and lone surrogates;
three segments; a size cap checked before anything is decoded; and the header members
authctl never honours (keys named by the token, ``crit``, ``b64``, ``zip``). No claims,
keys or database here: ``tokens`` checks what the payload says.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import TokenMalformed
from .names import quoted

MAX_TOKEN_BYTES = 8192
TYP = {"access": "at+jwt", "refresh": "refresh+jwt"}
TYPE_OF = {value: name for name, value in TYP.items()}
# Header members that point at keys elsewhere: never followed, so refused outright.
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c")

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as signed."""
    return _ENCODER.encode(obj).encode("utf-8")


def no_constant(name: str) -> Any:
    """``parse_constant`` hook: NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not a number")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64_VALUE = {char: index for index, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_PADDING = ("", "", "==", "=")  # a length of 4n+1 is refused before padding
_UNUSED_BITS = (0, 0, 0x0F, 0x03)  # by length % 4: low bits of the last character that must be zero


def _b64url_decode(segment: str, what: str) -> bytes:
    """Strict base64url: its alphabet only, no padding, canonical final bits (one token, one spelling)."""
    rest = len(segment) % 4
    if rest == 1 or "+" in segment or "/" in segment or "=" in segment:
        raise TokenMalformed(f"the {what} is not base64url")
    try:
        data = binascii.a2b_base64(segment.replace("-", "+").replace("_", "/") + _PADDING[rest], strict_mode=True)
    except (binascii.Error, ValueError):
        raise TokenMalformed(f"the {what} is not base64url") from None
    if rest and _B64_VALUE[segment[-1]] & _UNUSED_BITS[rest]:
        raise TokenMalformed(f"the {what} is not canonical base64url")
    return data


class _Duplicate(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Duplicate(name)
            seen.add(name)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=no_constant)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        obj = _DECODER.decode(text)
    except _Duplicate as exc:
        raise TokenMalformed(f"the {what} repeats the member {str(exc)[:40]!r}; refused as ambiguous") from None
    except UnicodeDecodeError:
        raise TokenMalformed(f"the {what} is not UTF-8") from None
    except (ValueError, RecursionError):
        raise TokenMalformed(f"the {what} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise TokenMalformed(f"the {what} is not a JSON object")
    if "\\u" in text and _has_lone_surrogate(obj):
        raise TokenMalformed(f"the {what} escapes a lone surrogate (\\ud800-\\udfff), which is not text")
    return obj


def _has_lone_surrogate(obj: Any) -> bool:
    """A ``\\ud800``-style escape decodes to a str that no database, terminal or UTF-8 output accepts."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass(frozen=True)
class Parsed:
    header: dict[str, Any]
    payload_segment: str
    signing_input: bytes
    signature: bytes


def as_text(token: Any) -> str:
    if isinstance(token, (bytes, bytearray)):
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenMalformed(f"the token is larger than {MAX_TOKEN_BYTES // 1024} KB; refused before decoding")
        try:
            return bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise TokenMalformed("the token contains bytes that cannot appear in a JWT") from None
    if not isinstance(token, str):
        raise TokenMalformed("the token is not text")
    return token


def parse(token: Any) -> Parsed:
    """Size, three segments, and the header; the payload waits until the signature is known good."""
    token = as_text(token)
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenMalformed(f"the token is larger than {MAX_TOKEN_BYTES // 1024} KB; refused before decoding")
    if not token:
        raise TokenMalformed("the token is empty")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenMalformed(
            f"a JWT has 3 dot-separated segments, this has {len(parts)}"
            + (" (5 would be an encrypted JWE, which authctl does not use)" if len(parts) == 5 else "")
        )
    header = _json_object(_b64url_decode(parts[0], "header"), "header")
    try:
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    except UnicodeEncodeError:
        raise TokenMalformed("the payload is not base64url") from None
    return Parsed(header, parts[1], signing_input, _b64url_decode(parts[2], "signature"))


def header_problem(header: Mapping[str, Any]) -> str | None:
    for name in REFUSED_HEADERS:
        if name in header:
            return f"the header carries {name!r}; authctl never fetches or trusts a key named by the token"
    if "crit" in header:
        crit = header["crit"]
        names = ", ".join(quoted(n) for n in crit[:5]) if isinstance(crit, list) else "?"
        return f"the header marks extensions critical ({names}); authctl understands none, so it refuses"
    if "kid" in header and not isinstance(header["kid"], str):
        return "the kid header is not a string"
    if "typ" in header and not isinstance(header["typ"], str):
        return "the typ header is not a string"
    if "b64" in header or "zip" in header:
        return "unencoded (b64) or compressed (zip) payloads are not accepted"
    return None


def token_type(header: Mapping[str, Any]) -> str | None:
    typ = header.get("typ")
    if not isinstance(typ, str):
        return None
    typ = typ.lower()
    if typ.startswith("application/"):
        typ = typ[len("application/"):]
    return TYPE_OF.get(typ)


def payload(parsed: Parsed) -> dict[str, Any]:
    """The payload's JSON object: decode it only once the signature is known good (or to inspect)."""
    return _json_object(_b64url_decode(parsed.payload_segment, "payload"), "payload")
