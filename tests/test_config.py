"""Settings from the environment: every AUTHCTL_* value is checked at start-up, naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from authctl import config
from authctl.errors import InvalidInput

from .conftest import Cli
from .serving import clean_env

#: One bad value for every variable authctl reads.
BAD_VALUES = {
    "AUTHCTL_ISSUER": "caf\x1b[31m",
    "AUTHCTL_AUDIENCE": "x" * 201,
    "AUTHCTL_ACCESS_TTL": "forever",
    "AUTHCTL_REFRESH_TTL": "1s",
    "AUTHCTL_MAX_TTL": "-5",
    "AUTHCTL_LEEWAY": "abc",
    "AUTHCTL_SUB_CLAIM": "email",
    "AUTHCTL_ARGON2_MEMORY_KIB": "1024",
    "AUTHCTL_ARGON2_TIME_COST": "two",
    "AUTHCTL_ARGON2_PARALLELISM": "0",
    "AUTHCTL_PASSWORD_MIN_LENGTH": "4",
    "AUTHCTL_PASSWORD_MIN_SCORE": "5",
    "AUTHCTL_LOCKOUT_THRESHOLD": "-1",
    "AUTHCTL_HIDE_FORBIDDEN_DETAIL": "maybe",
    "AUTHCTL_URL": "ftp://example.org",
    "AUTHCTL_DEBUG": "yes",
    "AUTHCTL_DB": " ",
}


def test_every_variable_authctl_reads_has_a_bad_value_here() -> None:
    assert set(BAD_VALUES) == {config.env_name(key) for key in config.SPECS} | set(config.OTHER_VARIABLES)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_authctl_variable_is_refused_naming_it(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"environment variable {name}:"):
        config.check_environment({name: BAD_VALUES[name]})


@pytest.mark.parametrize("args", [("user", "list"), ("token", "issue", "--as", "rahul"), ("config", "show"),
                                  ("key", "list"), ("token", "revoke", "--jti", "abc")])
def test_a_bad_authctl_setting_stops_every_command_in_one_line(seeded: Cli, monkeypatch, args) -> None:
    for name in ("AUTHCTL_LEEWAY", "AUTHCTL_HIDE_FORBIDDEN_DETAIL"):
        monkeypatch.setenv(name, BAD_VALUES[name])
        result = seeded(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert result.stderr.startswith(f"error: environment variable {name}:") and result.stderr.count("\n") == 1
        assert result.stdout == ""
        monkeypatch.delenv(name)


def _serve(db, **env: str) -> subprocess.CompletedProcess:
    """`authctl serve --port 0` in a real process; the timeout fails a server that started after all."""
    return subprocess.run([sys.executable, "-m", "authctl", "--db", str(db), "serve", "--port", "0"],
                          env={**clean_env(), **env}, capture_output=True, text=True, timeout=120)


def test_serve_with_a_bad_leeway_refuses_to_start(seeded: Cli) -> None:
    """The issue's case: `AUTHCTL_LEEWAY=abc authctl serve` exits 1 in one line and never listens."""
    done = _serve(seeded.db, AUTHCTL_LEEWAY="abc")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: environment variable AUTHCTL_LEEWAY: invalid duration 'abc': use e.g. 30s, 15m, 1h30m, 7d, 2w"]


def test_serve_checks_the_settings_it_will_use_before_starting(seeded: Cli) -> None:
    """Values valid one by one but not together (access_ttl above the stored max_ttl) stop serve too."""
    assert seeded("config", "set", "refresh_ttl", "1h").exit_code == 0
    assert seeded("config", "set", "max_ttl", "1d").exit_code == 0
    done = _serve(seeded.db, AUTHCTL_ACCESS_TTL="2d")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: access_ttl and refresh_ttl must not exceed max_ttl"]


def test_the_integration_fails_at_startup_on_a_bad_setting_not_with_500_later(seeded: Cli, monkeypatch) -> None:
    from authctl.app import create_app
    from authctl.fastapi import Auth

    monkeypatch.setenv("AUTHCTL_LEEWAY", "abc")
    with pytest.raises(InvalidInput, match="AUTHCTL_LEEWAY"):
        Auth(seeded.db)
    with pytest.raises(InvalidInput, match="AUTHCTL_LEEWAY"):
        create_app(seeded.db)
    monkeypatch.delenv("AUTHCTL_LEEWAY")
    with pytest.raises(InvalidInput, match="setting leeway"):
        Auth(seeded.db, settings={"leeway": "abc"})
    with pytest.raises(InvalidInput, match="unknown setting"):
        Auth(seeded.db, settings={"leway": "10s"})
    assert Auth(seeded.db, settings={"leeway": "10s"}).settings().leeway == 10


def test_good_values_from_the_environment_are_used(seeded: Cli, monkeypatch) -> None:
    import json

    monkeypatch.setenv("AUTHCTL_LEEWAY", "1m")
    monkeypatch.setenv("AUTHCTL_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AUTHCTL_DEBUG", "0")
    shown = seeded("config", "show", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["settings"]["leeway"] == 60
    assert json.loads(shown.stdout)["sources"]["leeway"] == "env AUTHCTL_LEEWAY"


def test_unset_setting_refuses_what_breaks_a_cross_check_and_writes_nothing(store) -> None:
    """The store checks an unset as it checks a set (``policy apply --prune`` calls it, not the CLI)."""
    store.set_setting("refresh_ttl", "1d")
    store.set_setting("max_ttl", "1d")
    with pytest.raises(InvalidInput, match="max_ttl"):
        store.unset_setting("refresh_ttl")  # the default 7d is above max_ttl 1d
    assert store.stored_settings()["refresh_ttl"] == 86400
    assert store.audit_log(action="config.unset") == []
    assert store.unset_setting("max_ttl") and store.unset_setting("refresh_ttl")  # defaults agree with each other
