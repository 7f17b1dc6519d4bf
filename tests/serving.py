"""Helpers for tests that run real `authctl` processes: the CLI, and `authctl serve` on a free loopback port."""

from __future__ import annotations

import os
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
    """`authctl init`, then the demo seed with a known password (the library call `init --demo` makes)."""
    result = authctl("--db", str(db), "init", cwd=cwd)
    assert result.returncode == 0, result.stderr
    code = (
        "import sys; from authctl.store import Store; from authctl.app.data import seed_demo\n"
        "pw = sys.stdin.readline().strip()\n"
        "with Store.open(sys.argv[1]) as s: seed_demo(s, {n: pw for n in ('suman', 'rahul', 'priya')})\n"
    )
    seeded = subprocess.run([sys.executable, "-c", code, str(db)], input=PASSWORD + "\n", capture_output=True,
                            text=True, timeout=COMMAND_TIMEOUT_S, cwd=cwd, env=clean_env())
    assert seeded.returncode == 0, seeded.stderr


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    stdout: str = ""
    stderr: str = ""


@contextmanager
def running_server(db: Path, cwd: Path) -> Iterator[Server]:
    """`authctl serve` on a free 127.0.0.1 port; stopped with SIGINT, its output kept on the Server.

    The output goes to files, not pipes: a busy server's access log would fill a pipe
    nobody reads until the end, and the server would block writing it.
    """
    port = free_port()
    out_path, err_path = cwd / f"serve-{port}.out", cwd / f"serve-{port}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "authctl", "--db", str(db), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=err, cwd=cwd, env=clean_env(),
        )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _stop(process)
        server.stdout, server.stderr = out_path.read_text(), err_path.read_text()


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"authctl serve exited early with {server.process.returncode}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"authctl serve did not answer within {STARTUP_TIMEOUT_S}s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
