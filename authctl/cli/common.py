"""Shared pieces of the commands: global state, common options, password input."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..store import Store


@dataclass
class State:
    db_option: Optional[str] = None
    json: bool = False
    insecure_permissions: bool = False

    def open_store(self) -> "Store":
        from ..store import Store, resolve_db_path

        return Store.open(resolve_db_path(self.db_option), insecure_permissions=self.insecure_permissions)

    def wants_json(self, flag: bool) -> bool:
        return flag or self.json


state = State()

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")]
Generate = Annotated[bool, typer.Option("--generate", help="Generate a strong password and print it once.")]


def read_new_password(username: str, min_length: int, *, from_stdin: bool, generate: bool) -> tuple[str, bool]:
    """(password, generated). Never from an argument: stdin, a hidden prompt asked twice, or generated."""
    from .. import passwords

    if from_stdin and generate:
        raise InvalidInput("choose one of --password-stdin and --generate")
    if generate:
        return passwords.generate(), True
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput("no password on stdin")
        password = line.rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt(f"New password for {username}", hide_input=True, confirmation_prompt=True)
    else:
        raise InvalidInput("no password given: use --password-stdin, --generate, or run on a terminal")
    return passwords.check_policy(password, username, min_length), False
