"""Matrix columns by role set: users the engine cannot tell apart share one column.

What one user's offline decision on one route depends on, and nothing else:

* whether the account is disabled (phase 1: a token minted now always carries the
  current token version and is issued after the account was created, so version and
  age never tell two users apart);
* the roles assigned directly (inherited roles and permissions follow from them);
* on a route with an owner rule (``owner_param``), whether the filled path names this
  user's own id: the one user it names is never merged with the others.

The group key is exactly that, so one decision per group and route is every member's
decision, and the offline matrix costs distinct keys × routes, not users × routes
(``tests/test_matrix_groups.py`` checks it against the per-user decisions). Cells that
were observed (a live run, or expectations) are merged only where every member's
cells are the same, so a user whose answer differs keeps a column of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .matrix import ANONYMOUS, Cell, decided_cell

if TYPE_CHECKING:
    from .matrix import MatrixResult
    from .store import Store, User

NO_ROLES = "no roles"


@dataclass
class Group:
    """One matrix column: the users that share a role set (and everything else a decision reads)."""

    name: str
    roles: tuple[str, ...]
    members: list[str]
    disabled: bool = False
    owns: tuple[str, ...] = ()  # routes ("METHOD /template") whose path names this member's own id

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "roles": list(self.roles), "count": len(self.members), "members": self.members,
                "disabled": self.disabled, "owner_of": list(self.owns)}


def _role_set_name(roles: Iterable[str]) -> str:
    return " + ".join(sorted(roles)) or NO_ROLES


def owner_values(decidable: Iterable[tuple[Any, Any, Mapping[str, Any]]]) -> dict[str, set[str]]:
    """route key -> the path values an owner rule compares with the caller's id (``matrix.decidable_routes``)."""
    owners: dict[str, set[str]] = {}
    for route, info, path_params in decidable:
        for requirement in info.requirements:
            if requirement.owner_param and path_params.get(requirement.owner_param) is not None:
                owners.setdefault(route.key, set()).add(str(path_params[requirement.owner_param]))
    return owners


def group_users(users: list["User"], owners: Mapping[str, set[str]] | None = None, *,
                anonymous: bool = True) -> list[Group]:
    """Users grouped by (direct roles, disabled, routes they own), in first-seen order; anonymous last."""
    owners = owners or {}
    keyed: dict[tuple, Group] = {}
    for user in users:
        roles = tuple(sorted(set(user.roles)))
        owns = tuple(sorted(key for key, values in owners.items() if str(user.id) in values))
        key = (roles, user.disabled, owns)
        group = keyed.get(key)
        if group is None:
            name = _role_set_name(roles) + (" (disabled)" if user.disabled else "")
            if owns:  # at most one user owns a given route's path: a column of their own
                name = f"{user.username} ({name}, owner)"
            group = keyed[key] = Group(name, roles, [], user.disabled, owns)
        group.members.append(user.username)
    groups = list(keyed.values())
    if anonymous:
        groups.append(Group(ANONYMOUS, (), [ANONYMOUS]))
    _unique_names(groups)
    return groups


def _unique_names(groups: list[Group]) -> None:
    """A username can read like a role set: columns must still be told apart."""
    seen: dict[str, int] = {}
    for group in groups:
        count = seen.get(group.name, 0)
        seen[group.name] = count + 1
        if count:
            group.name = f"{group.name} #{count + 1}"


def decide_groups(store: "Store", app: Any, groups: list[Group], decidable: Sequence[tuple[Any, Any, Mapping[str, Any]]]) -> list[Cell]:
    """One decision per group and route, with a token minted for the group's first member."""
    from . import explain, routes

    overrides = explain.app_overrides(app)
    subjects = {
        group.name: explain.ANONYMOUS if group.members == [ANONYMOUS] else
        explain.subject_for_user(store, group.members[0], overrides) for group in groups
    }
    cells = []
    for route, info, path_params in decidable:
        for group in groups:
            subject = subjects[group.name]
            decision = routes.decide(store, info, subject.token, path_params, overrides=overrides)
            cells.append(replace(decided_cell(route, info, group.name, subject, decision), token=None))
    return cells


def _signature(cell: Cell) -> tuple:
    return (cell.decision, cell.live_status, cell.outcome, cell.expected, cell.not_sent, cell.undecided,
            tuple(cell.live.lints) if cell.live is not None else ())


def _merge_cells(cells: list[Cell], groups: list[Group]) -> tuple[list[Group], list[Cell]]:
    """Per-user cells (live, expected) shown per group: members whose cells all match share a column.

    A group whose members answered differently is split, each part named with ``#n``
    and listing its own members; nothing that was observed is hidden by merging.
    """
    by_user: dict[str, list[Cell]] = {}
    for cell in cells:
        by_user.setdefault(cell.user, []).append(cell)
    merged: list[Group] = []
    representative: dict[str, str] = {}
    for group in groups:
        parts: dict[tuple, list[str]] = {}
        for member in group.members:
            parts.setdefault(tuple(_signature(c) for c in by_user.get(member, [])), []).append(member)
        for index, members in enumerate(parts.values()):
            name = group.name if len(parts) == 1 else f"{group.name} #{index + 1}"
            merged.append(replace(group, name=name, members=members))
            representative[members[0]] = name
    out = [replace(cell, user=representative[cell.user], token=None) for cell in cells if cell.user in representative]
    return merged, out


def _records(store: "Store", users: list[str] | None) -> list["User"]:
    """The users to group (default: every active user), each once; anonymous is added by ``group_users``."""
    if users is None:
        return store.list_users(status="active")
    records: dict[int, "User"] = {}
    for name in users:
        if name != ANONYMOUS:
            user = store.get_user(name)  # NotFound: exit 1
            records.setdefault(user.id, user)
    return list(records.values())


def build(store: "Store", *, users: list[str] | None = None, app_spec: str | None = None,
          params: Mapping[str, str] | None = None, **observe: Any) -> "MatrixResult":
    """``matrix.build`` with one column per group.

    Offline only (no ``live``, ``url``, ``openapi``, ``expectations``, ``strict`` or ``target``): one
    decision per group and route. Otherwise every user's cells are built and observed as
    usual, then merged where they are the same (``_merge_cells``): a target speaks per-user
    credentials (``sub``, scopes) that the role set does not capture.
    """
    from . import matrix, routes

    records = _records(store, users)
    if any(observe.get(name) for name in ("live", "url", "openapi", "expectations", "target", "strict")):
        names = [user.username for user in records] + [ANONYMOUS]
        result = matrix.build(store, users=names, app_spec=app_spec, params=params, **observe)
        result.groups, result.cells = _merge_cells(result.cells, group_users(records))
        result.users = [group.name for group in result.groups]
        return result
    notes: list[str] = []
    app = routes.load_app(app_spec)
    decidable = matrix.decidable_routes(app, params or {}, notes)
    groups = group_users(records, owner_values(decidable))
    cells = decide_groups(store, app, groups, decidable)
    return matrix.MatrixResult([group.name for group in groups], cells, 0, notes, groups=groups)
