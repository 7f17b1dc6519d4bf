"""Password policy and hashing: each rule, legacy hashes and their upgrade."""

from __future__ import annotations

import pytest
from passlib.hash import bcrypt, pbkdf2_sha256

from authctl.config import Settings, parse_setting
from authctl.errors import InvalidInput, PasswordRejected
from authctl.passwords import (
    ESTIMATE_CHARS, MIN_SCORE, Hasher, check_importable_hash, check_new, check_policy, generate, hash_many,
)

from .apphelpers import PASSWORD


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher()


@pytest.mark.parametrize(
    ("password", "username", "rule"),
    [
        ("short7!", "rahul", "shorter than 8"),
        ("x" * 1025, "rahul", "longer than 1024"),
        ("😀" * 1025, "rahul", "longer than 1024"),
        ("ﷺ" * 100, "rahul", "longer than 1024"),  # NFKC expands each to 18 characters: checked after normalising
        ("rahul", "rahul", "shorter"),
        ("rahulrahul", "rahul", "similar to the username"),
        ("Rahul123", "rahul", "similar to the username"),
        ("Rahul-2024!", "rahul", "similar to the username"),
        ("rahull", "Rahul", "shorter"),
        ("suman.k@example", "suman.k@example.com", "similar to the username"),
        ("password1", "suman", "commonly used"),
        ("Qwerty123", "suman", "commonly used"),
        ("tab\there-is-long", "suman", "control characters"),
    ],
)
def test_each_rule_names_itself(password: str, username: str, rule: str) -> None:
    with pytest.raises(PasswordRejected, match=rule):
        check_policy(password, username)


@pytest.mark.parametrize("password", ["rahul-likes-long-walks", "Vq7#mZ2p-Lk", "ωλπζ-κθμν-42", PASSWORD])
def test_acceptable_passwords_pass_unchanged(password: str) -> None:
    assert check_policy(password, "rahul") == password


@pytest.mark.parametrize("password", ["😀" * 1024, "ω" * 9])
def test_length_rules_count_characters_not_bytes(password: str) -> None:
    """1024 four-byte characters are within the limits (strength left out: these repeat one letter)."""
    assert check_policy(password, "rahul", min_score=0) == password


def test_minimum_length_is_a_setting() -> None:
    assert check_policy("Vq7#mZ2p-Lk9x", "rahul", 13) == "Vq7#mZ2p-Lk9x"
    with pytest.raises(PasswordRejected, match="shorter than 14"):
        check_policy("Vq7#mZ2p-Lk9x", "rahul", 14)


@pytest.mark.parametrize("password", ["aaaaaaaa", "abcdefgh", "Password123!", "p@ssw0rd1", "letmein!!"])
def test_guessable_passwords_are_refused_with_the_estimators_feedback(password: str) -> None:
    """zxcvbn's estimate below the minimum score refuses; its warning or suggestions say why."""
    with pytest.raises(PasswordRejected, match=r"too easy to guess \(strength [0-2] of 4, at least 3 needed\): \S"):
        check_policy(password, "suman")


def test_the_username_and_its_parts_are_words_an_attacker_tries() -> None:
    assert check_policy("Przybylski#2019", "tomasz") == "Przybylski#2019"
    with pytest.raises(PasswordRejected, match="too easy to guess"):
        check_policy("Przybylski#2019", "przybylski.tomasz")
    with pytest.raises(PasswordRejected, match="too easy to guess"):
        check_policy("Przybylski#2019", "tomasz", user_inputs=["przybylski"])


def test_minimum_score_is_a_setting() -> None:
    """Vq7#mZ2p scores 2: accepted at 2, refused at the default 3, and 0 turns the estimate off."""
    assert check_policy("Vq7#mZ2p", "rahul", min_score=2) == "Vq7#mZ2p"
    assert check_policy("aaaaaaaa", "rahul", min_score=0) == "aaaaaaaa"
    with pytest.raises(PasswordRejected, match="strength 2 of 4, at least 3"):
        check_policy("Vq7#mZ2p", "rahul")
    assert Settings().password_min_score == MIN_SCORE == 3
    assert parse_setting("password_min_score", "4") == 4
    with pytest.raises(InvalidInput, match="password_min_score"):
        parse_setting("password_min_score", "5")


def test_the_estimate_sees_a_bounded_prefix_of_long_passwords(monkeypatch) -> None:
    """zxcvbn's cost grows fast with length (and it refuses over 72 characters): it is fed a bounded prefix."""
    import zxcvbn

    seen: list[int] = []
    real = zxcvbn.zxcvbn

    def spy(password, user_inputs=None, **kwargs):
        seen.append(max([len(password), *(len(word) for word in user_inputs or [])]))
        return real(password, user_inputs=user_inputs, **kwargs)

    monkeypatch.setattr(zxcvbn, "zxcvbn", spy)
    long_password = generate() * 40  # about 1000 characters
    assert check_policy(long_password[:1024], "x" * 200) == long_password[:1024]
    assert seen and max(seen) <= ESTIMATE_CHARS


def test_known_good_passwords_of_the_suite_and_the_demo_pass() -> None:
    from authctl.app.data import DEMO_USERS

    for username, role in DEMO_USERS:
        assert check_new(PASSWORD, username, Settings(), [role]) == PASSWORD
        assert check_new(generate(), username, Settings(), [role])


def test_nfkc_normalisation_makes_compatible_forms_equal(hasher: Hasher) -> None:
    stored = hasher.hash("ﬁne-Password-42")  # the ligature ﬁ is NFKC "fi"
    assert hasher.verify("fine-Password-42", stored) == (True, None)
    assert check_policy("Ｓｔｒｏｎｇ-Ｐａｓｓ-42", "rahul") == "Strong-Pass-42"


def test_new_hashes_are_argon2id_with_owasp_parameters(hasher: Hasher) -> None:
    stored = hasher.hash("Correct-Horse-Battery-9")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify("Correct-Horse-Battery-9", stored) == (True, None)
    assert hasher.verify("correct-horse-battery-9", stored) == (False, None)


def test_raised_parameters_mark_old_hashes_for_upgrade(hasher: Hasher) -> None:
    stored = hasher.hash("Correct-Horse-Battery-9")
    stronger = Hasher(memory_kib=32768, time_cost=3)
    ok, upgraded = stronger.verify("Correct-Horse-Battery-9", stored)
    assert ok and upgraded is not None and "m=32768,t=3" in upgraded


@pytest.mark.parametrize("legacy", [bcrypt, pbkdf2_sha256])
def test_legacy_hashes_verify_and_are_upgraded_to_argon2id(hasher: Hasher, legacy) -> None:
    stored = legacy.hash("Legacy-Password-7")
    assert check_importable_hash(stored) in ("bcrypt", "pbkdf2_sha256")
    ok, upgraded = hasher.verify("Legacy-Password-7", stored)
    assert ok and upgraded.startswith("$argon2id$")
    assert hasher.verify("Legacy-Password-7", upgraded) == (True, None)
    assert hasher.verify("wrong-password", stored) == (False, None)


def test_bcrypt_over_72_bytes_verifies_the_prefix_but_rehashes_the_whole(hasher: Hasher) -> None:
    long_password = "L" * 72 + "-tail-that-bcrypt-never-saw"
    stored = bcrypt.hash(long_password.encode()[:72])
    ok, upgraded = hasher.verify(long_password, stored)
    assert ok and upgraded is not None
    assert hasher.verify(long_password, upgraded) == (True, None)
    assert hasher.verify("L" * 72, upgraded) == (False, None)  # the new hash covers the full password


def test_unknown_hash_formats_are_refused_on_import() -> None:
    with pytest.raises(InvalidInput, match="not an argon2, bcrypt or pbkdf2_sha256"):
        check_importable_hash("$1$md5crypt$abcdefgh")


def test_missing_hash_never_verifies(hasher: Hasher) -> None:
    assert hasher.verify("anything-at-all", None) == (False, None)
    assert hasher.verify("anything-at-all", "garbage") == (False, None)


def test_generated_passwords_pass_the_policy_and_differ() -> None:
    first, second = generate(), generate()
    assert first != second and len(first) >= 20
    assert check_policy(first, "rahul") == first


def test_hash_many_in_processes_matches_one_by_one(hasher: Hasher) -> None:
    passwords = [f"Bulk-Password-{i}" for i in range(6)]
    hashes = list(hash_many(passwords, hasher.params, workers=2))
    assert len(hashes) == 6
    assert all(hasher.verify(p, h) == (True, None) for p, h in zip(passwords, hashes))


def test_one_way_to_create_a_user_with_a_password_hashes_with_the_databases_parameters(store) -> None:
    """passwords.add_user / set_password (user add, user passwd, the demo seed): argon2id at the stored cost."""
    from authctl import passwords

    store.set_setting("argon2_time_cost", 3)
    created = passwords.add_user(store, "priya", PASSWORD, ["student"])
    stored = store.get_user("priya").password_hash
    assert created.roles == ("student",) and stored.startswith("$argon2id$") and ",t=3," in stored
    assert Hasher(time_cost=3).verify(PASSWORD, stored) == (True, None)
    changed = passwords.set_password(store, "priya", PASSWORD + "!x")
    assert changed.token_version == created.token_version + 1
    assert Hasher(time_cost=3).verify(PASSWORD + "!x", store.get_user("priya").password_hash)[0]
