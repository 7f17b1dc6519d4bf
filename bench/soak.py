"""A longer run of the load test: the real server under load for minutes while CLI processes write.

    python bench/soak.py                 # 5 minutes
    python bench/soak.py --seconds 60

The scenario and its pass/fail rules are tests/loadscenario.py's (the test suite runs it
for 15 s). The soak adds what only time shows: request latency percentiles, and the
server's memory from the first to the last minute. Exit 0 when every promise held, 1 if
any broke (each printed on one line).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import loadscenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the load runs (default 300)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    rotations = max(3, int(args.seconds // loadscenario.ROTATE_EVERY_S))
    with tempfile.TemporaryDirectory(prefix="authctl-soak-") as tmp:
        outcome = loadscenario.run(Path(tmp), args.seconds, max_users=100_000, max_rotations=rotations)
        found = loadscenario.problems(outcome, Path(tmp) / "load.db")
    _report(outcome)
    for problem in found:
        print(f"PROBLEM: {problem}")
    print("all promises held" if not found else f"{len(found)} problem(s)")
    return 1 if found else 0


def _report(outcome: loadscenario.Outcome) -> None:
    requests = sum(outcome.statuses.values())
    print(f"ran {outcome.seconds:.0f} s: {requests} requests ({requests / outcome.seconds:.0f}/s) "
          f"on {loadscenario.LOAD_CONNECTIONS} connections, statuses {dict(sorted(outcome.statuses.items()))}")
    if outcome.latencies:
        cuts = statistics.quantiles(outcome.latencies, n=100)
        print(f"latency ms: p50 {cuts[49] * 1000:.1f}, p99 {cuts[98] * 1000:.1f}, max {max(outcome.latencies) * 1000:.1f}")
    print(f"writers: {outcome.cli_runs} CLI processes; {len(outcome.added)} users added, {len(outcome.removed)} "
          f"removed, {len(outcome.extra_roles)} key rotations; {outcome.rounds} revoke/role rounds")
    rss = [kib for kib in outcome.server_rss_kib if kib]
    if len(rss) >= 4:
        window = max(1, len(rss) // 5)
        first, last = statistics.median(rss[:window]), statistics.median(rss[-window:])
        print(f"server RSS MiB: first fifth {first / 1024:.1f}, last fifth {last / 1024:.1f} "
              f"(ratio {last / first:.2f})")


if __name__ == "__main__":
    sys.exit(main())
