"""``authctl role ...``"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, List, Optional

import typer

from .. import render
from ..errors import InvalidInput
from .common import JsonFlag, state

app = typer.Typer(no_args_is_help=True)


class GraphFormat(str, Enum):
    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"


RoleName = Annotated[str, typer.Argument(help="Role name (lower-case identifier).", show_default=False)]
Inherits = Annotated[Optional[List[str]], typer.Option("--inherits", "-i", help="Role whose permissions this role includes (repeatable).")]
Permissions = Annotated[Optional[List[str]], typer.Argument(help="Permissions as resource:action (or resource:*).", show_default=False)]


def _emit(store, name: str, as_json: bool) -> None:
    role, effective = store.get_role(name), store.role_permissions(name)
    if as_json:
        render.emit_json(render.role_json(role, effective))
    else:
        render.role_detail(role, effective)


@app.command("add")
def add(
    name: RoleName,
    inherits: Inherits = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What the role is for.")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Add a role, optionally inheriting other roles."""
    with state.open_store() as store:
        role = store.add_role(name, description, inherits or [])
        if state.wants_json(json_output):
            render.emit_json(render.role_json(role, store.role_permissions(name)))
        else:
            render.success(f"added role {role.name}" + (f" (inherits {', '.join(role.inherits)})" if role.inherits else ""))


@app.command("list")
def list_roles(json_output: JsonFlag = False) -> None:
    """List roles with their permissions, inherited roles and member counts."""
    with state.open_store() as store:
        roles = store.list_roles()
        if state.wants_json(json_output):
            render.emit_json([render.role_json(role) for role in roles])
        elif roles:
            render.roles_table(roles)
        else:
            render.note("no roles yet: `authctl role add NAME`")


@app.command("show")
def show(name: RoleName, json_output: JsonFlag = False) -> None:
    """A role's own and inherited permissions."""
    with state.open_store() as store:
        _emit(store, name, state.wants_json(json_output))


@app.command("remove")
def remove(
    name: RoleName,
    force: Annotated[bool, typer.Option("--force", help="Also unassign it from users and other roles.")] = False,
) -> None:
    """Remove a role; an assigned or inherited role needs --force."""
    with state.open_store() as store:
        affected = store.remove_role(name, force=force)
        render.success(f"removed role {name}" + (f"; unassigned from {affected} user(s)" if affected else ""))


def _change(name: str, permissions: list[str] | None, inherits: list[str] | None, *, add: bool, as_json: bool) -> None:
    if not permissions and not inherits:
        raise InvalidInput("name at least one permission or --inherits ROLE")
    with state.open_store() as store:
        with store.transaction():  # permissions and inheritance change together or not at all
            if permissions:
                (store.grant if add else store.revoke)(name, permissions)
            if inherits:
                (store.include_roles if add else store.exclude_roles)(name, inherits)
        if not as_json:
            render.success(f"role {name} updated")
        _emit(store, name, as_json)


@app.command("grant")
def grant(name: RoleName, permissions: Permissions = None, inherits: Inherits = None, json_output: JsonFlag = False) -> None:
    """Grant permissions to a role (and/or make it inherit roles)."""
    _change(name, permissions, inherits, add=True, as_json=state.wants_json(json_output))


@app.command("revoke")
def revoke(name: RoleName, permissions: Permissions = None, inherits: Inherits = None, json_output: JsonFlag = False) -> None:
    """Revoke permissions from a role (and/or stop it inheriting roles)."""
    _change(name, permissions, inherits, add=False, as_json=state.wants_json(json_output))


@app.command("graph")
def graph(
    format_: Annotated[GraphFormat, typer.Option("--format", "-f", help="tree (for people), mermaid or dot (for diagrams).")] = GraphFormat.tree,
    json_output: JsonFlag = False,
) -> None:
    """Roles, what each inherits and the permissions it grants, as a tree, Mermaid or Graphviz DOT.

    Examples:
      authctl role graph
      authctl role graph --format mermaid > roles.mmd
      authctl role graph --format dot | dot -Tsvg > roles.svg
    """
    with state.open_store() as store:
        roles = store.list_roles()
    if state.wants_json(json_output):
        render.emit_json(render.role_graph_json(roles))
    elif format_ is GraphFormat.mermaid:
        render.emit_line(render.role_graph_mermaid(roles))
    elif format_ is GraphFormat.dot:
        render.emit_line(render.role_graph_dot(roles))
    elif roles:
        render.role_graph_tree(roles)
    else:
        render.note("no roles yet: `authctl role add NAME`")
