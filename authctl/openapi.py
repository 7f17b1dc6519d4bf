"""An app's OpenAPI document as authctl reads it: operations, their security and scopes.

For an app authctl can reach only over HTTP (``matrix --url URL --openapi``), the
document is the route table: each operation's ``security`` (the document's
global ``security`` when the operation has none; ``security: []`` is public),
the scopes it names, the scheme definitions under ``components.securitySchemes``,
and path-level parameters merged with the operation's own.

The document is hostile until proven otherwise: a size limit (read as a stream,
never whole), invalid or too deeply nested JSON, too many operations, and
``$ref`` chains that loop or leave the document are each one ``InvalidInput``
line, in bounded time and memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .errors import InvalidInput

if TYPE_CHECKING:
    from .routes import Native

MAX_BYTES = 10 * 1024 * 1024
MAX_OPERATIONS = 2000
MAX_REF_HOPS = 32
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the server prefix (a relative servers[0].url) included
    parameters: tuple[Mapping[str, Any], ...]
    security: str  # public | secured | optional | undeclared
    native: "Native | None"
    needs_body: bool = False  # a required requestBody: the matrix does not build one, so the cell is not sent

    @property
    def requires(self) -> str:
        if self.native is not None and self.native.schemes:
            return self.native.describe() + (" (optional)" if self.security == "optional" else "")
        return {"public": "public (security: [])", "undeclared": "not declared"}.get(self.security, self.security)


def parse(data: bytes, source: str = "the OpenAPI document") -> dict[str, Any]:
    """The document from bytes: at most ``MAX_BYTES``, a JSON object with ``paths``."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"{source} is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        document = json.loads(data)
    except RecursionError:
        raise InvalidInput(f"{source} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{source} is not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("paths"), Mapping):
        raise InvalidInput(f"{source} has no paths")
    return document


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``node`` with its ``$ref`` chain followed (local references only; a loop or a long chain is refused)."""
    seen: list[str] = []
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise InvalidInput(f"$ref {str(ref)[:60]!r} points outside the document; only local references are read")
        if ref in seen:
            raise InvalidInput(f"recursive $ref: {ref[:60]} refers back to itself")
        if len(seen) >= MAX_REF_HOPS:
            raise InvalidInput(f"$ref chain longer than {MAX_REF_HOPS} at {ref[:60]}")
        seen.append(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                raise InvalidInput(f"$ref {ref[:60]} points at nothing")
            target = target[part]
        node = target
    return node


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every GET/POST/PUT/PATCH/DELETE operation on this server, with its security read."""
    prefix = _server_prefix(document)
    schemes = resolve(document, (document.get("components") or {}).get("securitySchemes") or {})
    if not isinstance(schemes, Mapping):
        schemes = {}
    result: list[Operation] = []
    for template, item in document["paths"].items():
        item = resolve(document, item)
        template = str(template)
        if not isinstance(item, Mapping) or not template.startswith("/") or template.startswith("//"):
            continue  # only paths on this server: a URL here would carry the tokens elsewhere
        shared = _parameters(document, item.get("parameters"))
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operation = resolve(document, operation)
            if not isinstance(operation, Mapping):
                continue
            if len(result) >= MAX_OPERATIONS:
                raise InvalidInput(f"the OpenAPI document has more than {MAX_OPERATIONS} operations; "
                                   "check a smaller part of the app")
            own = _parameters(document, operation.get("parameters"))
            merged = {(p.get("name"), p.get("in")): p for p in shared}
            merged.update({(p.get("name"), p.get("in")): p for p in own})  # the operation's own win
            declared = operation.get("security", document.get("security"))
            security, native = _security(document, schemes, declared)
            body = resolve(document, operation.get("requestBody"))
            needs_body = isinstance(body, Mapping) and bool(body.get("required"))
            result.append(Operation(method.upper(), prefix + template, tuple(merged.values()), security, native,
                                    needs_body))
    return result


def _server_prefix(document: Mapping[str, Any]) -> str:
    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], Mapping):
        url = servers[0].get("url")
        if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
            return url.rstrip("/")
    return ""


def _parameters(document: Mapping[str, Any], raw: Any) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for entry in raw if isinstance(raw, list) else []:
        entry = resolve(document, entry)
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            schema = resolve(document, entry.get("schema") or {})
            found.append({**entry, "schema": schema if isinstance(schema, Mapping) else {}})
    return found


def _security(document: Mapping[str, Any], schemes: Mapping[str, Any], declared: Any) -> tuple[str, "Native | None"]:
    """(public | secured | optional | undeclared, the schemes as ``routes.Native``).

    Several requirement objects are read as all required, which is what FastAPI means by them (one
    per security dependency, each enforced). OpenAPI itself means alternatives; for a document
    meant that way, a caller with only one of them is predicted refused, and the live answer then
    shows as a disagreement, never as a false agreement."""
    from .routes import Native, Scheme

    if declared is None:
        return "undeclared", None
    if not isinstance(declared, list):
        raise InvalidInput("an operation's security is not a list")
    if not declared:
        return "public", None
    optional = any(isinstance(entry, Mapping) and not entry for entry in declared)
    found: dict[str, Scheme] = {}
    for entry in declared:
        for name, scopes in (entry.items() if isinstance(entry, Mapping) else ()):
            definition = resolve(document, schemes.get(name))
            if not isinstance(definition, Mapping):
                raise InvalidInput(f"security names {str(name)[:40]!r}, which components.securitySchemes does not define")
            scope_list = tuple(str(s) for s in scopes) if isinstance(scopes, list) else ()
            previous = found.get(name)
            if previous is not None:
                scope_list = previous.scopes + tuple(s for s in scope_list if s not in previous.scopes)
            found[str(name)] = _scheme(str(name), definition, scope_list, auto_error=not optional)
    if not found:
        return "public", None
    all_scopes: list[str] = []
    for scheme in found.values():
        all_scopes += [s for s in scheme.scopes if s not in all_scopes]
    native = Native(tuple(found.values()), tuple(all_scopes), reads_scopes=bool(all_scopes))
    return ("optional" if optional else "secured"), native


def _scheme(name: str, definition: Mapping[str, Any], scopes: tuple[str, ...], *, auto_error: bool) -> Any:
    """A ``routes.Scheme`` from a securitySchemes entry (``openapi:`` classes: no FastAPI version quirks apply)."""
    from .routes import Scheme

    kind = str(definition.get("type", ""))
    if kind == "apiKey":
        return Scheme(name, "openapi:apiKey", "apiKey", str(definition.get("in", "header")), str(definition.get("name", "")),
                      auto_error, scopes=scopes)
    if kind == "http":
        return Scheme(name, "openapi:http", "http", "header", "Authorization", auto_error,
                      str(definition.get("scheme", "")).lower() or None, scopes=scopes)
    if kind == "oauth2":
        password = (definition.get("flows") or {}).get("password") if isinstance(definition.get("flows"), Mapping) else None
        token_url = password.get("tokenUrl") if isinstance(password, Mapping) else None
        return Scheme(name, "OAuth2PasswordBearer" if token_url else "openapi:oauth2", "oauth2", "header", "Authorization",
                      auto_error, "bearer", token_url=str(token_url) if token_url else None, scopes=scopes)
    if kind == "openIdConnect":
        return Scheme(name, "openapi:openIdConnect", "openIdConnect", "header", "Authorization", auto_error, scopes=scopes)
    return Scheme(name, f"openapi:{kind[:20]}", "custom", "header", "Authorization", auto_error, scopes=scopes, custom=True)


def sample(parameter: Mapping[str, Any]) -> str | None:
    """A value for a path parameter: its example, else a valid one of its schema's type
    (``routes.sample_for_schema``; ``None``: nothing valid is known, give ``--param``)."""
    from .routes import sample_for_schema

    example = parameter.get("example")
    if example is not None and not isinstance(example, (dict, list)):
        return str(example)
    return sample_for_schema(parameter.get("schema") or {})
