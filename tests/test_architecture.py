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
