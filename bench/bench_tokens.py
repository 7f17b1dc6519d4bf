"""Issue and verify throughput per algorithm, next to raw PyJWT with the same key objects.

For each algorithm (ES256, EdDSA, RS256, HS256) one signing key is made active in
a fresh database, and in the same run, interleaved round by round:

* ``issue``: ``authctl.tokens.issue(store, "rahul")`` (user lookup, claims, signing)
  against ``jwt.encode(claims, private_key, algorithm, headers)``;
* ``verify``: ``authctl.tokens.verify(store, token)`` (every check, the revocation
  and user lookups in SQLite) against ``jwt.decode(token, public_key, algorithms,
  audience, issuer, leeway, options={"require": [...]})``, the same key objects
  already parsed, so only the work per token is compared. The verified-signature
  cache is off for this row, so every call checks the signature as PyJWT does;
* ``verify (token seen before)``: the same with the cache on, as a server sees a
  client re-sending its token (every other check still runs).

The ratio is authctl / PyJWT; the verify target is at least 0.8. The best round of
each side is reported (the least disturbed by the machine), and every measurement
is bounded in time.

    python bench/bench_tokens.py [--quick]

``run(quick=False) -> list[dict]`` is the entry point for a runner.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script from a checkout: import the package next to bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ALGS = ("ES256", "EdDSA", "RS256", "HS256")
VERIFY_TARGET = 0.8


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    """Operations per second of ``fn``, calling it in batches for about ``seconds``."""
    batch, done = 1, 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        done += batch
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)
        batch = min(batch * 2, 4096)


def _compare(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int, seconds: float) -> tuple[float, float]:
    """Best ops/s of each side over interleaved rounds (both see the same machine state)."""
    ours(), theirs()  # warm caches: the key ring, the statement cache, PyJWT's algorithm table
    best_ours = best_theirs = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, _rate(ours, seconds))
        best_theirs = max(best_theirs, _rate(theirs, seconds))
    return best_ours, best_theirs


def _row(name: str, alg: str, ours: float, theirs: float, target: float | None) -> dict[str, Any]:
    ratio = ours / theirs if theirs else 0.0
    row: dict[str, Any] = {
        "name": name, "alg": alg,
        "authctl_ops_per_s": round(ours, 1), "baseline_ops_per_s": round(theirs, 1), "ratio": round(ratio, 2),
    }
    if target is not None:
        row["target"] = target
        row["meets_target"] = ratio >= target
    return row


def run(quick: bool = False) -> list[dict[str, Any]]:
    """One issue row and one verify row per algorithm, each with its PyJWT baseline and ratio."""
    import jwt

    from authctl import keys, tokens
    from authctl.store import Store

    rounds, seconds = (2, 0.15) if quick else (5, 0.4)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="authctl-bench-tokens-") as tmp:
        with Store.create(Path(tmp) / "bench.db") as store:
            store.add_role("student")
            store.add_user("rahul", None, ["student"])
            # one unrelated revocation, so verify really does its lookup by primary key
            store.revoke_jti("bench-unrelated", int(time.time()) + 86400, "benchmark")
            settings = store.settings()
            for alg in ALGS:
                store.add_key(keys.generate(alg))
                key = keys.KeyRing.for_store(store).active
                issued = tokens.issue(store, "rahul")
                claims, header, token = issued.claims, issued.header, issued.token
                extra_headers = {"kid": header["kid"], "typ": header["typ"]}
                required = ["exp", "iat", "sub", "iss", "aud", "jti"]
                tokens.verify(store, token)
                assert jwt.decode(token, key.verify_key, algorithms=[alg], audience=settings.audience,
                                  issuer=settings.issuer, leeway=settings.leeway, options={"require": required}) == claims

                ours, theirs = _compare(
                    lambda: tokens.issue(store, "rahul"),
                    lambda: jwt.encode(claims, key.sign_key, algorithm=alg, headers=extra_headers),
                    rounds, seconds,
                )
                rows.append(_row(f"issue {alg}", alg, ours, theirs, None))
                decode = lambda: jwt.decode(token, key.verify_key, algorithms=[alg], audience=settings.audience,  # noqa: E731
                                            issuer=settings.issuer, leeway=settings.leeway, options={"require": required})
                cache_size = tokens.SIGNATURE_CACHE_SIZE
                tokens.SIGNATURE_CACHE_SIZE = 0  # every call checks the signature, as PyJWT does
                try:
                    ours, theirs = _compare(lambda: tokens.verify(store, token), decode, rounds, seconds)
                finally:
                    tokens.SIGNATURE_CACHE_SIZE = cache_size
                rows.append(_row(f"verify {alg}", alg, ours, theirs, VERIFY_TARGET))
                # a client re-sends its token on every request: the verified-signature cache
                ours, theirs = _compare(lambda: tokens.verify(store, token), decode, rounds, seconds)
                rows.append(_row(f"verify {alg} (token seen before)", alg, ours, theirs, None))
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'operation':<34} {'authctl ops/s':>14} {'PyJWT ops/s':>12} {'ratio':>7}  target"
    lines = [header, "-" * len(header)]
    for row in rows:
        target = ""
        if "target" in row:
            target = f">= {row['target']}: " + ("met" if row["meets_target"] else "NOT met")
        lines.append(
            f"{row['name']:<34} {row['authctl_ops_per_s']:>14,.0f} {row['baseline_ops_per_s']:>12,.0f} "
            f"{row['ratio']:>6.2f}x  {target}"
        )
    lines.append("")
    lines.append("ratio = authctl / raw PyJWT with the same parsed key; verify includes the SQLite user "
                 "and revocation lookups, PyJWT does no lookups at all")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds (about 3 s in all)")
    options = parser.parse_args()
    print(_table(run(quick=options.quick)))
