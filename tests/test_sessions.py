"""Session logic (authctl.sessions) against a real SQLite store, with no HTTP in between."""

from __future__ import annotations

import asyncio

import pytest

from authctl import sessions, tokens
from authctl.errors import RefreshReused, TokenRevoked
from authctl.sessions import Sessions, TokenPair
from authctl.store import Store
from tests.conftest import STRONG


@pytest.fixture
def session(store: Store):
    made = Sessions(lambda: store)
    yield made
    made.close()


def test_login_returns_a_typed_pair_whose_tokens_verify(session: Sessions, store: Store) -> None:
    pair = session.check_credentials("rahul", STRONG)
    assert isinstance(pair, TokenPair) and pair.token_type == "bearer"
    assert tokens.verify(store, pair.access_token).user.username == "rahul"
    assert tokens.verify(store, pair.refresh_token, expected_type="refresh").user.username == "rahul"
    assert 0 < pair.expires_in <= pair.refresh_expires_in
    assert set(pair.as_json()) == {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}


def test_login_failure_is_none_for_every_cause_and_counts_against_the_folded_name(
    session: Sessions, store: Store
) -> None:
    assert session.check_credentials("nobody", STRONG) is None
    assert session.check_credentials("RAHUL", "wrong-password-1") is None
    assert store.login_failures(sessions.login_key("rahul"))[0] == 1
    assert session.check_credentials("rahul", "x" * 5000) is None  # over the length cap: no hash of it
    assert store.login_failures(sessions.login_key("rahul"))[0] == 2
    assert session.check_credentials("rahul", STRONG) is not None
    assert store.login_failures(sessions.login_key("rahul"))[0] == 0  # a success clears the count


def test_lockout_refuses_even_the_right_password(session: Sessions, store: Store) -> None:
    threshold = session.settings().lockout_threshold
    for _ in range(threshold):
        assert session.check_credentials("rahul", "wrong-password-1") is None
    assert store.login_failures(sessions.login_key("rahul"))[1]  # locked
    assert session.check_credentials("rahul", STRONG) is None


def test_login_delay_grows_from_backoff_after_and_is_capped(store: Store) -> None:
    made = Sessions(lambda: store, backoff_after=2, backoff_base=0.5, backoff_max=3.0)
    assert [made.login_delay(n) for n in (0, 1, 2, 3, 4, 5, 500)] == [0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_async_login_sleeps_out_the_backoff_before_hashing(store: Store) -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    made = Sessions(lambda: store, backoff_after=1, backoff_base=0.25, sleep=record, hash_concurrency=1)
    try:
        assert asyncio.run(made.login("rahul", "wrong-password-1")) is None
        assert slept == []
        assert isinstance(asyncio.run(made.login("rahul", STRONG)), TokenPair)
        assert slept == [0.25]
    finally:
        made.close()


def test_refresh_rotates_and_the_old_token_stops_working(session: Sessions, store: Store) -> None:
    first = session.check_credentials("suman", STRONG)
    assert first is not None
    second = session.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert tokens.verify(store, second.access_token).user.username == "suman"


def test_refresh_reuse_revokes_the_whole_family(session: Sessions, store: Store) -> None:
    first = session.check_credentials("suman", STRONG)
    assert first is not None
    second = session.refresh(first.refresh_token)
    with pytest.raises(RefreshReused):
        session.refresh(first.refresh_token)
    with pytest.raises(TokenRevoked):  # the rotated token of the same family is gone too
        session.refresh(second.refresh_token)


def test_logout_revokes_the_access_token_and_the_same_users_refresh_family(session: Sessions, store: Store) -> None:
    pair = session.check_credentials("rahul", STRONG)
    other = session.check_credentials("suman", STRONG)
    assert pair is not None and other is not None
    identity = tokens.verify(store, pair.access_token)
    assert session.logout(identity, other.refresh_token) is False  # someone else's family is left alone
    session.refresh(other.refresh_token)
    assert session.logout(tokens.verify(store, session.check_credentials("rahul", STRONG).access_token),
                          pair.refresh_token) is True
    with pytest.raises(TokenRevoked):
        tokens.verify(store, pair.access_token)
    with pytest.raises(TokenRevoked):
        session.refresh(pair.refresh_token)
