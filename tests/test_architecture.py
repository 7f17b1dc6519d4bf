"""The house rules, pinned: errors carry hints and the CLI names the options; layers import what they may."""

from __future__ import annotations

from typing import Any

import pytest

from authctl import explain
from authctl.cli import HINTS, with_hint
from authctl.errors import AuthctlError, InvalidInput


def test_library_errors_name_no_cli_flag_the_cli_adds_the_hint() -> None:
    with pytest.raises(InvalidInput) as refused:
        explain.require_safe_method("DELETE", False)
    assert "--" not in str(refused.value) and refused.value.hint == "unsafe"
    assert with_hint(refused.value) == "DELETE may change data on a live server: add --unsafe to send it"


def test_a_rewrapped_error_keeps_the_hint_of_its_cause() -> None:
    try:
        try:
            raise InvalidInput("the secret is weak", hint="weak_secret")
        except InvalidInput as exc:
            raise InvalidInput(f"target t: {exc}") from None
    except AuthctlError as outer:
        assert with_hint(outer) == "target t: the secret is weak" + HINTS["weak_secret"]


# --------------------------------------------------------------------------- typer: the pinned boundary


def test_typer_internals_the_lazy_cli_uses_exist() -> None:
    """cli/common.py reaches into typer (pyproject caps typer below 0.30): these are the names it needs."""
    import typer._coercion as coercion
    import typer.main as typer_main

    assert isinstance(coercion.RuntimeParam, type) and callable(coercion.build_runtime_param)
    for name in ("get_command_from_info", "get_group_from_info", "solve_typer_info_defaults", "get_command_name"):
        assert callable(getattr(typer_main, name)), name
    assert isinstance(typer_main.TyperInfo, type)


def _help_pages(command: object) -> dict[tuple[str, ...], str]:
    """``--help`` of the group, every group and every command below it."""
    from click.testing import CliRunner

    runner = CliRunner()
    pages: dict[tuple[str, ...], str] = {}

    def visit(path: tuple[str, ...]) -> None:
        result = runner.invoke(command, [*path, "--help"], prog_name="authctl", terminal_width=100)  # type: ignore[arg-type]
        assert result.exit_code == 0, (path, result.output)
        pages[path] = result.output
        ctx = command.context_class(command)  # type: ignore[attr-defined]  # typer may bring its own click
        group = command
        for name in path:
            group = group.get_command(ctx, name)  # type: ignore[attr-defined]
        if hasattr(group, "list_commands"):
            for name in group.list_commands(ctx):
                visit((*path, name))

    visit(())
    return pages


def test_lazy_cli_builds_the_same_commands_and_help_as_typer_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    import typer.main
    from typer.core import TyperCommand, TyperGroup

    from authctl.cli import BoundaryGroup, app
    from authctl.cli.common import GLOBAL_OPTIONS, placeholders

    for cls in (TyperGroup, TyperCommand):  # typer's own classes, with the placeholders authctl shows (FILE, USER)
        def get_params(self: Any, ctx: Any, _own: Any = cls.get_params) -> Any:
            params = _own(self, ctx)
            for param in params:
                placeholders(param)
            return params

        monkeypatch.setattr(cls, "get_params", get_params)

    def command_init(self: Any, *args: Any, _own: Any = TyperCommand.__init__, **kwargs: Any) -> None:
        kwargs["epilog"] = kwargs.get("epilog") or GLOBAL_OPTIONS  # the global options under every command's help
        _own(self, *args, **kwargs)

    monkeypatch.setattr(TyperCommand, "__init__", command_init)

    commands, groups = BoundaryGroup.lazy_source or ([], [])
    eager = typer.Typer(name="authctl", help=app.info.help, no_args_is_help=True, pretty_exceptions_enable=False,
                        context_settings={"help_option_names": ["-h", "--help"]})
    eager.registered_commands, eager.registered_groups = list(commands), list(groups)
    eager.registered_callback = app.registered_callback
    lazy_pages = _help_pages(typer.main.get_command(app))
    eager_pages = _help_pages(typer.main.get_command(eager))
    assert len(lazy_pages) > 50  # every group and command was reached (58 pages today)
    assert lazy_pages.keys() == eager_pages.keys()
    for path, page in lazy_pages.items():
        assert page == eager_pages[path], path


# --------------------------------------------------------------------------- the public API


def test_the_public_api_is_what_authctl_names() -> None:
    import authctl
    from authctl import errors, fastapi, policy

    assert authctl.Auth is fastapi.Auth
    assert authctl.authenticate is policy.authenticate and authctl.authorize is policy.authorize
    assert authctl.Outcome is policy.Outcome and authctl.Forbidden is errors.Forbidden
    exported = {name for name in vars(errors) if isinstance(getattr(errors, name), type)
                and issubclass(getattr(errors, name), errors.AuthctlError)}
    assert exported <= set(authctl.__all__)  # every error of the tree is public
    for name in authctl.__all__:
        assert getattr(authctl, name) is not None, name
    with pytest.raises(AttributeError):
        authctl.no_such_name  # noqa: B018


# --------------------------------------------------------------------------- import rules, read from the source

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent / "authctl"

#: Which modules may import which third-party package at all (at any depth, lazily or not).
ALLOWED = {
    "typer": ("cli/",),
    "click": ("cli/",),
    "rich": ("cli/", "render.py"),
    "fastapi": ("fastapi.py", "app/", "routes.py"),
    "starlette": ("fastapi.py", "app/", "routes.py"),
    "pydantic": ("app/",),
    "httpx": ("probe.py",),
    "uvicorn": ("cli/serve.py",),
    # the database drivers: the store package alone (its engine layer, engines.py, in practice)
    "sqlite_utils": ("store/",),
    "psycopg": ("store/",),
    "psycopg_pool": ("store/",),
    "sqlite3": ("store/",),
}
#: Never imported when the module loads (only inside the function that needs it): the CLI's
#: start-up and ``import authctl.app`` stay free of the web stack.
WEB_STACK = ("fastapi", "starlette", "pydantic", "uvicorn", "httpx")


def _imports(tree: ast.AST, *, top_level_only: bool) -> list[tuple[str, int]]:
    """(module, line) of every import outside ``if TYPE_CHECKING:``; relative ones as ``authctl.x``."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, package: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, package)
                continue
            if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    name = f"{base}.{child.module}" if child.module else base
                    found.append((name, child.lineno))
                    if not child.module:  # from . import a, b: the submodules a and b
                        found.extend((f"{base}.{alias.name}", child.lineno) for alias in child.names)
                else:
                    found.append((child.module or "", child.lineno))
            visit(child, package)

    visit(tree, _package_of(tree))
    return found


def _modules() -> dict[str, tuple[str, ast.Module]]:
    """authctl module name -> (path relative to the package, parsed source)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        dotted = "authctl." + relative[:-3].replace("/", ".")
        dotted = dotted.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        tree.authctl_package = dotted if relative.endswith("__init__.py") else dotted.rsplit(".", 1)[0]  # type: ignore[attr-defined]
        found[dotted] = (relative, tree)
    return found


def _package_of(tree: ast.AST) -> str:
    return getattr(tree, "authctl_package", "authctl")


def test_import_rules_each_layer_imports_only_what_it_may() -> None:
    broken = []
    for _name, (relative, tree) in _modules().items():
        for module, line in _imports(tree, top_level_only=False):
            top = module.split(".")[0]
            allowed = ALLOWED.get(top)
            if allowed is not None and not relative.startswith(allowed):
                broken.append(f"authctl/{relative}:{line} imports {module}")
    assert broken == []


def test_import_rules_the_web_stack_is_never_imported_when_the_cli_or_the_app_package_loads() -> None:
    modules = _modules()
    top_level = {name: [m for m, _ in _imports(tree, top_level_only=True)] for name, (_, tree) in modules.items()}
    # the CLI registers every command module at start-up; the demo app package builds its app lazily
    start = [name for name in modules if name.startswith("authctl.cli")] + ["authctl", "authctl.app", "authctl.app.data"]
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        stack += [m for m in top_level[name] if m.startswith("authctl")]
    heavy = [f"{name} imports {m} at load" for name in sorted(seen) for m in top_level[name]
             if m.split(".")[0] in WEB_STACK]
    assert heavy == []
    assert {"authctl.cli", "authctl.cli.tokens", "authctl.render", "authctl.errors", "authctl.app.data"} <= seen


def test_import_rules_catch_a_layer_breach() -> None:
    """The rule above can fail: a render module importing httpx is reported with its line."""
    tree = ast.parse("import os\n\ndef f():\n    import httpx\n")
    assert [m for m, _ in _imports(tree, top_level_only=False)] == ["os", "httpx"]
    assert [m for m, _ in _imports(tree, top_level_only=True)] == ["os"]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fastapi\n")
    assert [m for m, _ in _imports(guarded, top_level_only=False)] == ["typing"]


def test_every_fixture_name_is_defined_once() -> None:
    """One name, one meaning: a fixture is defined in one place (conftest.py when files share it)."""
    tests = Path(__file__).resolve().parent
    defined: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list
            ):
                defined.setdefault(node.name, []).append(path.name)
    assert {name: files for name, files in defined.items() if len(files) > 1} == {}
