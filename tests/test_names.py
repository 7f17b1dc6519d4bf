"""Name rules for users, roles and permissions."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from authctl.errors import InvalidInput
from authctl.names import (
    normalize_username, permission_satisfied, username_key, validate_permission, validate_role,
)


@pytest.mark.parametrize("name", ["rahul", "Suman", "a", "x" * 64, "rahul.k@example.com", "zoë", "用户"])
def test_valid_usernames(name: str) -> None:
    assert normalize_username(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "x" * 65, "has space", "tab\tname", "new\nline", "esc\x1b[31mred", "nul\x00", "zero\u200bwidth", "nbsp\u00a0x"],
)
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid username"):
        normalize_username(name)


def test_error_message_does_not_echo_escape_sequences_raw() -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_username("evil\x1b]0;pwned\x07")
    assert "\x1b" not in str(info.value)


@given(st.text(min_size=1, max_size=64))
def test_username_key_is_stable_and_case_insensitive(name: str) -> None:
    try:
        key = username_key(name)
    except InvalidInput:
        return
    assert username_key(key) == key
    # folding case never changes the identity (upper() is not a fold: dotless ı upper-cases to I)
    try:
        folded_key = username_key(normalize_username(name).casefold())
    except InvalidInput:  # folding can lengthen a name past the limit (ß -> ss)
        return
    assert folded_key == key


@pytest.mark.parametrize("role", ["admin", "student", "course_staff", "tier-2"])
def test_valid_roles(role: str) -> None:
    assert validate_role(role) == role


@pytest.mark.parametrize("role", ["Admin", "", "2fast", "has space", "a:b", "x" * 65])
def test_invalid_roles(role: str) -> None:
    with pytest.raises(InvalidInput, match="invalid role name"):
        validate_role(role)


@pytest.mark.parametrize("perm", ["students:read", "students:*", "admin:access", "course_notes:write-all"])
def test_valid_permissions(perm: str) -> None:
    assert validate_permission(perm) == perm


@pytest.mark.parametrize("perm", ["students", "Students:read", "*:*", "students:read:x", ":read", "students:", "a:**"])
def test_invalid_permissions(perm: str) -> None:
    with pytest.raises(InvalidInput, match="resource:action"):
        validate_permission(perm)


def test_wildcard_covers_every_action_of_its_resource_only() -> None:
    assert permission_satisfied("students:delete", {"students:*"}) == "students:*"
    assert permission_satisfied("students:delete", {"students:delete"}) == "students:delete"
    assert permission_satisfied("courses:delete", {"students:*"}) is None


@pytest.mark.parametrize("name", ["anonymous", "Anonymous", "ＡＮＯＮＹＭＯＵＳ"])
def test_anonymous_is_reserved_for_requests_without_a_token(name: str) -> None:
    from authctl.names import new_username

    with pytest.raises(InvalidInput, match="reserved"):
        new_username(name)
    assert normalize_username("anonymous") == "anonymous"  # looking it up is still fine


def test_nearest_names_the_closest_known_name_or_lists_the_known_ones() -> None:
    from authctl.names import nearest

    assert nearest("studnet", ["admin", "student"]) == " (did you mean 'student'?)"
    assert nearest("zzz", ["student", "admin"]) == " (known: admin, student)"
    assert nearest("zzz", [f"role{i:02}" for i in range(13)]) == ""  # too many to list
