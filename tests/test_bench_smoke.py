"""The benchmarks stay runnable: their modules import, bench/run.py answers --help, and the
baseline app works. No timing is asserted here, ever; wrk is never required."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
MODULES = ("benchlib", "baseline_cli", "bench_coldstart", "bench_store", "bench_tokens", "bench_app", "bench_bulk",
           "bench_matrix", "bench_native", "bench_plugin", "bench_pg", "app_factory", "run", "soak")


@pytest.fixture
def bench_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(BENCH))
    return BENCH


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports(bench_path: Path, name: str) -> None:
    module = importlib.import_module(name)
    if name.startswith("bench_"):
        assert callable(module.run)


def test_run_help_lists_every_section() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout
    for section in ("coldstart", "store", "tokens", "app", "bulk", "matrix", "native", "plugin"):
        assert section in done.stdout


def test_run_rejects_an_unknown_section() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "run.py"), "--only", "nope"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "unknown section" in done.stderr


def test_soak_refuses_a_duration_that_is_not_positive() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "soak.py"), "--seconds", "0"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "--seconds must be positive" in done.stderr


def test_baseline_cli_decodes_a_token(tmp_path: Path) -> None:
    import jwt

    secret = "s" * 32
    token = jwt.encode({"sub": "x", "aud": "a", "iss": "i"}, secret, algorithm="HS256")
    (tmp_path / "key").write_text(secret)
    done = subprocess.run(
        [sys.executable, str(BENCH / "baseline_cli.py"), "decode", token, "--key-file", str(tmp_path / "key"),
         "--alg", "HS256", "--audience", "a", "--issuer", "i"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"sub": "x"' in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["user", "show", "nobody"], ["token", "inspect", "x.y.z"]])
def test_fast_commands_import_no_web_stack(tmp_path: Path, argv: list[str]) -> None:
    """--help, user show and token inspect never import the web stack, asyncio or psycopg (on SQLite)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCTL_")}
    env["AUTHCTL_DB"] = str(tmp_path / "none.db")
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "authctl", *argv], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "authctl" in imported
    assert not imported & {"fastapi", "starlette", "uvicorn", "httpx", "pydantic", "asyncio", "psycopg"}
