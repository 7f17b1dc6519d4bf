"""All terminal output: Rich for people, JSON for scripts.

Data goes to stdout; messages (errors, warnings, hints) go to stderr. Untrusted
strings (names, claims) are always wrapped in ``Text`` so they are never parsed
as Rich markup.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .config import Settings
    from .demo import Walkthrough
    from .groups import Group
    from .matrix import Cell, MatrixResult
    from .policyfile import Plan
    from .probe import Probe
    from .routes import RouteInfo
    from .store import Access, AuditEntry, Permission, Role, SigningKey, User
    from .testing import Report
    from .tokens import Identity, Inspection, IssuedToken, Revocation
    from .whocan import WhoCan


#: The width of output that goes to a file or a pipe (no COLUMNS): as wide as the data, never cut at 80.
PIPED_WIDTH = 100_000
#: Rules and panels span the console: piped, they stop here.
FRAME_WIDTH = 100


def _console(stream: Any, soft_wrap: bool = False) -> "Console":
    import os

    from rich.console import Console

    isatty = getattr(stream, "isatty", None)
    piped = not (callable(isatty) and isatty()) and not os.environ.get("COLUMNS")
    return Console(file=stream, highlight=False, soft_wrap=soft_wrap, width=PIPED_WIDTH if piped else None)


def _piped(console: "Console") -> bool:
    return console.width >= PIPED_WIDTH


def _frame_width(console: "Console") -> int:
    """Panels and rules: the terminal's width, or FRAME_WIDTH when piped."""
    return min(console.width, FRAME_WIDTH)


def out() -> "Console":
    """A console on the current stdout (tests swap the stream, so none is cached)."""
    return _console(sys.stdout)


def err() -> "Console":
    """Messages never wrap: an error stays one line, whatever the terminal width."""
    return _console(sys.stderr, soft_wrap=True)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)}
#: Bidi embedding, override and isolate controls, and the line and paragraph separators:
#: they reorder or break what a reader sees (a name that displays as another).
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def printable(value: Any) -> str:
    """Control characters shown escaped: a claim or a log entry can never move the cursor,
    set the window title, clear the screen or reverse the text around it."""
    return ("" if value is None else str(value)).translate(_CONTROL)


def oneline(value: Any) -> str:
    return printable(value).replace("\n", "\\n")


def text(value: Any, style: str = "") -> "Text":
    from rich.text import Text

    return Text(printable(value), style=style)


#: Characters ``json.dumps(ensure_ascii=False)`` leaves raw that a terminal acts on or a
#: reader is fooled by: DEL and C1 controls (U+009B is a one-byte CSI), the line and
#: paragraph separators, and the bidi embedding, override and isolate controls.
_JSON_UNSAFE = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def emit_json(data: Any) -> None:
    """Indented JSON with readable non-ASCII text, but no raw control character.

    json escapes U+0000-U+001F itself; every character of :data:`_JSON_UNSAFE` is written
    as ``\\uXXXX`` too. JSON text is ASCII outside its strings, so each such character is
    inside a string, where the escape parses back to the same value.
    """
    import json

    try:
        encoded = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a token claim such as 1e400 decodes to inf, which JSON cannot carry
        encoded = json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(encoded.translate(_JSON_UNSAFE) + "\n")


def _finite(value: Any) -> Any:
    """``value`` with every infinite float written as a string ('inf', '-inf')."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class Output:
    """The one place a command's result becomes output, so no command branches on --json.

    A command hands over its data (a JSON-ready value) and, for people, how to show
    it; ``--json`` (before or after the command) picks the JSON.
    """

    def __init__(self) -> None:
        self.json = False

    def emit(self, data: Any, human: "Callable[[Any], object] | None" = None) -> None:
        """JSON of ``data`` under --json (or when there is no human form), else ``human(data)`` (its result unused)."""
        if self.json or human is None:
            emit_json(data)
        else:
            human(data)

    def format(self, chosen: str) -> str:
        """A --format choice: --json wins over it."""
        return "json" if self.json else chosen


output = Output()


def emit(data: Any, human: "Callable[[Any], object] | None" = None) -> None:
    output.emit(data, human)


def emit_line(line: str) -> None:
    sys.stdout.write(line + "\n")


def error(message: str) -> None:
    """The one-line error; the message itself is printed literally."""
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    err().print(text("error: ", "bold red") + text(first_line))


def warn(message: str) -> None:
    err().print(text("warning: ", "bold yellow") + text(message))


def note(message: str) -> None:
    err().print(text(message, "dim"))


def success(message: str) -> None:
    err().print(text("✓ ", "green") + text(message))


def _table(*columns: str, title: str | None = None, short: Iterable[str] = ()) -> "Table":
    """A table whose cells fold (never end in "…"); ``short`` columns (a status, a date) never wrap."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    keep = set(short)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in keep)
    return table


_WORD = None


def wrap_words(message: str, width: int, keep: Iterable[str] = ()) -> str:
    """``message`` in lines of at most ``width`` cells, broken only where it has a space, never inside
    a `quoted command` or a ``keep`` phrase (a command split over two lines cannot be pasted)."""
    import re

    from rich.cells import cell_len

    global _WORD
    if _WORD is None:
        _WORD = re.compile(r"( *)(`[^`]*`|[^ ]+)")
    protected = message
    for phrase in keep:
        protected = protected.replace(phrase, phrase.replace(" ", "\x00"))
    lines: list[str] = []
    current = ""
    for space, word in _WORD.findall(protected):
        word = word.replace("\x00", " ")
        if current and cell_len(current) + len(space) + cell_len(word) > width:
            lines.append(current)
            current = word
        else:
            current += space + word if current else word
    lines.append(current)
    return "\n".join(lines)


def prose(value: str, style: str = "", indent: int = 0, keep: Iterable[str] = (), console: "Console | None" = None) -> Any:
    """Narration as Text, wrapped at words for a console (``indent``: what a tree or margin takes)."""
    console = console or out()
    width = max(20, console.width - indent)
    return text(value if _piped(console) else wrap_words(printable(value), width, keep), style)


def banner(message: str, keep: Iterable[str] = ()) -> None:
    """A dim line on stderr for people (the serve banner): wrapped at words on a terminal, commands kept whole."""
    console = err()
    if console.is_terminal:
        console.print(text(wrap_words(printable(message), max(20, console.width), keep), "dim"))
    else:
        console.print(text(message, "dim"))


# --------------------------------------------------------------------------- users


def user_json(user: "User", access: "Access | None" = None, login: tuple[int, bool] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "uid": user.uid,
        "status": user.status,
        "roles": list(user.roles),
        "token_version": user.token_version,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "password_changed_at": user.password_changed_at,
        "last_login_at": user.last_login_at,
    }
    if access is not None:
        data["all_roles"] = [{"role": role, "via": via} for role, via in access.roles.items()]
        data["permissions"] = [{"permission": p, "granted_by": role} for p, role in sorted(access.permissions.items())]
    if login is not None:
        data["failed_logins"], data["locked"] = login
    return data


def users_table(users: Iterable["User"]) -> None:
    table = _table("username", "status", "roles", "created")
    for user in users:
        table.add_row(
            text(user.username), text(user.status, "green" if not user.disabled else "red"),
            text(", ".join(user.roles) or "—"), text(user.created_at),
        )
    out().print(table)


def user_detail(user: "User", access: "Access", login: tuple[int, bool]) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    status = text(user.status, "green" if not user.disabled else "bold red")
    if login[1]:
        status.append(" (locked: `authctl user unlock`)", style="bold red")
    rows = [
        ("user", text(user.username)), ("uid", text(user.uid)), ("status", status),
        ("failed logins", text(login[0])), ("token version", text(user.token_version)),
        ("created", text(user.created_at)), ("password changed", text(user.password_changed_at or "never")),
        ("last login", text(user.last_login_at or "never")),
    ]
    for label, value in rows:
        grid.add_row(label, value)
    out().print(grid)
    roles = _table("role", "how", title="Roles")
    for role, via in access.roles.items():
        roles.add_row(text(role), text("assigned directly" if via is None else f"inherited via {via}", "dim" if via else ""))
    out().print(roles if access.roles else text("Roles: none", "yellow"))
    perms = _table("permission", "granted by role", title="Effective permissions")
    for permission, role in sorted(access.permissions.items()):
        perms.add_row(text(permission), text(role))
    out().print(perms if access.permissions else text("Effective permissions: none", "yellow"))


# --------------------------------------------------------------------------- roles, permissions


def role_json(role: "Role", effective: dict[str, str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": role.name, "description": role.description, "permissions": list(role.permissions),
        "inherits": list(role.inherits), "members": role.members, "created_at": role.created_at,
    }
    if effective is not None:
        data["effective_permissions"] = [{"permission": p, "granted_by": r} for p, r in sorted(effective.items())]
    return data


def roles_table(roles: Iterable["Role"]) -> None:
    table = _table("role", "permissions", "inherits", "members")
    for role in roles:
        table.add_row(
            text(role.name), text(", ".join(role.permissions) or "—"), text(", ".join(role.inherits) or "—"),
            text(role.members),
        )
    out().print(table)


def role_detail(role: "Role", effective: dict[str, str]) -> None:
    out().print(text(role.name, "bold") + text(f"  {role.description}" if role.description else ""))
    out().print(text(f"inherits: {', '.join(role.inherits) or 'nothing'}   members: {role.members}"))
    table = _table("permission", "granted by role", title="Effective permissions")
    for permission, granted_by in sorted(effective.items()):
        table.add_row(text(permission), text(granted_by if granted_by != role.name else f"{granted_by} (own)"))
    out().print(table if effective else text("Effective permissions: none", "yellow"))


def permission_json(permission: "Permission", routes: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"permission": permission.name, "roles": list(permission.roles)}
    if routes is not None:
        data["routes"] = routes
    return data


def permissions_table(permissions: Iterable["Permission"], routes: dict[str, list[str]] | None = None) -> None:
    columns = ["permission", "granted directly to"] + (["required by routes"] if routes is not None else [])
    table = _table(*columns)
    for permission in permissions:
        row = [text(permission.name), text(", ".join(permission.roles) or "—")]
        if routes is not None:
            row.append(text(", ".join(routes.get(permission.name, [])) or "—"))
        table.add_row(*row)
    out().print(table)


# --------------------------------------------------------------------------- log, config


def audit_json(entry: "AuditEntry") -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at, "actor": entry.actor, "action": entry.action,
            "target": entry.target, "details": entry.details}


def _detail(value: Any) -> str:
    """A log detail as people write it: ``roles=student, admin``, not a Python repr."""
    import json

    if isinstance(value, (list, tuple)):
        return ", ".join(_detail(item) for item in value) or "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def audit_table(entries: Iterable["AuditEntry"]) -> None:
    table = _table("time", "actor", "action", "target", "details", short=("time", "action"))
    for entry in entries:
        details = "; ".join(f"{k}={_detail(v)}" for k, v in entry.details.items())
        table.add_row(*(text(oneline(v)) for v in (entry.at, entry.actor, entry.action, entry.target, details)))
    out().print(table)


def settings_table(settings: "Settings", sources: dict[str, str]) -> None:
    """Each setting with where its value comes from (``config.sources``)."""
    from .config import SPECS, format_duration

    table = _table("setting", "value", "source", "meaning")
    for key, value in settings.as_dict().items():
        shown = format_duration(value) if key.endswith(("_ttl", "leeway")) else value
        source = sources[key]
        table.add_row(text(key), text(shown), text(source, "dim"), text(SPECS[key].help, "dim"))
    out().print(table)


# --------------------------------------------------------------------------- keys, tokens


def key_json(key: "SigningKey") -> dict[str, Any]:
    """A signing key without any private material."""
    return {"kid": key.kid, "alg": key.alg, "status": key.status, "created_at": key.created_at,
            "retired_at": key.retired_at, "fingerprint": key.fingerprint}


_KEY_STYLE = {"active": "bold green", "verifying": "yellow", "retired": "dim"}


def keys_table(keys: Iterable["SigningKey"]) -> None:
    table = _table("kid", "alg", "status", "created", "fingerprint", short=("kid", "alg", "status", "created"))
    for key in keys:
        table.add_row(
            text(key.kid), text(key.alg), text(key.status, _KEY_STYLE.get(key.status, "")),
            text(key.created_at[:10]), text(key.fingerprint, "dim"),
        )
    out().print(table)


def targets_table(rows: Iterable[tuple[str, str, str, str]]) -> None:
    table = _table("target", "mode", "sends", "created")
    for name, mode, sends, created in rows:
        table.add_row(text(name, "bold"), text(mode), text(sends), text(created[:10], "dim"))
    out().print(table)


def target_detail(data: dict[str, Any], sends: str) -> None:
    """A target's configuration from ``Target.as_dict`` (which holds no secret)."""
    grid = _table("field", "value", title=f"target {data['name']}")
    grid.add_row(text("mode"), text(data["mode"]))
    grid.add_row(text("sends"), text(sends))
    for key in ("key", "alg", "kid", "scope_claim", "iss", "aud", "ttl", "token_url"):
        if data.get(key) not in (None, "", {}):
            grid.add_row(text(key), text(str(data[key])))
    for key in ("sub", "scopes", "claims"):
        if data.get(key):
            grid.add_row(text(key), text(json.dumps(data[key], ensure_ascii=False)))
    if data.get("passwords_for"):
        grid.add_row(text("passwords for"), text(", ".join(data["passwords_for"]) + " (stored, not shown)"))
    if data.get("weak_secret"):
        grid.add_row(text("warning"), text("weak secret accepted with --unsafe-weak-secret", "bold yellow"))
    out().print(grid)


def _time_fields(claims: dict[str, Any], now: int) -> dict[str, Any]:
    from .clock import format_utc, relative

    fields_: dict[str, Any] = {}
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            fields_[name] = {"utc": format_utc(value), "relative": relative(value, now)}
    return fields_


def issued_json(issued: "IssuedToken", now: int) -> dict[str, Any]:
    from .clock import format_utc

    return {
        "token": issued.token, "token_type": issued.token_type, "header": issued.header, "claims": issued.claims,
        "expires_at": issued.expires_at, "expires_at_utc": format_utc(issued.expires_at),
        "expires_in": issued.expires_at - now,
    }


def identity_json(identity: "Identity") -> dict[str, Any]:
    return {
        "valid": True, "username": identity.user.username, "uid": identity.user.uid,
        "token_type": identity.token_type, "kid": identity.kid, "jti": identity.jti,
        "expires_at": identity.expires_at, "roles": list(identity.user.roles), "claims": identity.claims,
    }


def inspection_json(inspection: "Inspection", now: int) -> dict[str, Any]:
    return {
        "verified": inspection.verified, "valid": inspection.valid, "keys": inspection.key_source,
        "header": inspection.header, "claims": inspection.claims,
        "times": _time_fields(inspection.claims or {}, now),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in inspection.checks],
        "failing": [c.name for c in inspection.failing],
        "warnings": list(inspection.warnings),
    }


def _members_grid(members: dict[str, Any], now: int) -> Any:
    import json

    from rich.table import Table

    from .clock import format_utc, relative

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in members.items():
        shown = text(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else oneline(value))
        if name in ("iat", "nbf", "exp") and isinstance(value, (int, float)) and not isinstance(value, bool):
            word = {"exp": ("expires in {}", "expired {} ago", "expires now"),
                    "nbf": ("valid in {}", "valid since {} ago", "valid from now"),
                    "iat": ("issued in {} (in the future!)", "issued {} ago", "issued just now")}[name]
            shown.append(f"  {format_utc(value)}, {relative(value, now, *word)}", style="cyan")
        grid.add_row(text(name), shown)
    return grid


_INSPECT_MARK = {True: ("✓", "green"), False: ("✗", "bold red"), None: ("–", "dim")}


def inspection_report(inspection: "Inspection", now: int) -> None:
    """Header, claims (times in UTC and relative), every check, warnings, and the verdict."""
    from rich.panel import Panel

    console = out()
    if not inspection.verified and inspection.header is not None:
        console.print(Panel(
            text("UNVERIFIED — no known key verified this signature. Anyone could have written these "
                 "claims: do not trust them.", "bold"),
            title="UNVERIFIED", border_style="bold red", style="red",
        ), width=_frame_width(console))
    if inspection.header is not None:
        console.print(text("Header", "bold underline"))
        console.print(_members_grid(inspection.header, now))
    if inspection.claims is not None:
        console.print(text("Claims", "bold underline"))
        console.print(_members_grid(inspection.claims, now))
    console.print(text("Checks", "bold underline"))
    table = _table("", "check", "detail")
    for check in inspection.checks:
        mark, style = _INSPECT_MARK[check.ok]
        table.add_row(text(mark, style), text(check.name), text(check.detail, "red" if check.ok is False else ""))
    console.print(table)
    for warning in inspection.warnings:
        console.print(text("warning: ", "bold yellow") + text(warning))
    failing = [c.name for c in inspection.failing]
    if inspection.valid:
        verdict = text("VALID", "bold green")
        if failing:
            verdict.append(f" (informational: {', '.join(failing)})", style="yellow")
    else:
        verdict = text("INVALID", "bold red")
        if failing:
            verdict.append(f": {len(failing)} failing check{'s' if len(failing) != 1 else ''}: {', '.join(failing)}")
    console.print(text("Verdict: ", "bold") + verdict)


def revocation_json(revocation: "Revocation") -> dict[str, Any]:
    from .clock import format_utc

    return {"jti": revocation.jti, "revoked": revocation.newly or not revocation.already_expired,
            "newly_revoked": revocation.newly, "already_expired": revocation.already_expired,
            "until": revocation.expires_at, "until_utc": format_utc(revocation.expires_at)}


# --------------------------------------------------------------------------- routes


def routes_table(infos: Iterable["RouteInfo"]) -> None:
    """Method, path and what each route requires; routes with no requirement flagged."""
    styles = {"public": "green", "authenticated": "cyan", "scopes": "cyan", "guarded": "magenta", "permission": "",
              "open": "bold yellow"}
    console = out()
    listed = list(infos)
    # `kind` repeats `requires` (which is styled by kind): the first column to go when narrow
    widest = max((len(info.method) + len(info.path) + len(info.describe()) + len(f" — {info.flag}" if info.flag else "")
                  + len(info.name or "") for info in listed), default=0)
    with_kind = _piped(console) or widest + 14 + 16 <= console.width
    table = _table("method", "path", "requires", *(["kind"] if with_kind else []), "name", short=("method", "kind"))
    for info in listed:
        kind = info.kind
        requires = text(info.describe(), styles.get(kind, ""))
        if info.flag:
            requires.append(f" — {info.flag}", style="yellow")
        table.add_row(
            text(info.method), text(info.path), requires,
            *([text(kind + ("?" if kind == "open" else ""), styles.get(kind, "dim") or "dim")] if with_kind else []),
            text(info.name or "", "dim"),
        )
    console.print(table)


# --------------------------------------------------------------------------- check


_MARK = {True: ("✓", "green"), False: ("✗", "bold red"), None: ("·", "dim")}
#: One style and one banner per ``policy.Outcome`` value: the decision, live answers and cells all use them.
_OUTCOME_STYLE = {"allowed": "green", "unauthenticated": "yellow", "forbidden": "red", "no_route": "magenta",
                  "client_error": "bold red", "server_error": "bold red", "not_sent": "dim", "error": "bold red",
                  "undecided": "magenta", "redirected": "bold yellow"}
_VERDICT_BANNER = {"allowed": "ALLOWED (200-class)", "unauthenticated": "401 UNAUTHENTICATED", "forbidden": "403 FORBIDDEN",
                   "undecided": "UNDECIDED OFFLINE"}


def _mark(ok: bool | None, label: str, detail: str = "") -> "Text":
    symbol, style = _MARK[ok]
    line = text(f"{symbol} ", style) + text(label, "bold" if ok is False else "")
    if detail:
        line.append(f"  {detail}", style="dim" if ok is not False else "")
    return line


def check_report(data: dict[str, Any]) -> None:
    """The two-phase trace of ``authctl check`` (from ``explain.check_json``) and the verdict."""
    from rich.tree import Tree

    request, route, authn, authz, verdict = (
        data["request"], data["route"], data["authentication"], data["authorization"], data["verdict"]
    )
    params = ", ".join(f"{k}={v}" for k, v in route["path_params"].items())
    title = text(f"{request['method']} {request['path']}", "bold") + text(
        f"  →  route {route['method']} {route['path']}" + (f" ({params})" if params else ""), "dim"
    )
    tree = Tree(title)
    if data.get("native") is not None:
        _native_report(tree, data)
        out().print(tree)
        return
    phase1 = tree.add(text("1  Authentication — who are you?", "bold cyan"))
    subject = authn["subject"]
    if subject["kind"] == "user":
        phase1.add(_mark(None, f"token minted for {subject['label']}", f"active key {subject['kid']}"))
    elif subject["kind"] == "token":
        phase1.add(_mark(None, "the given token"))
    if not authn["checked"]:
        phase1.add(_mark(None, "not needed: the route is public" if not verdict["unprotected"] else
                         "not checked: nothing reads credentials on this route"))
    elif subject["kind"] == "anonymous":
        phase1.add(_mark(False, "no bearer token", "the request carries no Authorization header"))
    else:
        for check in authn["checks"]:
            phase1.add(_mark(check["ok"], check["name"], check["detail"]))
    if authn["checked"]:
        if authn["identity"]:
            phase1.add(text("→ authenticated as ", "green") + text(authn["identity"]["username"], "bold green"))
        else:
            phase1.add(text("→ not authenticated: ", "yellow") + text(authn["reason"]))
    phase2 = tree.add(text("2  Authorization — what may you do?", "bold cyan"))
    phase2.add(text("requirement: ", "dim") + text(verdict["unprotected"] and "none (unprotected?)" or authz["requires"], "bold"))
    if authz["roles"]:
        roles = ", ".join(r["role"] + ("" if r["via"] is None else f" (via {r['via']})") for r in authz["roles"])
        phase2.add(text("roles: ", "dim") + text(roles))
        perms = ", ".join(f"{p['permission']} ({p['granted_by']})" for p in authz["permissions"]) or "none"
        phase2.add(text("effective permissions: ", "dim") + text(perms))
    elif authn["identity"] and authz["requirement"]["kind"] == "permission":
        phase2.add(text("roles: none", "yellow"))
    for grant in authz["granted"]:
        phase2.add(_mark(True, grant["permission"], f"granted by role {grant['granted_by']}"))
    for missing in authz["missing"]:
        phase2.add(_mark(False, missing, "missing"))
    if authz["owner_match"]:
        phase2.add(_mark(True, "owner", "the path names the caller's own record"))
    outcome = verdict["outcome"]
    if outcome == "unauthenticated":
        phase2.add(_mark(None, "not reached: authentication failed first"))
    label = _VERDICT_BANNER.get(outcome, outcome.upper())
    phase3 = tree.add(text("3  Verdict  ", "bold cyan") + text(label, "bold " + _OUTCOME_STYLE.get(outcome, "")))
    phase3.add(prose(verdict["reason"], indent=8))
    if verdict["unprotected"]:
        phase3.add(text(f"⚠ unprotected? {route.get('flag') or 'nothing reads credentials here'}", "bold yellow"))
    if verdict["hint"]:
        hint = prose("hint: " + verdict["hint"], indent=8)
        hint.stylize("bold", 0, 5)
        phase3.add(hint)
    _live_report(phase3, data.get("live"))
    out().print(tree)


def _live_report(phase3: Any, live: dict[str, Any] | None) -> None:
    """The live answer under the verdict: agreement (none when offline was undecided), why a 4xx/5xx is no answer, lints."""
    if live:
        agree = live["agrees"]
        line = text(f"live ({live['source']}): ", "bold") + text(f"{live['status']} {live['outcome']}",
                                                                  _OUTCOME_STYLE.get(live["outcome"], ""))
        if agree is None:
            line.append("  (the real answer: offline could not decide)", style=_OUTCOME_STYLE["undecided"])
        else:
            line.append("  ✓ agrees" if agree else "  ✗ DISAGREES with the offline decision",
                        style="green" if agree else "bold red")
        phase3.add(line)
        if agree is False and live["outcome"] == "no_route":
            phase3.add(text("⚠ a 404/405 live: the server has no such route (another app?), or the handler found no such record", "yellow"))
        elif agree is False and live["outcome"] in ("client_error", "server_error"):
            phase3.add(text("⚠ a 4xx that is not a 401/403: the handler or the validator refused the request, "
                            "not the verdict checked offline (authctl sends no request body or query)", "yellow")
                       if live["outcome"] == "client_error" else text("⚠ the server failed (5xx): a crash is never an answer", "yellow"))
        elif live["outcome"] == "redirected":
            to = (live.get("headers") or {}).get("location")
            phase3.add(text(f"⚠ a redirect{f' to {to}' if to else ''}, not followed: it is no answer about access"
                            " (a login redirect is how a session-auth app refuses)", "yellow"))
        for problem in live["lints"]:
            phase3.add(text(f"⚠ {problem}", "yellow"))


def _native_report(tree: Any, data: dict[str, Any]) -> None:
    """The trace of a route with the app's own security: schemes, credential, scopes, guards."""
    native, verdict, subject = data["native"], data["verdict"], data["authentication"]["subject"]
    steps = native["steps"]
    phase1 = tree.add(text("1  Authentication — who are you?", "bold cyan"))
    phase1.add(_mark(None, subject["label"], f"target {native['target']}" if native["target"] else "no target"))
    for step in steps:
        if not step["name"].startswith(("scope", "guard")):
            phase1.add(_mark(step["ok"], step["name"], step["detail"]))
    phase2 = tree.add(text("2  Authorization — what may you do?", "bold cyan"))
    phase2.add(text("requirement: ", "dim") + text(data["route"]["requires"], "bold"))
    for step in steps:
        if step["name"].startswith(("scope", "guard")):
            phase2.add(_mark(step["ok"], step["name"], step["detail"]))
    outcome = verdict["outcome"]
    label = _VERDICT_BANNER.get(outcome, outcome.upper())
    phase3 = tree.add(text("3  Verdict  ", "bold cyan") + text(label, "bold " + _OUTCOME_STYLE.get(outcome, "")))
    phase3.add(prose(verdict["reason"], indent=8))
    if native["fastapi_note"]:
        phase3.add(prose(f"⚠ {native['fastapi_note']}", "yellow", indent=8))
    if verdict["hint"]:
        hint = prose("hint: " + verdict["hint"], indent=8)
        hint.stylize("bold", 0, 5)
        phase3.add(hint)
    _live_report(phase3, data.get("live"))


# --------------------------------------------------------------------------- matrix, probe


def _cell_text(cell: "Cell") -> "Text":
    """``Cell.summary`` coloured: outcomes in their colours, agreement green, disagreement red."""
    def style(kind: str) -> str:
        return {"offline-undecided": "bold " + _OUTCOME_STYLE["undecided"], "agrees": "green",
                "disagrees": "bold red", "note": "dim"}.get(kind) or _OUTCOME_STYLE.get(kind, "")

    (first, kind), *rest = cell.summary()
    shown = text(first, style(kind))  # the first piece's colour is the cell's
    for piece, kind in rest:
        shown.append(piece, style=style(kind))
    return shown


def _column_header(name: str, groups: "list[Group] | None") -> str:
    """A role-set column names how many users it stands for."""
    size = next((len(g.members) for g in groups or [] if g.name == name), 1)
    return f"{name} ({size})" if size > 1 else name


#: Piped output has no width: a matrix wider than this is listed as differences instead.
PIPED_MATRIX_WIDTH = 240


def matrix_table(cells: "list[Cell]", users: list[str], groups: "list[Group] | None" = None) -> None:
    """Routes × columns; when that would not fit (the terminal, or PIPED_MATRIX_WIDTH piped),
    the list of differences: per route, each outcome and who gets it."""
    console = out()
    headers = [_column_header(u, groups) for u in users]
    rows: dict[tuple[str, str], list[Any]] = {}
    for cell in cells:
        rows.setdefault((cell.route.method, cell.route.path), []).append(cell)
    lines = []
    for (method, path), row in rows.items():
        route = row[0].route
        requires = text(route.requires, "bold yellow" if route.unprotected else "dim")
        if route.unprotected:
            requires.append(" ⚠", style="bold yellow")
        by_user = {cell.user: cell for cell in row}
        lines.append((text(f"{method} {path}"), requires, [_cell_text(by_user[u]) if u in by_user else text("") for u in users]))
    route_width = max((len(line[0]) for line in lines), default=5)
    requires_width = max((len(line[1]) for line in lines), default=8)
    # a header folds down to 10; a cell ("200 → 422 ✗") never does; route and requires fold down to their minimum
    columns = [max(min(len(header), 10), *(len(line[2][i]) for line in lines)) for i, header in enumerate(headers)]
    route_min, requires_min = min(route_width, 20), min(requires_width, 14)
    grid = sum(columns) + 3 * len(columns) + 1
    limit = PIPED_MATRIX_WIDTH if _piped(console) else console.width
    with_requires = route_min + requires_min + 6 + grid <= limit
    if not with_requires and (route_min + 3 + grid > limit and len(users) > 1):
        console.print(_matrix_differences(lines, headers, route_min, limit))
        return
    natural = route_width + requires_width + 6 + sum(max(len(h), w) + 3 for h, w in zip(headers, columns)) + 1
    route_w = requires_w = None  # natural widths when it fits; else exact ones (Rich alone would crop the table)
    if natural > limit:
        room = limit - grid - (6 if with_requires else 3)
        requires_w = min(requires_width, max(requires_min, room - route_width)) if with_requires else 0
        route_w = max(route_min, room - requires_w)
    table = _table()
    table.add_column("route", overflow="fold", min_width=route_min, width=route_w)
    if with_requires:  # when narrow, the column the route's name and `authctl routes` repeat goes first
        table.add_column("requires", overflow="fold", min_width=requires_min, width=requires_w)
    for header, width in zip(headers, columns):  # narrow: long headers fold, so the routes keep their room
        table.add_column(header, overflow="fold", min_width=width, max_width=width if natural > limit else None)
    for route_text, requires, shown in lines:
        table.add_row(route_text, *([requires] if with_requires else []), *shown)
    console.print(table)


def _matrix_differences(lines: list[tuple[Any, Any, list[Any]]], headers: list[str], route_min: int, limit: int) -> Any:
    """Each route once per distinct outcome, with the columns that get it ("everyone" when all do)."""
    wide = limit >= 100
    outcome_w = max(7, *(len(cell) for line in lines for cell in line[2]))
    route_w = min(max((len(line[0]) for line in lines), default=5), max(route_min, limit // 3))
    requires_w = min(max((len(line[1]) for line in lines), default=8), 24) if wide else 0
    used = route_w + outcome_w + (requires_w + 3 if wide else 0) + 3 * 3 + 1
    table = _table(title="outcome per route (too many columns for a grid)")
    table.add_column("route", overflow="fold", width=route_w)
    if wide:
        table.add_column("requires", overflow="fold", width=requires_w)
    table.add_column("outcome", overflow="fold", width=outcome_w)
    table.add_column("who", overflow="fold", width=max(8, limit - used - 3) if limit - used - 3 < 200 else None)
    for route_text, requires, shown in lines:
        by_outcome: dict[str, tuple[Any, list[str]]] = {}
        for header, cell_text in zip(headers, shown):
            by_outcome.setdefault(cell_text.plain, (cell_text, []))[1].append(header)
        for index, (cell_text, who) in enumerate(by_outcome.values()):
            first = index == 0
            row = [route_text if first else text("")] + ([requires if first else text("")] if wide else [])
            table.add_row(*row, cell_text, text("everyone" if len(by_outcome) == 1 else ", ".join(who)))
    return table


def matrix_notes(result: "MatrixResult") -> None:
    """What a reader of the matrix must know: where it ran, what was not sent or left out, and what failed."""
    from .policy import Outcome

    cells = result.cells
    if result.target:
        note(f"live requests went to: {result.target}")
    unprotected = sorted({c.route.key for c in cells if c.route.unprotected})
    for route in unprotected:
        warn(f"open? {route}: nothing reads credentials, and it looks like a mistake")
    lints: dict[str, list[str]] = {}
    for cell in cells:
        for problem in ([] if cell.live is None else cell.live.lints):
            lints.setdefault(problem, []).append(f"{cell.route.key} as {cell.user}")
    for problem, where in lints.items():
        warn(f"{problem} ({where[0]}" + (f" and {len(where) - 1} more)" if len(where) > 1 else ")"))
    undecided = [c for c in cells if c.undecided and c.live is None]
    if undecided:
        note(f"{len(undecided)} cell(s) undecided offline (a guard decides in code): add --live or --url")
    reasons: dict[str, int] = {}
    for cell in cells:
        if cell.not_sent is not None:
            reasons[cell.not_sent] = reasons.get(cell.not_sent, 0) + 1
    for reason, count in reasons.items():
        note(f"{count} cell(s) not sent: {reason}")
    for line in result.notes:
        note(line)
    gone = [c for c in cells if c.live is not None and c.live.outcome is Outcome.NO_ROUTE
            and c.decision_outcome not in (None, Outcome.NO_ROUTE)]
    if gone:
        warn(f"{len(gone)} cell(s) answered 404/405 live where the app's routes say the route exists: is the server "
             "running that app (--app), or does the handler lack the record (--param)? For another app use --openapi")
    mismatches = [c for c in cells if c.agrees is False]
    unmet = [c for c in cells if c.meets_expectation is False]
    if mismatches:
        error(f"{len(mismatches)} cell(s) where the live server disagrees with the offline decision")
    if unmet:
        error(f"{len(unmet)} unmet expectation(s)" + (" (a cell that was not sent meets none)"
                                                       if any(c.not_sent for c in unmet) else "")
              + (" (a cell undecided offline meets none)" if any(c.outcome.value == "undecided" for c in unmet) else ""))
    if result.without_expectation:
        error(f"{len(result.without_expectation)} route(s) with no expectation (--strict): "
              + ", ".join(result.without_expectation))


def probe_report(result: "Probe") -> None:
    """The server's own view (the identity endpoint, by the path called), then the request's
    status, key headers and body; every byte from the server is escaped (``printable``)."""
    import json

    from rich.panel import Panel

    whoami, response = result.whoami, result.response
    who = text(f"GET {result.whoami_path} → {whoami.status} {whoami.outcome.value}\n",
               _OUTCOME_STYLE.get(whoami.outcome.value, "bold"))
    if result.problem is None and whoami.status == 200 and isinstance(whoami.body, dict):
        body = whoami.body
        user: dict[str, Any] = body["user"] if isinstance(body.get("user"), dict) else body
        who.append(text(f"user: {user.get('username', '?')}\n"))
        roles = body.get("roles") or user.get("roles")
        if isinstance(roles, list):
            names = ", ".join(str(r) if not isinstance(r, dict) else str(r.get("role", "?")) for r in roles)
            who.append(text(f"roles: {names or 'none'}\n"))
        permissions = body.get("permissions")
        if isinstance(permissions, list):
            names = ", ".join(str(p) if not isinstance(p, dict) else str(p.get("permission", "?")) for p in permissions)
            who.append(text("permissions: " + (names or "none")))
    else:
        who.append(text(whoami.body[:300] if isinstance(whoami.body, str) else json.dumps(whoami.body, ensure_ascii=False)[:300]))
    console = out()
    console.print(Panel(who, title="who the server thinks you are", title_align="left"), width=_frame_width(console))
    for problem in whoami.lints:
        warn(problem)
    if response is None or result.request is None:
        return
    method, path = result.request
    lines = text(f"{method} {path} → {response.status} {response.outcome.value}\n",
                 _OUTCOME_STYLE.get(response.outcome.value, "bold"))
    for name, value in response.headers.items():
        lines.append(text(f"{name}: {value}\n", "dim"))
    body_text = response.body if isinstance(response.body, str) else json.dumps(response.body, ensure_ascii=False)
    lines.append(text(body_text[:1000]))
    console.print(Panel(lines, title="the request", title_align="left"), width=_frame_width(console))
    for problem in response.lints:
        warn(problem)


#: What `authctl demo` suggests next, one command a line.
NEXT_STEPS = (
    "authctl init",
    "authctl role add admin",
    "authctl role grant admin students:delete",
    "authctl user add suman --role admin",
    "# protect routes with Depends(auth.require(\"students:delete\")), see the README",
    "authctl routes --app yourpackage.main:app",
    "authctl check DELETE /student/3 --as suman --app yourpackage.main:app --live",
    "authctl serve --app yourpackage.main:app",
    "authctl probe DELETE /student/3 --as suman --unsafe   # in another terminal",
)


def demo_report(result: "Walkthrough", now: int, keep: str | None) -> None:
    """`authctl demo`: the three checks, the token, the matrix, and what to type next."""
    from rich.rule import Rule

    console = out()
    console.print(Rule(text("authctl demo: authentication (401) vs authorization (403)", "bold")), width=_frame_width(console))
    console.print(prose("The article's learning platform: suman is an admin, rahul a student, priya an instructor. "
                        "Only admins may DELETE /student/{id}. Here is the same request three times, explained:",
                        keep=("DELETE /student/{id}",)))
    for number, (title, step) in enumerate(result.steps, start=1):
        console.print(Rule(text(f"{number}. {title}", "bold cyan"), align="left"), width=_frame_width(console))
        check_report(step.as_dict())
    console.print(Rule(text("4. What is in rahul's token? (authctl token inspect)", "bold cyan"), align="left"), width=_frame_width(console))
    inspection_report(result.inspected, now)
    console.print(Rule(text("5. Everyone × every route (authctl matrix --live)", "bold cyan"), align="left"), width=_frame_width(console))
    matrix_table(result.cells, result.users)
    console.print(Rule(text("Next: the same on your own app", "bold"), align="left"), width=_frame_width(console))
    for line in NEXT_STEPS:  # one command a line, each short enough for 80 columns: never split when pasted
        console.print(text(f"  {line}"), soft_wrap=True)
    if keep:
        kept = f"{keep.rstrip('/')}/authctl.db"
        banner(f"demo database kept in {kept} (try: authctl --db {kept} serve)", keep=(f"authctl --db {kept} serve",))


# --------------------------------------------------------------------------- who-can, role graph


def who_can_report(result: "WhoCan") -> None:
    """The users the route allows, each with the role that grants it; then the roles; then who is refused."""
    console = out()
    console.print(text(f"{result.method} {result.path}", "bold"), text(f"(route {result.route.path}, requires {result.route.describe()})", "dim"))
    console.print(text(f"anonymous: {result.anonymous.outcome.label}", "dim"))
    allowed = result.allowed
    if allowed:
        table = _table("user", "via role", "reason", title=f"{len(allowed)} of {len(result.users)} users allowed")
        for answer in allowed:
            table.add_row(text(answer.username), text(", ".join(answer.via) or "–"), text(answer.reason))
        console.print(table)
    else:
        console.print(text(f"no user is allowed ({len(result.users)} users)", "bold red"))
    roles = "decided by the app's code" if result.roles is None else (", ".join(result.roles) or "none")
    console.print(text("roles that allow it: " + roles, "dim"))
    refused: dict[Any, int] = {}
    for answer in result.users:
        if answer.outcome.value != "allowed":
            refused[answer.outcome] = refused.get(answer.outcome, 0) + 1
    for outcome, count in refused.items():  # an undecided answer is not a refusal: the app's code decides
        console.print(text(f"{'not known' if outcome.value == 'undecided' else 'refused'} ({outcome.label}): {count}", "dim"))


def role_graph_json(roles: Iterable["Role"]) -> dict[str, Any]:
    listed = list(roles)
    return {
        "roles": [{"name": r.name, "permissions": list(r.permissions), "inherits": list(r.inherits)} for r in listed],
        "edges": [{"from": r.name, "to": parent, "kind": "inherits"} for r in listed for parent in r.inherits],
    }


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def role_graph_mermaid(roles: Iterable["Role"]) -> str:
    """A Mermaid flowchart: one node per role (its own permissions inside), an edge per inheritance."""
    lines = ["flowchart TD"]
    listed = list(roles)
    for index, role in enumerate(listed):
        label = "<br/>".join([f"<b>{role.name}</b>", *role.permissions])
        lines.append(f"  r{index}[{_quoted(label)}]")
    ids = {role.name: f"r{index}" for index, role in enumerate(listed)}
    for role in listed:
        for parent in role.inherits:
            lines.append(f"  {ids[role.name]} -->|inherits| {ids[parent]}")
    return "\n".join(lines)


def role_graph_dot(roles: Iterable["Role"]) -> str:
    """Graphviz DOT: one box per role (its own permissions under the name), an edge per inheritance."""
    lines = ["digraph roles {", "  node [shape=box];"]
    listed = list(roles)
    for role in listed:
        label = "\\n".join([role.name, *role.permissions]).replace('"', '\\"')
        lines.append(f'  {_quoted(role.name)} [label="{label}"];')
    for role in listed:
        for parent in role.inherits:
            lines.append(f'  {_quoted(role.name)} -> {_quoted(parent)} [label="inherits"];')
    lines.append("}")
    return "\n".join(lines)


def role_graph_tree(roles: Iterable["Role"]) -> None:
    """Each role that no other role inherits, with what it inherits below it."""
    from rich.tree import Tree

    listed = {role.name: role for role in roles}
    inherited = {parent for role in listed.values() for parent in role.inherits}

    def grow(node: Any, role: "Role", seen: frozenset[str]) -> None:
        for permission in role.permissions:
            node.add(text(permission, "green"))
        for parent in role.inherits:
            branch = node.add(text(f"inherits {parent}", "bold"))
            if parent not in seen:
                grow(branch, listed[parent], seen | {parent})

    tree = Tree(text("roles", "bold"))
    for role in listed.values():
        if role.name not in inherited:
            grow(tree.add(text(role.name, "bold cyan")), role, frozenset({role.name}))
    out().print(tree)


def policy_plan(plan: "Plan", *, applied: bool, prune: bool, generated: dict[str, str]) -> None:
    """The diff on stdout (one line per change), then counts, kept and held on stderr."""
    for change in plan.changes:
        line = change.describe()
        if change.kind == "user" and change.name in generated:
            line += "  password: " + generated[change.name]
        elif change.kind == "user.password" and change.name in generated:
            line += ": " + generated[change.name]
        emit_line(printable(line))
    counts = plan.counts()
    summary = f"{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed"
    if not plan.changes:
        success("nothing to change" if plan.kept or plan.held else "the database matches the file")
    elif applied:
        success(f"applied: {summary}")
    else:
        note(f"would change: {summary} (nothing written)")
    if plan.kept:
        note(f"{len(plan.kept)} thing(s) in the database are not in the file and are kept (--prune removes them):")
        for change in plan.kept:
            note("  " + change.describe().replace("- ", "  ", 1))
    for name in plan.held:
        warn(f"user {name} has no password, so it stays disabled: `authctl user passwd {name}`, or apply with --generate")
    for reason in plan.refused:
        warn(reason)
    if generated:
        note("generated passwords shown once above; they are not stored anywhere")


def policy_report(report: "Report") -> None:
    """``policy test``: each failure with its trace on stdout, the summary last."""
    for failure in report.failures:
        emit_line(printable(failure.text()))
    checked = sum(cell.expected is not None for cell in report.cells)
    if report.ok:
        success(f"{checked} expectation(s) met" + (" (observed live)" if report.live else ""))
    else:
        error(f"{len(report.failures)} failure(s) in {checked} expectation(s)")


# --------------------------------------------------------------------------- progress


def live_progress(description: str, after: float = 1.0) -> Any:
    """A context giving ``progress(done, total)`` for a live run: a bar on stderr, only on a
    terminal, shown once the run has taken ``after`` seconds (a quick run shows nothing)."""
    from contextlib import contextmanager

    @contextmanager
    def bar() -> Any:
        if not sys.stderr.isatty():
            yield None
            return
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        start = time.monotonic()
        shown: dict[str, Any] = {}

        def update(done: int, total: int) -> None:
            if not shown:
                if done >= total or time.monotonic() - start < after:
                    return
                shown["bar"] = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                        TimeRemainingColumn(), console=err(), transient=True)
                shown["bar"].start()
                shown["task"] = shown["bar"].add_task(description, total=total)
            shown["bar"].update(shown["task"], completed=done, total=total)

        try:
            yield update
        finally:
            if shown:
                shown["bar"].stop()

    return bar()
