"""A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, loopback only, trust auth.

Used by the ``pg_server`` fixture when ``AUTHCTL_TEST_PG`` is not set and Debian's binaries exist
(/usr/lib/postgresql/*/bin), and by .ci/run: ``python -m tests.pgcluster start DIR`` prints the URL,
``python -m tests.pgcluster stop DIR`` stops it. PostgreSQL refuses to run as root, so as root the
cluster runs as the ``postgres`` user (created by the Debian package).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.getuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.data = self.directory / "data"
        self.port_file = self.directory / "port"
        self.port = port

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/authctl"

    def start(self) -> str:
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        os.chmod(self.directory, 0o700)
        self.port = self.port or free_port()
        _as_owner([str(binaries / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "-E", "UTF8", "--locale=C"])
        options = (f"-k {self.directory} -h 127.0.0.1 -p {self.port} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=300")
        _as_owner([str(binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "log"), "-o", options,
                   "-w", "-t", "60", "start"])
        _as_owner([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "authctl"])
        self.port_file.write_text(str(self.port))
        return self.url

    def pg_ctl(self, *args: str) -> None:
        _as_owner([str(bin_dir() / "pg_ctl"), "-D", str(self.data), *args])

    def stop(self) -> None:
        if self.data.exists():
            try:
                self.pg_ctl("-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def temporary() -> Cluster:
    return Cluster(Path(tempfile.mkdtemp(prefix="authctl-pg-")))


def main(argv: list[str]) -> int:
    command, directory = argv[1], Path(argv[2])
    if command == "start":
        print(Cluster(directory).start())
    elif command == "stop":
        Cluster(directory).stop()
    else:
        print(f"usage: {argv[0]} start|stop DIR", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
