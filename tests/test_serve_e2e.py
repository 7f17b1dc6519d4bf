"""End to end: the real `authctl serve` on a free loopback port, driven over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.apphelpers import PASSWORD

STARTUP_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _authctl(*args: str, input: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "authctl", *args], input=input, capture_output=True, text=True, timeout=60, cwd=cwd,
        env=_env(),
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCTL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"authctl serve exited early with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"authctl serve did not answer within {STARTUP_TIMEOUT_S}s")


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=STOP_TIMEOUT_S)
    return out, err


def _seed(db: Path, cwd: Path) -> None:
    """`authctl init`, then the demo seed with a known password (the library call `init --demo` makes)."""
    result = _authctl("--db", str(db), "init", cwd=cwd)
    assert result.returncode == 0, result.stderr
    code = (
        "import sys; from authctl.store import Store; from authctl.app.data import seed_demo\n"
        "pw = sys.stdin.readline().strip()\n"
        "with Store.open(sys.argv[1]) as s: seed_demo(s, {n: pw for n in ('suman', 'rahul', 'priya')})\n"
    )
    seeded = subprocess.run([sys.executable, "-c", code, str(db)], input=PASSWORD + "\n", capture_output=True,
                            text=True, timeout=60, cwd=cwd, env=_env())
    assert seeded.returncode == 0, seeded.stderr


@pytest.mark.slow
def test_serve_end_to_end(tmp_path):
    db = tmp_path / "e2e.db"
    _seed(db, tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "authctl", "--db", str(db), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(),
    )
    out = err = ""
    try:
        _wait_until_up(url, process)
        with httpx.Client(base_url=url, timeout=10) as client:
            rahul = client.post("/token", data={"username": "rahul", "password": PASSWORD})
            assert rahul.status_code == 200, rahul.text
            rahul_token = rahul.json()["access_token"]
            denied = client.delete("/student/3", headers={"Authorization": f"Bearer {rahul_token}"})
            assert denied.status_code == 403
            assert "students:delete" in denied.json()["detail"]
            assert client.delete("/student/3").status_code == 401

            suman = client.post("/token", data={"username": "suman", "password": PASSWORD})
            assert suman.status_code == 200, suman.text
            allowed = client.delete("/student/3", headers={"Authorization": f"Bearer {suman.json()['access_token']}"})
            assert allowed.status_code == 200
            assert allowed.json() == {"message": "Student 3 deleted"}
            assert client.get("/docs").status_code == 200
            # a token in the query string is ignored, and not written to the access log
            assert client.get(f"/profile?access_token={rahul_token}").status_code == 401
    finally:
        out, err = _stop(process)
    assert process.returncode == 0, err
    assert f"{url}/docs" in err and "/token" in err
    assert "server stopped" in err
    assert rahul_token not in out + err


@pytest.mark.slow
def test_serve_refuses_a_missing_database(tmp_path):
    result = _authctl("--db", str(tmp_path / "missing.db"), "serve", "--port", str(_free_port()), cwd=tmp_path)
    assert result.returncode == 1
    assert "no database" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_serve_bad_app_is_one_line_exit_1(tmp_path):
    db = tmp_path / "a.db"
    assert _authctl("--db", str(db), "init", cwd=tmp_path).returncode == 0
    result = _authctl("--db", str(db), "serve", "--app", "no_such_module_here:app", "--port", str(_free_port()),
                      cwd=tmp_path)
    assert result.returncode == 1
    assert "no module named" in result.stderr and result.stderr.count("\n") == 1
