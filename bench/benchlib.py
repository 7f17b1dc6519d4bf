"""Small helpers shared by the benchmarks: statistics, a clean environment, a fast demo database."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

if str(REPO) not in sys.path:  # run from a checkout: import the package next to bench/
    sys.path.insert(0, str(REPO))


def stats(samples: Sequence[float]) -> dict[str, float]:
    """median, min and max of a non-empty sample list."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


_PYCACHE: str | None = None


def pycache_dir() -> str:
    """A private bytecode cache for the child processes of this run (see ``env``)."""
    global _PYCACHE
    if _PYCACHE is None:
        import atexit
        import shutil
        import tempfile

        _PYCACHE = tempfile.mkdtemp(prefix="authctl-bench-pycache-")
        atexit.register(shutil.rmtree, _PYCACHE, True)
    return _PYCACHE


def env(db: Path | None = None) -> dict[str, str]:
    """This process's environment without any AUTHCTL_* (and with AUTHCTL_DB when given).

    Child processes cache bytecode, as an installed package does (pip compiles it at
    install time), even where PYTHONDONTWRITEBYTECODE is set: in a private
    ``PYTHONPYCACHEPREFIX`` for this run, so nothing is written into the checkout
    or the virtualenv. The first (warm-up) run of each command fills it.
    """
    result = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCTL_")}
    result.pop("PYTHONDONTWRITEBYTECODE", None)
    result["PYTHONPYCACHEPREFIX"] = pycache_dir()
    if db is not None:
        result["AUTHCTL_DB"] = str(db)
    result.setdefault("COLUMNS", "100")
    return result


def authctl_argv() -> list[str]:
    """How to start authctl: the console script next to this interpreter, else ``python -m authctl``."""
    script = Path(sys.executable).parent / "authctl"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "authctl"]


def init_demo(db: Path, alg: str | None = None) -> str:
    """``authctl init --demo`` into ``db``; returns its output (the demo passwords)."""
    argv = authctl_argv() + ["--db", str(db), "init", "--demo", *(["--alg", alg] if alg else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env(db))
    if done.returncode != 0:
        raise RuntimeError(f"authctl init --demo failed: {done.stderr[-500:]}")
    return done.stdout


_PRECOMPUTED: dict[tuple[int, int, int], str] = {}


def one_hash(params: tuple[int, int, int] | None = None) -> str:
    """One real argon2id hash (configured parameters), computed once and reused for every bulk user."""
    from authctl.passwords import Hasher

    hasher = Hasher(*params) if params else Hasher()
    key = hasher.params
    if key not in _PRECOMPUTED:
        _PRECOMPUTED[key] = hasher.hash("Bench-Horse-Battery-42")
    return _PRECOMPUTED[key]


def add_bulk_users(db: Path, count: int, *, role: str | None = "student", prefix: str = "user") -> float:
    """Insert ``count`` users sharing one precomputed hash, in one transaction; returns seconds taken."""
    import time

    from authctl.store import Store

    with Store.open(db) as store:
        password_hash = one_hash(_params_of(store))
        roles = [role] if role else []
        records = [(f"{prefix}{i:06d}", password_hash, roles, False) for i in range(count)]
        start = time.perf_counter()
        store.add_users(records)
        return time.perf_counter() - start


def _params_of(store: Any) -> tuple[int, int, int]:
    settings = store.settings()
    return (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)


def fmt_seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def time_run(argv: list[str], environ: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall seconds of one whole subprocess run of ``argv`` (output discarded); fails on an unexpected exit."""
    import time

    start = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=environ, timeout=120)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv[2:6])} exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return elapsed


def interleaved(commands: dict[str, list[str]], environ: dict[str, str] | dict[str, dict[str, str]], *,
                rounds: int, seconds: float, ok: tuple[int, ...] = (0,), min_rounds: int = 3) -> tuple[dict[str, list[float]], int]:
    """Run every command once per round, in a shuffled order, for ``rounds`` rounds or ``seconds``.

    One warm-up run of each (not recorded) fills the page and bytecode caches.
    ``environ`` is one environment for all, or one per command label.
    Returns (label -> wall seconds of each run, rounds done).
    """
    import random
    import time

    def env_of(label: str) -> dict[str, str]:
        return environ[label] if label in environ else environ  # type: ignore[index,return-value]

    for label, argv in commands.items():
        time_run(argv, env_of(label), ok)
    samples: dict[str, list[float]] = {label: [] for label in commands}
    order = list(commands)
    rng = random.Random(1)
    deadline = time.monotonic() + seconds
    done = 0
    while done < rounds and (done < min_rounds or time.monotonic() < deadline):
        rng.shuffle(order)
        for label in order:
            samples[label].append(time_run(commands[label], env_of(label), ok))
        done += 1
    return samples, done
