"""Shared pieces of the commands: global state, common options, password input."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import InvalidInput, PasswordRejected

if TYPE_CHECKING:
    from ..store import Store


@dataclass
class State:
    db_option: Optional[str] = None
    insecure_permissions: bool = False

    def open_store(self) -> "Store":
        from ..store import Store, resolve_db_path

        return Store.open(resolve_db_path(self.db_option), insecure_permissions=self.insecure_permissions)


state = State()

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")]
Generate = Annotated[bool, typer.Option("--generate", help="Generate a strong password and print it once.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")]


def on_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on a terminal; without one, refuse unless --yes. A "no" changes nothing (exit 1)."""
    if yes:
        return
    if not on_terminal():
        raise InvalidInput(f"{question.rstrip('?')}: not confirmed (no terminal); pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise InvalidInput("not confirmed; nothing was changed")


# keys.GENERATED_ALGS and keys.SUPPORTED_ALGS, spelled here so --help need not import keys (tests/test_cli_conventions.py pins them equal)
class Alg(str, Enum):
    ES256 = "ES256"
    EdDSA = "EdDSA"
    RS256 = "RS256"
    HS256 = "HS256"


AnyAlg = Enum("AnyAlg", {name: name for name in (  # type: ignore[misc]
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "HS256", "HS384", "HS512",
)}, type=str)


# --------------------------------------------------------------------------- completion


def _db_names(ctx: Any, query: str, incomplete: str) -> list[str]:
    """Names from the database for shell completion: read-only, cheap, and never an error."""
    import os

    from ..store.engines import peek_names

    try:
        root = ctx.find_root() if ctx is not None else None
        path = (root.params.get("db") if root is not None else None) or os.environ.get("AUTHCTL_DB") or "authctl.db"
        if not os.path.isfile(path):
            return []
        names = peek_names(path, query)
    except Exception:  # completion must never fail, whatever the file holds
        return []
    return [name for name in names if name.lower().startswith(incomplete.lower())][:200]


def complete_user(ctx: typer.Context, incomplete: str) -> list[str]:
    return _db_names(ctx, "SELECT username FROM users ORDER BY username LIMIT 1000", incomplete)


def complete_role(ctx: typer.Context, incomplete: str) -> list[str]:
    return _db_names(ctx, "SELECT name FROM roles ORDER BY name LIMIT 1000", incomplete)


def complete_kid(ctx: typer.Context, incomplete: str) -> list[str]:
    return _db_names(ctx, "SELECT kid FROM signing_keys ORDER BY created_at DESC LIMIT 1000", incomplete)


def complete_target(ctx: typer.Context, incomplete: str) -> list[str]:
    return _db_names(ctx, "SELECT name FROM targets ORDER BY name LIMIT 1000", incomplete)


def complete_setting(incomplete: str) -> list[str]:
    from ..config import SPECS

    return [key for key in SPECS if key.startswith(incomplete.lower())]


UserArg = Annotated[str, typer.Argument(help="Username (case-insensitive).", metavar="USER", show_default=False,
                                         autocompletion=complete_user)]
RoleArg = Annotated[str, typer.Argument(help="Role name (lower-case identifier).", metavar="ROLE", show_default=False,
                                         autocompletion=complete_role)]
TargetArg = Annotated[str, typer.Argument(help="Target name, e.g. shop.", metavar="TARGET", show_default=False,
                                           autocompletion=complete_target)]
KidArg = Annotated[str, typer.Argument(help="Key id (see `authctl key list`).", metavar="KID", show_default=False,
                                        autocompletion=complete_kid)]
SettingArg = Annotated[str, typer.Argument(help="Setting name (see `authctl config show`).", metavar="KEY",
                                            show_default=False, autocompletion=complete_setting)]


def read_bounded(source: str, limit: int, *, refuse_over: str | None = None) -> bytes:
    """The bytes of FILE, or of stdin for ``-``, at most ``limit`` of them: the one bounded reader.

    A longer input is cut at ``limit`` (a size check downstream still sees it is too long),
    or, with ``refuse_over`` naming what it is, refused: a cut secret is another secret.
    """
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read(limit + 1) if stream is not None else sys.stdin.read(limit + 1).encode("utf-8")
    else:
        try:
            with open(source, "rb") as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}") from None
    if len(data) > limit:
        if refuse_over is not None:
            raise InvalidInput(f"the {refuse_over} is over {limit // (1024 * 1024)} MiB; no key is that long")
        data = data[:limit]
    return data


def read_stdin(*, line: bool = False, bom: bool = False) -> str:
    """stdin (its first line with ``line``) as UTF-8 text; anything else is one line naming the encoding."""
    from ..files import decode_utf8

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # already text (an embedding that swapped stdin)
        text = sys.stdin.readline() if line else sys.stdin.read()
        return text.removeprefix("\ufeff") if bom else text
    return decode_utf8(stream.readline() if line else stream.read(), "stdin", bom=bom)


def read_new_password(
    username: str, settings: Any, *, from_stdin: bool, generate: bool, user_inputs: tuple[str, ...] = ()
) -> tuple[str, bool]:
    """(password, generated). Never from an argument: stdin, a hidden prompt asked twice, or generated.

    A password the policy refuses ends the command, except at the prompt: there the
    reason is shown and the question asked again.
    """
    from .. import passwords, render

    if from_stdin and generate:
        raise InvalidInput("choose one of --password-stdin and --generate")
    if generate:
        return passwords.generate(), True
    if from_stdin:
        line = read_stdin(line=True)
        if not line:
            raise InvalidInput("no password on stdin")
        return passwords.check_new(line.rstrip("\r\n"), username, settings, user_inputs), False
    if not sys.stdin.isatty():
        raise InvalidInput("no password given: use --password-stdin, --generate, or run on a terminal")
    while True:
        password = typer.prompt(f"New password for {username}", hide_input=True, confirmation_prompt=True)
        try:
            return passwords.check_new(password, username, settings, user_inputs), False
        except PasswordRejected as exc:
            render.error(f"{exc}; try another")


# --------------------------------------------------------------------------- start-up time
#
# Typer builds the click command of every registered command up front (reading
# each signature: ~1.5 ms a command, ~40 commands), and typer >= 0.2x converts
# parameter values through a pydantic TypeAdapter built when the parameter is
# first processed, even when its value is None: any option left unset, or a
# plain ``str`` such as --db, imports pydantic (~0.15 s) on every run.
# ``LazyGroup`` builds only the commands a run looks up (`authctl user show`
# builds ``user`` and ``show``; ``--help`` lists names and one-line help), and
# every parameter gets a converter that builds typer's own only when a value
# needs converting: a ``str`` for a plain ``str`` parameter (a ``bool`` for a
# flag) is returned as it is, which is what typer's converter returns for it.
# Behaviour is unchanged: listing, help, completion and "No such command ...
# Did you mean" see every command, and every other value is converted by typer.

_DEFERRED: Any = False


def _deferred_converter() -> Any:
    """A typer ``RuntimeParam`` that builds typer's own on first need (None: this typer has no such layer)."""
    global _DEFERRED
    if _DEFERRED is False:
        try:
            from typer._coercion import RuntimeParam, build_runtime_param
        except ImportError:  # an older typer: click converts, pydantic is never imported
            _DEFERRED = None
            return None

        @dataclass(frozen=True)
        class Deferred(RuntimeParam):
            plain: bool = False  # a plain str/bool parameter: a value of that type needs no conversion

            def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
                if self.plain and type(value) is self.annotation:
                    return value
                real = build_runtime_param(param.type_descriptor)
                param._runtime_param = real
                return real._coerce_value(value, param=param, ctx=ctx)

        _DEFERRED = Deferred
    return _DEFERRED


#: Help placeholders: what an option's value is, never its Python type (``<str>``).
PLACEHOLDERS = {
    "--db": "FILE", "--output": "FILE", "--key": "FILE", "--jwks": "FILE", "--key-file": "FILE", "--expect": "FILE",
    "--passwords-file": "FILE", "--keep": "DIR", "--role": "ROLE", "--inherits": "ROLE", "--as": "USER",
    "--users": "USER,...", "--app": "MODULE:ATTR", "--ttl": "DURATION", "--kid": "KID", "--target": "TARGET",
    "--claim": "KEY=VALUE", "--param": "NAME=VALUE", "--url": "URL", "--token": "TOKEN", "--user-sub": "USER=VALUE",
    "--user-scopes": "USER=A,B", "--login": "PATH", "--whoami-path": "PATH", "--openapi-url": "PATH",
    "--description": "TEXT", "--reason": "TEXT", "--issuer": "ISS", "--audience": "AUD", "--iss": "ISS",
    "--aud": "AUD", "--jti": "JTI", "--action": "ACTION", "--target-secret": "NAME=FILE", "--scope-claim": "CLAIM",
    "--send": "HOW", "--limit": "N", "--offset": "N", "--workers": "N", "--host": "HOST", "--port": "PORT", "--timeout": "SECONDS", "--rsa-bits": "BITS",
}


def _no_type(ctx: Any) -> None:
    return None


def placeholders(param: Any) -> None:
    """A flag shows no type; an option or argument shows a placeholder (USER, FILE), not ``<str>``."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        return  # typer shows the choices themselves
    if getattr(param, "param_type_name", "") == "argument":
        if param.metavar is None:
            param.metavar = param.name.upper()
        param.display_type_rich = _no_type
    elif param.metavar is None:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        else:
            long = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
            param.metavar = PLACEHOLDERS.get(long, long.lstrip("-").upper())


def fast_params(params: Any) -> None:
    """Give each typer parameter in ``params`` that has no converter yet the deferred one (and its placeholder)."""
    for param in params:
        placeholders(param)
    converter = _deferred_converter()
    if converter is None:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", True) is not None:
            continue
        info = descriptor.parameter_info
        plain = (descriptor.annotation in (str, bool) and descriptor.file_annotation is None and info.parser is None
                 and not descriptor.is_path and not descriptor.is_choice)
        param._runtime_param = converter(parameter_info=info, annotation=descriptor.annotation, plain=plain)


class _FastParams:
    def get_params(self, ctx: Any) -> Any:
        params = super().get_params(ctx)  # type: ignore[misc]
        fast_params(params)
        return params


class FastCommand(_FastParams, TyperCommand):
    """A typer command whose parameters build typer's converter only when a value needs it."""


class LazyGroup(_FastParams, TyperGroup):
    """A typer group whose commands are built when first looked up, not all at start-up.

    ``lazy_source`` holds the registrations (typer ``CommandInfo`` / ``TyperInfo``)
    still to build; ``make_lazy`` moves a ``Typer``'s registrations there.
    """

    lazy_source: "tuple[list[Any], list[Any]] | None" = None
    lazy_options: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Any] | None = None

    def pending(self) -> dict[str, Any]:
        """name -> registration not built yet, in typer's order (commands, then groups)."""
        if self._pending is None:
            from typer.main import get_command_name

            self._pending = {}
            commands, groups = self.lazy_source or ((), ())
            for info in commands:
                self._pending.setdefault(info.name or get_command_name(info.callback.__name__), info)
            for info in groups:
                if info.name:
                    self._pending.setdefault(info.name, info)
                else:  # a nameless group contributes its commands: build it now, as typer does
                    for name, command in self._build(info).commands.items():
                        self.commands.setdefault(name, command)
        return self._pending

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands) + [name for name in self.pending() if name not in self.commands]

    _listing = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the command list needs names and help, not parameters
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            pending = self.pending()
            if self._listing and cmd_name in pending and not _is_group(pending[cmd_name]):
                return self._listed(cmd_name, pending[cmd_name])
            if cmd_name in pending:
                self.commands[cmd_name] = self._build(pending[cmd_name])
            else:  # a typo: build them all, so typer's "Did you mean ..." sees every name
                for name in list(pending):
                    if name not in self.commands:
                        self.commands[name] = self._build(pending[name])
        return self.commands.get(cmd_name)

    def _listed(self, name: str, info: Any) -> Any:
        """What a command list shows of a command (its help), without reading its parameters."""
        import inspect

        return TyperCommand(
            name=name, help=inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help),
            epilog=info.epilog, short_help=info.short_help, hidden=info.hidden, deprecated=info.deprecated,
            rich_markup_mode=self.rich_markup_mode, rich_help_panel=info.rich_help_panel,
        )

    def _build(self, info: Any) -> Any:
        import copy

        from typer.main import TyperInfo, get_command_from_info, get_group_from_info, solve_typer_info_defaults

        short = self.lazy_options.get("pretty_exceptions_short", True)
        if not isinstance(info, TyperInfo):
            if info.cls in (None, TyperCommand):  # else a custom command class: as typer builds it
                info = copy.copy(info)
                info.cls = FastCommand
                info.epilog = info.epilog or GLOBAL_OPTIONS
            return get_command_from_info(info, pretty_exceptions_short=short, rich_markup_mode=self.rich_markup_mode)
        if solve_typer_info_defaults(info).cls in (None, TyperGroup):  # else a custom group class: as typer builds it
            sub = info.typer_instance
            assert sub is not None  # a registered group always has its Typer
            shell = copy.copy(sub)  # the group itself (callback, help, settings), without its commands
            shell.registered_commands, shell.registered_groups = [], []
            info = copy.copy(info)
            info.typer_instance = shell
            source = (sub.registered_commands, sub.registered_groups)
            info.cls = type("LazyGroup", (LazyGroup,), {
                "__module__": __name__, "lazy_source": source, "lazy_options": self.lazy_options,
            })
        return get_group_from_info(info, pretty_exceptions_short=short, rich_markup_mode=self.rich_markup_mode,
                                   suggest_commands=self.suggest_commands)


GLOBAL_OPTIONS = "Global options, before or after the command: --db FILE, --json, --insecure-permissions."


def _is_group(info: Any) -> bool:
    from typer.main import TyperInfo

    return isinstance(info, TyperInfo)


def make_lazy(app: "typer.Typer") -> None:
    """Let ``app``'s group class build ``app``'s commands and groups on demand, not at start-up."""
    cls = app.info.cls
    assert isinstance(cls, type) and issubclass(cls, LazyGroup)
    cls.lazy_source = (app.registered_commands, app.registered_groups)
    cls.lazy_options = {"pretty_exceptions_short": app.pretty_exceptions_short}
    app.registered_commands, app.registered_groups = [], []


def parse_claim_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs from ``--claim``; a value that parses as JSON is taken as JSON."""
    import json

    from ..jose import no_constant
    from ..names import quoted

    claims: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidInput(f"--claim needs key=value, got {quoted(pair)}")
        if name in claims:
            raise InvalidInput(f"claim {name!r} given twice")
        try:
            value: Any = json.loads(raw, parse_constant=no_constant)
        except ValueError:
            value = raw
        claims[name] = value
    from ..tokens import check_extra_claims

    return check_extra_claims(claims)
