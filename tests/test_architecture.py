"""The house rules, pinned: errors carry hints and the CLI names the options; layers import what they may."""

from __future__ import annotations

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


def test_lazy_cli_builds_the_same_commands_and_help_as_typer_eagerly() -> None:
    import typer
    import typer.main

    from authctl.cli import BoundaryGroup, app

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
