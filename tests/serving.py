"""Helpers for tests that run real `authctl` processes: the CLI, and `authctl serve` on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from tests.apphelpers import PASSWORD

STARTUP_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Variables that make Rich colour output that is not a terminal (CI systems often set them):
#: the tests read plain text.
COLOUR_FORCING = ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def foreign_setting(name: str) -> bool:
    """An environment variable the tests must not inherit: authctl's own, or one forcing colour."""
    return name.startswith("AUTHCTL_") or name in COLOUR_FORCING


def clean_env() -> dict[str, str]:
    """The test process's environment without AUTHCTL_* or colour forcing (the autouse fixture set HOME)."""
    env = {k: v for k, v in os.environ.items() if not foreign_setting(k)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def authctl(*args: str, input: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m authctl ARGS`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "authctl", *args], input=input, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT_S, cwd=cwd, env=clean_env(),
    )


def seed_demo_db(db: Path, cwd: Path) -> None:
    """`authctl init --demo` with the demo users' password from stdin."""
    result = authctl("--db", str(db), "init", "--demo", "--password-stdin", input=PASSWORD + "\n", cwd=cwd)
    assert result.returncode == 0, result.stderr


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    stdout: str = ""
    stderr: str = ""


@contextmanager
def running_server(db: Path, cwd: Path, port: int = 0) -> Iterator[Server]:
    """`authctl serve` on 127.0.0.1; stopped with SIGINT, its output kept on the Server.

    Port 0 (the default) lets the system pick a free port as uvicorn binds it (no window in
    which another process could take a port chosen in advance); uvicorn's startup line names it. The
    output goes to files, not pipes: a busy server's access log would fill a pipe nobody
    reads until the end, and the server would block writing it.
    """
    out_path, err_path = cwd / "serve.out", cwd / "serve.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "authctl", "--db", str(db), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=err, cwd=cwd, env=clean_env(),
        )
    server = Server("", process)
    try:
        server.url = _wait_until_up(process, err_path)
        yield server
    finally:
        _stop(process)
        server.stdout, server.stderr = out_path.read_text(), err_path.read_text()


_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


def _wait_until_up(process: subprocess.Popen, err_path: Path) -> str:
    """The server's URL, once uvicorn has named its port and /health answers."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"authctl serve exited early with {process.returncode}: {err_path.read_text()}")
        listening = _LISTENING.search(err_path.read_text())
        if listening:
            try:
                if httpx.get(f"{listening[1]}/health", timeout=1).status_code == 200:
                    return listening[1]
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"authctl serve did not answer within {STARTUP_TIMEOUT_S}s: {err_path.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
