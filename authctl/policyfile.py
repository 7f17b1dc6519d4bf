"""The whole policy as one reviewable TOML file: ``authctl policy export|apply|diff|test``.

The file holds what a reviewer needs and no secret: settings, roles (inheritance and
the permissions each grants), users (status and roles, never passwords or hashes),
``[targets]`` (how authctl authenticates to an app not built on its integration: a
target's configuration, never its key or passwords, which stay in the database) and
the expectation tables (``[expect."METHOD /path"]``,
the same tables ``matrix --expect`` reads). It is read with ``tomllib`` and written by
``dump``, a small deterministic writer: the same policy always gives the same bytes,
so ``export`` then ``apply`` on an empty database then ``export`` is byte-identical.

``plan`` compares a file with a database and lists atomic changes (added / changed /
removed); ``apply`` runs them in one transaction. Nothing that is not in the file is
removed unless ``prune``; without it such things are listed as ``kept``. A target's
secret never comes from the file: a new target (or one whose mode or key no longer
fits) needs it from a private file (``secrets``, ``--target-secret NAME=FILE``), and
without it ``apply`` refuses, naming ``authctl target add``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

from .errors import Conflict, InvalidInput
from .names import nearest, new_username, quoted, username_key, validate_permission, validate_role

if TYPE_CHECKING:
    from .matrix import Expectations
    from .store import Store

FORMAT_VERSION = 1
DRIFT_EXIT = 7  # `policy apply --dry-run` / `policy diff`: something would change
SECTIONS = ("version", "settings", "roles", "users", "targets", "expect")
ROLE_FIELDS = ("description", "inherits", "permissions")
USER_FIELDS = ("status", "roles")
TARGET_FIELDS = ("mode", "send", "alg", "kid", "weak_secret", "scope_claim", "iss", "aud", "ttl", "token_url",
                 "sub", "scopes", "claims")
_TOKEN_FIELDS = ("alg", "kid", "weak_secret", "scope_claim", "iss", "aud", "ttl", "sub", "scopes", "claims")
STATUSES = ("active", "disabled")
DURATIONS = frozenset({"access_ttl", "refresh_ttl", "max_ttl", "leeway"})
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class RoleSpec:
    description: str = ""
    inherits: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserSpec:
    status: Literal["active", "disabled"] = "active"
    roles: tuple[str, ...] = ()


@dataclass
class Policy:
    """A policy as the file says it. Expectations: ``"METHOD /path"`` -> username -> allow / 401 / 403."""

    settings: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    users: dict[str, UserSpec] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> configuration (``targets.make_config``)
    expect: dict[str, dict[str, str]] = field(default_factory=dict)

    def matrix_expectations(self) -> "Expectations":
        """The expectation tables in ``authctl.matrix``'s shape, keyed (METHOD, template)."""
        from . import matrix

        return matrix.expectations_from(self.expect, "the policy")


# --------------------------------------------------------------------------- reading


def load(path: str | Path) -> Policy:
    """Read and validate a policy file; every problem is one ``InvalidInput`` line (exit 1)."""
    import tomllib

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML ({str(exc).splitlines()[0]})") from None
    return parse(data, str(path))


def parse(data: Mapping[str, Any], source: str = "policy") -> Policy:
    """A policy from TOML already read. Names that match nothing are errors naming the nearest one."""
    from . import config, matrix

    for key in data:
        if key not in SECTIONS:
            raise InvalidInput(f"{source}: unknown section {quoted(key)}{nearest(key, SECTIONS)}")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InvalidInput(f"{source}: version {quoted(version)} is not supported (this authctl reads {FORMAT_VERSION})")
    policy = Policy()
    for key, value in _table(data, "settings", source).items():
        if key not in config.SPECS:
            raise InvalidInput(f"{source}: unknown setting {quoted(key)}{nearest(key, config.SPECS)}")
        policy.settings[key] = config.parse_setting(key, value)
    if policy.settings:
        stored = {k: v for k, v in policy.settings.items()}
        try:
            config.resolve(stored, environ={})
        except InvalidInput as exc:
            raise InvalidInput(f"{source}: settings: {exc}") from None
    for name, spec in _table(data, "roles", source).items():
        validate_role(name)
        fields = _fields(spec, ROLE_FIELDS, f"role {name}", source)
        description = fields.get("description", "")
        if not isinstance(description, str):
            raise InvalidInput(f"{source}: role {name}: description must be a string")
        permissions = _names(fields.get("permissions", []), f"role {name}: permissions", source)
        for permission in permissions:
            validate_permission(permission)
        policy.roles[name] = RoleSpec(description, _names(fields.get("inherits", []), f"role {name}: inherits", source),
                                      permissions)
    for name, spec in policy.roles.items():
        for other in spec.inherits:
            if other not in policy.roles:
                raise InvalidInput(f"{source}: role {name} inherits unknown role {quoted(other)}{nearest(other, policy.roles)}")
    _refuse_cycles(policy.roles, source)
    keys: dict[str, str] = {}
    for name, spec in _table(data, "users", source).items():
        username = new_username(name)
        key = username_key(username)
        if key in keys:
            raise InvalidInput(f"{source}: users {keys[key]!r} and {username!r} are the same user to authctl")
        keys[key] = username
        fields = _fields(spec, USER_FIELDS, f"user {username}", source)
        status = fields.get("status", "active")
        if status not in STATUSES:
            raise InvalidInput(f"{source}: user {username}: status must be active or disabled, got {quoted(status)}")
        roles = _names(fields.get("roles", []), f"user {username}: roles", source)
        for role in roles:
            if role not in policy.roles:
                raise InvalidInput(f"{source}: user {username} has unknown role {quoted(role)}{nearest(role, policy.roles)}")
        policy.users[username] = UserSpec(status, roles)
    for name, spec in _table(data, "targets", source).items():
        policy.targets[name] = _target_config(name, spec, source)
    for (method, template), cells in matrix.expectations_from(_table(data, "expect", source), source).items():
        route = f"{method} {template}"
        table = policy.expect.setdefault(route, {})
        for user, expected in cells.items():
            table[_expect_user(user, keys, route, source)] = matrix.expectation_text(expected)
    return policy


def _target_config(name: str, spec: Any, source: str) -> dict[str, Any]:
    """A ``[targets.NAME]`` table as the configuration ``target add`` would store (validated the same way)."""
    from . import config, targets, tokens

    try:
        targets.validate_name(name)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: target {quoted(name)}: {exc}") from None
    fields = _fields(spec, TARGET_FIELDS, f"target {name}", source)
    mode = fields.get("mode")
    if not isinstance(mode, str):
        raise InvalidInput(f"{source}: target {name}: mode must be one of {', '.join(targets.MODES)}")
    misplaced = [f for f in fields if (f in _TOKEN_FIELDS and mode != "token") or (f == "token_url" and mode != "login")]
    if misplaced:
        raise InvalidInput(f"{source}: target {name}: {misplaced[0]} does not go with mode {quoted(mode)}")

    def text(key: str) -> str | None:
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{source}: target {name}: {key} must be a string")
        return value

    def per_user(key: str) -> Mapping[str, Any]:
        value = fields.get(key, {})
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{source}: target {name}: {key} must be a table of users ([targets.{name}.{key}])")
        return value

    weak = fields.get("weak_secret", False)
    if not isinstance(weak, bool):
        raise InvalidInput(f"{source}: target {name}: weak_secret must be true or false")
    sub = per_user("sub")
    if not all(isinstance(v, str) for v in sub.values()):
        raise InvalidInput(f"{source}: target {name}: each sub must be a string")
    scopes = per_user("scopes")
    if not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in scopes.values()):
        raise InvalidInput(f"{source}: target {name}: each user's scopes must be a list of strings")
    try:
        return targets.make_config(
            mode, send=text("send") or "bearer", alg=text("alg"), kid=text("kid"), weak=weak, sub=sub,
            scope_claim=text("scope_claim"), scopes=scopes, iss=text("iss"), aud=text("aud"),
            claims=tokens.check_extra_claims(per_user("claims")), ttl=config.parse_duration(fields.get("ttl", targets.DEFAULT_TTL)),
            token_url=text("token_url"),
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: target {name}: {exc}") from None


def _table(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{source}: {name} must be a table ([{name}])")
    return value


def _fields(spec: Any, allowed: tuple[str, ...], what: str, source: str) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{source}: {what} must be a table")
    for key in spec:
        if key not in allowed:
            raise InvalidInput(f"{source}: {what}: unknown field {quoted(key)}{nearest(key, allowed)}")
    return spec


def _names(value: Any, what: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{source}: {what} must be a list of names")
    return tuple(sorted(set(value)))


def _expect_user(user: str, keys: Mapping[str, str], route: str, source: str) -> str:
    """The file's spelling of an expectation's user (matched as authctl matches names)."""
    if user.casefold() == ANONYMOUS:
        return ANONYMOUS
    try:
        key: str | None = username_key(user)
    except InvalidInput:
        key = None
    if key is None or key not in keys:
        raise InvalidInput(
            f"{source}: expectation {route} names unknown user {quoted(user)}{nearest(user, [*keys.values(), ANONYMOUS])}"
        )
    return keys[key]


def _refuse_cycles(roles: Mapping[str, RoleSpec], source: str) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise InvalidInput(f"{source}: roles inherit in a cycle: {' -> '.join((*path, name))}")
        state[name] = 1
        for other in roles[name].inherits:
            visit(other, (*path, name))
        state[name] = 2

    for name in roles:
        visit(name, ())


# --------------------------------------------------------------------------- writing


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    """A TOML basic string; control, format and separator characters escaped (a reviewer sees every one)."""
    import unicodedata

    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(value[k])}" for k in sorted(value)) + " }"
    raise TypeError(f"cannot write {type(value).__name__}")


def _setting_value(key: str, value: Any) -> Any:
    from .config import format_duration

    return format_duration(value) if key in DURATIONS else value


def _expected_value(expected: str) -> Any:
    return int(expected) if expected.isdigit() else expected


HEADER = (
    "# authctl policy: settings, roles, users, targets and expectations; never a password, hash or key.\n"
    "# `authctl policy diff FILE` shows what `authctl policy apply FILE` would change.\n"
)


def dump(policy: Policy) -> str:
    """The file's text: sorted, every field written, so equal policies give equal bytes."""
    lines = [HEADER + f"version = {FORMAT_VERSION}"]
    if policy.settings:
        lines.append("\n[settings]")
        lines += [f"{_key(k)} = {_value(_setting_value(k, policy.settings[k]))}" for k in sorted(policy.settings)]
    for name in sorted(policy.roles):
        role = policy.roles[name]
        lines.append(f"\n[roles.{_key(name)}]")
        lines.append(f"description = {_value(role.description)}")
        lines.append(f"inherits = {_value(sorted(role.inherits))}")
        lines.append(f"permissions = {_value(sorted(role.permissions))}")
    for name in sorted(policy.users, key=lambda n: (username_key(n), n)):
        user = policy.users[name]
        lines.append(f"\n[users.{_key(name)}]")
        lines.append(f"status = {_value(user.status)}")
        lines.append(f"roles = {_value(sorted(user.roles))}")
    for name in sorted(policy.targets):
        lines += _target_lines(name, policy.targets[name])
    for route in sorted(policy.expect):
        lines.append(f"\n[expect.{_string(route)}]")
        cells = policy.expect[route]
        lines += [f"{_key(user)} = {_value(_expected_value(cells[user]))}" for user in sorted(cells)]
    return "\n".join(lines) + "\n"


def _send_text(config: Mapping[str, Any]) -> str:
    return config["send"] + (f":{config['send_param']}" if config.get("send_param") else "")


def _target_lines(name: str, config: Mapping[str, Any]) -> list[str]:
    """``[targets.NAME]`` and its per-user tables; fields that are not set are left out."""
    from .config import format_duration

    lines = [f"\n[targets.{_key(name)}]", f"mode = {_value(config['mode'])}", f"send = {_value(_send_text(config))}"]
    if config["mode"] == "token":
        lines.append(f"alg = {_value(config['alg'])}")
        lines += [f"{key} = {_value(config[key])}" for key in ("kid", "scope_claim", "iss", "aud") if config.get(key) is not None]
        lines.append(f"ttl = {_value(format_duration(config['ttl']))}")
        lines.append(f"weak_secret = {_value(bool(config.get('weak_secret')))}")
    if config["mode"] == "login":
        lines.append(f"token_url = {_value(config['token_url'])}")
    for table in ("sub", "scopes", "claims"):
        values = config.get(table) or {}
        if values:
            lines.append(f"\n[targets.{_key(name)}.{table}]")
            try:
                lines += [f"{_key(key)} = {_value(values[key])}" for key in sorted(values)]
            except TypeError:
                raise InvalidInput(f"target {name}: a {table} value cannot be written to TOML (null?)") from None
    return lines


# --------------------------------------------------------------------------- the database's policy


def export(store: "Store") -> Policy:
    """The database's policy: effective settings (stored or default, never the environment)."""
    from . import config

    policy = Policy(settings=config.resolve(store.stored_settings(), environ={}).as_dict())
    for role in store.list_roles():
        policy.roles[role.name] = RoleSpec(role.description, tuple(sorted(role.inherits)), tuple(sorted(role.permissions)))
    for user in store.list_users():
        policy.users[user.username] = UserSpec(user.status, tuple(sorted(user.roles)))
    for (route, username), expected in store.expectations().items():
        policy.expect.setdefault(route, {})[username] = expected
    from . import targets

    for target in targets.list_all(store):
        policy.targets[target.name] = dict(target.config)
    return policy


@dataclass(frozen=True)
class Change:
    """One atomic difference. ``kind``: setting, role, role.description, role.inherits,
    role.permission, user, user.password, user.status, user.role, target, target.config,
    target.secret, expect. A target's change carries its configuration, never its secret."""

    action: str  # added | changed | removed
    kind: str
    name: str
    item: str | None = None
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "item": self.item,
                "before": self.before, "after": self.after}

    def describe(self) -> str:
        """One line for people: ``+ role admin grants students:delete``."""
        sign = {"added": "+", "changed": "~", "removed": "-"}[self.action]
        what, _, member = self.kind.partition(".")
        if self.kind == "setting":
            text = f"setting {self.name} = {self.after}" if self.action != "removed" else f"setting {self.name} (back to the default)"
        elif self.kind == "expect":
            text = f"expect {self.name} {self.item} = {self.after if self.action != 'removed' else self.before}"
        elif self.kind == "user" and self.action == "added":
            text = f"user {self.name} ({self.after})"
        elif self.kind == "target" and self.action == "added":
            text = f"target {self.name} ({self.after})"
        elif self.kind == "target.config":
            text = f"target {self.name} {self.item} = {_shown_value(self.after, self.item)}"
        elif self.kind == "target.secret":
            text = f"target {self.name} secret from the given file"
        elif not member:
            text = f"{what} {self.name}"
        else:
            word = {"permission": "grants", "inherits": "inherits", "role": "role", "password": "password",
                    "status": "status", "description": "description"}[member]
            text = f"{what} {self.name} {word} {self.item if self.item is not None else self.after}"
        if self.action == "changed":
            text += f" (was {_shown_value(self.before, self.item) if self.kind == 'target.config' else self.before})"
        return f"{sign} {text}"


def _shown_value(value: Any, item: str | None = None) -> str:
    """A target field as the file writes it (a ttl as a duration)."""
    import json

    from .config import format_duration

    if item == "ttl" and isinstance(value, int):
        return format_duration(value)
    return "none" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    kept: list[Change] = field(default_factory=list)  # not in the file; removed only with prune
    held: list[str] = field(default_factory=list)  # users the file wants active that have no password
    new_users: list[str] = field(default_factory=list)  # created by this plan
    refused: list[str] = field(default_factory=list)  # why ``apply`` cannot make a change (a target's missing secret)
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)  # target -> the secret to store (never shown)

    def counts(self) -> dict[str, int]:
        return {action: sum(c.action == action for c in self.changes) for action in ("added", "changed", "removed")}

    def as_dict(self) -> dict[str, Any]:
        return {"changes": [c.as_dict() for c in self.changes], "counts": self.counts(),
                "kept": [c.as_dict() for c in self.kept], "held": list(self.held), "refused": list(self.refused)}


def plan(store: "Store", desired: Policy, *, prune: bool = False, generate: bool = False, users_as_file: bool = False,
         secrets: Mapping[str, bytes] | None = None, with_targets: bool = True) -> Plan:
    """What ``apply`` would change, in the order it changes it (see ``apply`` for the flags)."""
    current = export(store)
    result = Plan()
    keep = result.changes.append if prune else result.kept.append
    stored = store.stored_settings()
    for key in _settings_order(current.settings, desired.settings):
        if current.settings[key] != desired.settings[key]:
            result.changes.append(Change("changed", "setting", key, None, _plain(key, current.settings[key]),
                                         _plain(key, desired.settings[key])))
    for key in sorted(set(stored) - set(desired.settings)):
        keep(Change("removed", "setting", key, None, _plain(key, current.settings.get(key)), None))
    # removals of edges first: a file that turns an inheritance around must not meet its old edge
    for name in sorted(current.roles):
        role, wanted = current.roles[name], desired.roles.get(name)
        for other in role.inherits:
            if wanted is None or other not in wanted.inherits:
                keep(Change("removed", "role.inherits", name, other))
        for permission in role.permissions:
            if wanted is None or permission not in wanted.permissions:
                keep(Change("removed", "role.permission", name, permission))
        if wanted is None:
            keep(Change("removed", "role", name, before=role.description))
    for name in sorted(desired.roles):
        role, existing = desired.roles[name], current.roles.get(name)
        if existing is None:
            result.changes.append(Change("added", "role", name, after=role.description))
        elif existing.description != role.description:
            result.changes.append(Change("changed", "role.description", name, None, existing.description, role.description))
    for name in sorted(desired.roles):
        role, existing = desired.roles[name], current.roles.get(name, RoleSpec())
        result.changes += [Change("added", "role.inherits", name, other) for other in role.inherits
                           if other not in existing.inherits]
        result.changes += [Change("added", "role.permission", name, p) for p in role.permissions
                           if p not in existing.permissions]
    current_users = {username_key(name): name for name in current.users}
    wanted_keys = {username_key(name) for name in desired.users}
    for name in sorted(current.users, key=username_key):
        if username_key(name) not in wanted_keys:
            keep(Change("removed", "user", name, before=current.users[name].status))
    passwordless = {u.username for u in store.list_users() if not u.password_hash}
    for name in sorted(desired.users, key=username_key):
        spec = desired.users[name]
        existing_name = current_users.get(username_key(name))
        if existing_name is None:
            status = spec.status if generate or users_as_file else "disabled"
            result.new_users.append(name)
            result.changes.append(Change("added", "user", name, after=status))
            if status != spec.status:
                result.held.append(name)
            result.changes += [Change("added", "user.role", name, role) for role in spec.roles]
            continue
        present = current.users[existing_name]
        for role_name in present.roles:
            if role_name not in spec.roles:
                keep(Change("removed", "user.role", existing_name, role_name))
        result.changes += [Change("added", "user.role", existing_name, role) for role in spec.roles
                           if role not in present.roles]
        if present.status == spec.status:
            continue
        if spec.status == "active" and existing_name in passwordless and not users_as_file:
            if not generate:  # an account is never enabled without a password
                result.held.append(existing_name)
                continue
            result.changes.append(Change("added", "user.password", existing_name, after="generated"))
        result.changes.append(Change("changed", "user.status", existing_name, None, present.status, spec.status))
    if with_targets:
        _plan_targets(store, current, desired, result, keep, secrets or {})
    for route in sorted(set(current.expect) | set(desired.expect)):
        have, want = current.expect.get(route, {}), desired.expect.get(route, {})
        for who in sorted(set(have) | set(want)):
            if who not in want:
                keep(Change("removed", "expect", route, who, have[who], None))
            elif who not in have:
                result.changes.append(Change("added", "expect", route, who, None, want[who]))
            elif have[who] != want[who]:
                result.changes.append(Change("changed", "expect", route, who, have[who], want[who]))
    # roles and users themselves go last among removals: their grants and assignments are gone by then
    result.changes.sort(key=lambda c: c.action == "removed" and c.kind in ("role", "user"))
    return result


def _plan_targets(store: "Store", current: Policy, desired: Policy, result: Plan, keep: Any,
                  secrets: Mapping[str, bytes]) -> None:
    """Targets added, changed field by field, or removed; a secret only from ``secrets``, never the file."""
    from . import targets

    for name in secrets:
        if name not in desired.targets:
            raise InvalidInput(f"--target-secret names target {quoted(name)}, which the file does not have"
                               + nearest(name, desired.targets))
    for name in sorted(set(current.targets) - set(desired.targets)):
        keep(Change("removed", "target", name, before=current.targets[name]["mode"]))
    for name in sorted(desired.targets):
        want, have = desired.targets[name], current.targets.get(name)
        given = secrets.get(name)
        if given is not None:  # the key must fit the file's algorithm, and be weak only with the file's opt-in
            try:
                blob, _, weak = targets.make_secret(want["mode"], given, want.get("alg"),
                                                    allow_weak=bool(want.get("weak_secret")))
            except InvalidInput as exc:
                raise InvalidInput(f"--target-secret {name}: {exc}") from None
            if want["mode"] == "token" and weak != want["weak_secret"]:
                raise InvalidInput(f"--target-secret {name}: the key is not weak: drop weak_secret = true")
            result.secrets[name] = blob
        if have is None:
            result.changes.append(Change("added", "target", name, after=f"{want['mode']}, sends {_send_text(want)}"))
            if given is None:
                result.refused.append(
                    f"target {name} is new and its secret is never in the file: create it with "
                    f"`authctl target add {name} ...` first, or give --target-secret {name}=FILE (a private file)")
            continue
        fields = [f for f in sorted(set(have) | set(want)) if have.get(f) != want.get(f)]
        result.changes += [Change("changed", "target.config", name, f, have.get(f), want.get(f)) for f in fields]
        if given is not None:
            result.changes.append(Change("changed", "target.secret", name, before="stored", after="given"))
            continue
        secret_kind = {have["mode"] == "token", want["mode"] == "token"}
        if len(secret_kind) > 1:
            result.refused.append(f"target {name} changes from mode {have['mode']} to {want['mode']}, which needs "
                                  f"another kind of secret: give --target-secret {name}=FILE")
        elif want["mode"] == "token" and {"alg", "weak_secret"} & set(fields):
            try:
                targets.check_stored_key(targets.get(store, name), want["alg"], want["weak_secret"])
            except InvalidInput as exc:
                result.refused.append(f"target {name}: the stored key does not fit the file ({exc}): "
                                      f"give --target-secret {name}=FILE")


def _settings_order(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """max_ttl first when it grows, last when it shrinks: every step passes the ttl <= max_ttl check."""
    keys = [k for k in sorted(desired) if k != "max_ttl"]
    if "max_ttl" in desired:
        grows = desired["max_ttl"] > current.get("max_ttl", 0)
        keys = ["max_ttl", *keys] if grows else [*keys, "max_ttl"]
    return keys


def _plain(key: str, value: Any) -> Any:
    return _setting_value(key, value) if value is not None else None


@dataclass
class ApplyResult:
    plan: Plan
    applied: bool
    generated: dict[str, str] = field(default_factory=dict, repr=False)  # username -> password, shown once

    @property
    def changed(self) -> bool:
        return bool(self.plan.changes)


def apply(
    store: "Store", desired: Policy, *, prune: bool = False, generate: bool = False, dry_run: bool = False,
    source: str = "policy", users_as_file: bool = False, secrets: Mapping[str, bytes] | None = None,
    with_targets: bool = True,
) -> ApplyResult:
    """Make the database match the file: all or nothing, in one transaction, audit-logged.

    ``generate`` gives every user of the file without a password a generated one
    (returned once, stored only as a hash). ``users_as_file`` creates new users with
    the file's status and no password: for throwaway test databases only. ``secrets``:
    target name -> its key or ``username:password`` lines (read from a private file);
    a change that needs a secret it lacks makes ``apply`` refuse, writing nothing.
    ``with_targets=False`` leaves targets alone (a throwaway test database).
    """
    from . import passwords

    options: dict[str, Any] = {"prune": prune, "generate": generate, "users_as_file": users_as_file,
                               "secrets": secrets, "with_targets": with_targets}
    draft = plan(store, desired, **options)
    if dry_run:
        return ApplyResult(draft, applied=False)
    if draft.refused:
        more = f" (and {len(draft.refused) - 1} more)" if len(draft.refused) > 1 else ""
        raise InvalidInput(draft.refused[0] + more)
    needing = sorted({*draft.new_users, *(c.name for c in draft.changes if c.kind == "user.password")}) if generate else []
    generated, hashes = {}, {}
    if needing:  # hashed before the transaction: the write lock is not held while argon2 runs
        hasher = passwords.Hasher.from_settings(store.settings())
        for name in needing:
            generated[name] = passwords.generate()
            hashes[name] = hasher.hash(generated[name])
    with store.transaction():
        final = plan(store, desired, **options)
        if final.as_dict() != draft.as_dict() or final.new_users != draft.new_users:
            raise Conflict("the database changed while the policy was being applied; run it again")
        updated: set[str] = set()
        for change in final.changes:
            if change.kind in ("target.config", "target.secret"):  # one update per target: its whole configuration
                if change.name not in updated:
                    updated.add(change.name)
                    store.update_target(change.name, desired.targets[change.name], final.secrets.get(change.name))
                continue
            _execute(store, change, desired, hashes, final.secrets)
        if final.changes or hashes:
            store.record("policy.apply", source, {**final.counts(), "prune": prune, "generated": len(hashes)})
    return ApplyResult(final, applied=True, generated=generated)


def _execute(store: "Store", change: Change, desired: Policy, hashes: Mapping[str, str],
             secrets: Mapping[str, bytes]) -> None:
    action, kind, name = change.action, change.kind, change.name
    item = change.item or ""  # set on every kind that reads it (role.*, user.role, expect)
    if kind == "setting":
        if action == "removed":
            store.unset_setting(name)
        else:
            store.set_setting(name, desired.settings[name])
    elif kind == "role":
        if action == "added":
            store.add_role(name, desired.roles[name].description)
        else:
            store.remove_role(name, force=True)
    elif kind == "role.description":
        store.set_role_description(name, change.after)
    elif kind == "role.inherits":
        (store.include_roles if action == "added" else store.exclude_roles)(name, [item])
    elif kind == "role.permission":
        (store.grant if action == "added" else store.revoke)(name, [item])
    elif kind == "user":
        if action == "added":
            store.add_user(name, hashes.get(name), (), disabled=change.after == "disabled")
        else:
            store.remove_user(name)
    elif kind == "user.password":
        store.set_password_hash(name, hashes[name], reason="policy.password")
    elif kind == "user.status":
        store.set_disabled(name, change.after == "disabled")
    elif kind == "user.role":
        (store.assign if action == "added" else store.unassign)(name, [item])
    elif kind == "target":
        if action == "added":
            store.add_target(name, desired.targets[name], secrets[name])
        else:
            store.remove_target(name)
    elif kind == "expect":
        store.set_expectation(name, item, change.after)
    else:  # pragma: no cover - every kind plan() makes is handled above
        raise AssertionError(kind)
