"""``authctl role ...``"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, List, Optional

import typer

from .. import render
from ..errors import InvalidInput
from .common import RoleArg, Yes, complete_role, confirm, state

app = typer.Typer(no_args_is_help=True)


class GraphFormat(str, Enum):
    tree = "tree"
    mermaid = "mermaid"
    dot = "dot"


RoleName = RoleArg
Inherits = Annotated[Optional[List[str]], typer.Option(
    "--inherits", "-i", help="A role whose permissions this role includes (repeatable).", autocompletion=complete_role)]
StopInheriting = Annotated[Optional[List[str]], typer.Option(
    "--inherits", "-i", help="A role this role stops inheriting (repeatable).", autocompletion=complete_role)]
Permissions = Annotated[Optional[List[str]], typer.Argument(help="Permissions as resource:action (or resource:*).",
                                                            metavar="PERMISSION", show_default=False)]


def _emit(store, name: str) -> None:
    role, effective = store.get_role(name), store.role_permissions(name)
    render.emit(render.role_json(role, effective), lambda data: render.role_detail(role, effective))


@app.command("add")
def add(
    name: RoleName,
    inherits: Inherits = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What the role is for.")] = "",
) -> None:
    """Add a role, optionally inheriting other roles.

    Examples:
      authctl role add student
      authctl role add admin --inherits student -d "Runs the school" --json
    """
    with state.open_store() as store:
        role = store.add_role(name, description, inherits or [])
        data = render.role_json(role, store.role_permissions(name))
    render.emit(data, lambda data: render.success(
        f"added role {role.name}" + (f" (inherits {', '.join(role.inherits)})" if role.inherits else "")))


@app.command("list")
def list_roles() -> None:
    """List roles with their permissions, inherited roles and member counts.

    Examples:
      authctl role list
      authctl role list --json
    """
    with state.open_store() as store:
        roles = store.list_roles()
    render.emit([render.role_json(role) for role in roles],
                lambda data: render.roles_table(roles) if roles else render.note("no roles yet: `authctl role add NAME`"))


@app.command("show")
def show(name: RoleName) -> None:
    """A role's own and inherited permissions.

    Examples:
      authctl role show admin
    """
    with state.open_store() as store:
        _emit(store, name)


@app.command("remove")
def remove(
    name: RoleName,
    force: Annotated[bool, typer.Option("--force", help="Also unassign it from users and other roles (asks first).")] = False,
    yes: Yes = False,
) -> None:
    """Remove a role; an assigned or inherited role needs --force, which asks first (--yes without a terminal).

    Examples:
      authctl role remove guest
      authctl role remove student --force --yes --json
    """
    with state.open_store() as store:
        role = store.get_role(name)
        if force and role.members:
            confirm(f"remove role {role.name} and unassign it from {role.members} user(s)?", yes)
        elif force:
            confirm(f"remove role {role.name} everywhere it is inherited?", yes)
        affected = store.remove_role(name, force=force)
    render.emit({**render.role_json(role), "removed": True, "unassigned_users": affected},
                lambda data: render.success(f"removed role {name}" + (f"; unassigned from {affected} user(s)" if affected else "")))


def _change(name: str, permissions: list[str] | None, inherits: list[str] | None, *, add: bool) -> None:
    if not permissions and not inherits:
        raise InvalidInput("name at least one permission or --inherits ROLE")
    with state.open_store() as store:
        with store.transaction():  # permissions and inheritance change together or not at all
            if permissions:
                (store.grant if add else store.revoke)(name, permissions)
            if inherits:
                (store.include_roles if add else store.exclude_roles)(name, inherits)
        role, effective = store.get_role(name), store.role_permissions(name)

    def human(data: dict) -> None:
        render.success(f"role {name} updated")
        render.role_detail(role, effective)

    render.emit(render.role_json(role, effective), human)


@app.command("grant")
def grant(name: RoleName, permissions: Permissions = None, inherits: Inherits = None) -> None:
    """Grant permissions to a role (and/or make it inherit roles).

    Examples:
      authctl role grant student students:read
      authctl role grant admin students:delete --inherits student
    """
    _change(name, permissions, inherits, add=True)


@app.command("revoke")
def revoke(name: RoleName, permissions: Permissions = None, inherits: StopInheriting = None) -> None:
    """Revoke permissions from a role (and/or, with --inherits ROLE, stop it inheriting that role).

    Examples:
      authctl role revoke student students:read
      authctl role revoke admin --inherits student
    """
    _change(name, permissions, inherits, add=False)


@app.command("graph")
def graph(
    format_: Annotated[GraphFormat, typer.Option("--format", "-f", help="tree (for people), mermaid or dot (for diagrams).")] = GraphFormat.tree,
) -> None:
    """Roles, what each inherits and the permissions it grants, as a tree, Mermaid or Graphviz DOT.

    Examples:
      authctl role graph
      authctl role graph --format mermaid > roles.mmd
      authctl role graph --format dot | dot -Tsvg > roles.svg
    """
    with state.open_store() as store:
        roles = store.list_roles()
    shown = {
        GraphFormat.mermaid: lambda data: render.emit_line(render.role_graph_mermaid(roles)),
        GraphFormat.dot: lambda data: render.emit_line(render.role_graph_dot(roles)),
        GraphFormat.tree: lambda data: render.role_graph_tree(roles) if roles
        else render.note("no roles yet: `authctl role add NAME`"),
    }
    render.emit(render.role_graph_json(roles), shown[format_])
