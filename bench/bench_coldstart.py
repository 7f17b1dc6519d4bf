"""Cold start: whole ``authctl`` processes against a minimal Typer app, interleaved.

Every figure is a complete subprocess run (interpreter start, imports, the
command, exit), timed from the parent. One round runs every command once, in a
shuffled order; rounds repeat, so machine load drifting over the run hits
authctl and the baselines alike. Reported: median and min-max per command, and
the ratio of medians to its baseline.

    authctl --help                         vs  baseline --help             target <= 1.2
    authctl token inspect TOKEN (verified) vs  baseline decode TOKEN       target <= 1.3
    authctl user show rahul                vs  baseline --help             target <= 1.3
    authctl check DELETE /student/3 --as rahul
                                           vs  python -c "import fastapi, typer, jwt"   target <= 1.3

The baseline app is ``bench/baseline_cli.py`` (its ``decode`` imports PyJWT
lazily and verifies the same token with the same public key, aud and iss).
A separate ``-X importtime`` run of each authctl command checks that --help,
token inspect and user show never import fastapi, uvicorn, starlette or httpx.

    python bench/bench_coldstart.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

HEAVY = ("fastapi", "uvicorn", "starlette", "httpx")
NO_HEAVY = ("help", "inspect", "show")


def _commands(db: Path, token: str, key_file: Path, alg: str, aud: str, iss: str) -> dict[str, list[str]]:
    py = sys.executable
    base = [py, str(benchlib.BENCH_DIR / "baseline_cli.py")]
    ac = benchlib.authctl_argv() + ["--db", str(db)]
    return {
        "baseline --help": base + ["--help"],
        "baseline decode": base + ["decode", token, "--key-file", str(key_file), "--alg", alg,
                                   "--audience", aud, "--issuer", iss],
        "import fastapi, typer, jwt": [py, "-c", "import fastapi, typer, jwt"],
        "help": ac + ["--help"],
        "inspect": ac + ["token", "inspect", token],
        "show": ac + ["user", "show", "rahul"],
        "check": ac + ["check", "DELETE", "/student/3", "--as", "rahul"],
    }


# (row label, authctl command, baseline command, target)
PAIRS = (
    ("authctl --help", "help", "baseline --help", 1.2),
    ("authctl token inspect TOKEN", "inspect", "baseline decode", 1.3),
    ("authctl user show rahul", "show", "baseline --help", 1.3),
    ("authctl check DELETE /student/3 --as rahul", "check", "import fastapi, typer, jwt", 1.3),
)
EXPECTED_EXIT = {"check": 4}


def _prepare(tmp: Path) -> tuple[Path, str, Path, str, str, str]:
    from cryptography.hazmat.primitives import serialization

    from authctl import keys, tokens
    from authctl.store import Store

    db = tmp / "cold.db"
    benchlib.init_demo(db)
    with Store.open(db) as store:
        settings = store.settings()
        token = tokens.issue(store, "rahul", ttl="1h").token
        active = keys.KeyRing.for_store(store).active
        if keys.is_symmetric(active.alg):
            material = bytes(active.verify_key)
        else:
            material = active.verify_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_file = tmp / "public.pem"
    key_file.write_bytes(material)
    return db, token, key_file, active.alg, settings.audience, settings.issuer


def heavy_imports(argv: list[str], environ: dict[str, str]) -> list[str]:
    """Top-level packages among HEAVY that one run of ``argv`` imports (from ``-X importtime``)."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environ, timeout=60, text=True)
    found = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in HEAVY:
                found.add(name)
    return sorted(found)


def run(quick: bool = False, rounds: int | None = None, seconds: float | None = None) -> list[dict[str, Any]]:
    """One row per authctl command: its median and min-max, its baseline's, the ratio and the target.

    ``rounds`` (default 8 quick, 30 full) is capped by ``seconds`` of wall time (default 20 / 120).
    """
    rounds = rounds or (8 if quick else 30)
    seconds = seconds or (20.0 if quick else 120.0)
    with tempfile.TemporaryDirectory(prefix="authctl-bench-cold-") as name:
        tmp = Path(name)
        db, token, key_file, alg, aud, iss = _prepare(tmp)
        environ = benchlib.env(db)
        commands = _commands(db, token, key_file, alg, aud, iss)
        samples, done_rounds = benchlib.interleaved(commands, environ, rounds=rounds, seconds=seconds, ok=(0, 3, 4))
        exits = {label: subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=environ,
                                       timeout=120).returncode for label, argv in commands.items()}
        heavy = {label: heavy_imports(commands[label], environ) for label in NO_HEAVY}
    rows = []
    for label, ours, theirs, target in PAIRS:
        a, b = benchlib.stats(samples[ours]), benchlib.stats(samples[theirs])
        ratio = a["median"] / b["median"]
        row = {
            "name": label, "baseline": theirs if theirs != "baseline --help" else "baseline_cli.py --help",
            "authctl_median_s": a["median"], "authctl_min_s": a["min"], "authctl_max_s": a["max"],
            "baseline_median_s": b["median"], "baseline_min_s": b["min"], "baseline_max_s": b["max"],
            "ratio": round(ratio, 3), "ratio_of_mins": round(a["min"] / b["min"], 3), "rounds": done_rounds,
            "target": f"<= {target}", "meets_target": ratio <= target, "exit_code": exits[ours],
        }
        if theirs == "baseline decode":
            row["baseline"] = f"baseline_cli.py decode ({alg}, same public key)"
        if ours in heavy:
            row["heavy_imports"] = heavy[ours]
            row["meets_target"] = row["meets_target"] and not heavy[ours]
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        lines.append(
            f"{row['name']:<44} {row['authctl_median_s'] * 1000:7.1f} ms ({row['authctl_min_s'] * 1000:.0f}-"
            f"{row['authctl_max_s'] * 1000:.0f})  vs {row['baseline']:<36} {row['baseline_median_s'] * 1000:7.1f} ms "
            f"({row['baseline_min_s'] * 1000:.0f}-{row['baseline_max_s'] * 1000:.0f})  {row['ratio']:.2f}x "
            f"{row['target']} {'met' if row['meets_target'] else 'NOT met'}"
            + (f"  heavy imports: {', '.join(row['heavy_imports']) or 'none'}" if "heavy_imports" in row else "")
        )
    lines.append(f"rounds: {rows[0]['rounds']}")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 rounds (at most 20 s) instead of 30 (120 s)")
    parser.add_argument("--rounds", type=int, default=None)
    options = parser.parse_args()
    print(_table(run(quick=options.quick, rounds=options.rounds)))
