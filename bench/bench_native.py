"""Native security at scale: ``routes`` and an offline ``matrix`` on a generated app with 1,000 routes.

The app (written to a temporary module) has 10 routers of 10 sub-routers of 10
routes each, all under ``/api/v1``: OAuth2 password bearer with scopes on most,
HTTP Bearer with a router-level guard on some, an API key on others, a few open.
Each round imports a fresh copy of the module and lets FastAPI build its route
table: the app's own import-and-build. (FastAPI 0.16x analyses the routes of
included routers lazily, on the first request or the first walk of the routes;
that work is the app's, so it is timed with the build, by
``fastapi.routing.iter_route_contexts``. The import alone is reported too.)
Then:

* routes: ``authctl.routes.inventory(app)`` -- every route's schemes, scopes,
  guards and flags (what ``authctl routes --app`` computes);
* matrix: ``authctl.matrix.offline_cells(store, app, users, {}, target=...)`` for
  2 users and anonymous through a token-template target (3,000 cells).

Reported: each as a ratio ``(build + step) / build`` (goal: at most 1.5x), and the
times, median and min-max over rounds.

    python bench/bench_native.py [--quick]
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

GOAL = 1.5
SECRET = "bench-native-hs256-secret-0123456789abcdef"

_HEADER = '''
from typing import Annotated
import jwt
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPBearer, OAuth2PasswordBearer, SecurityScopes

SECRET = {secret!r}
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/token", scopes={{"r": "read", "w": "write"}})
bearer = HTTPBearer()
api_key = APIKeyHeader(name="X-API-Key")


def current_user(security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]):
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid token", headers={{"WWW-Authenticate": "Bearer"}})
    if any(s not in str(claims.get("scope", "")).split() for s in security_scopes.scopes):
        raise HTTPException(403, "insufficient scope")
    return claims


def require_staff(credentials=Depends(bearer)):
    return credentials


def key_user(key: Annotated[str, Security(api_key)]):
    return key


app = FastAPI(title="bench native")
root = APIRouter(prefix="/api/v1")


@root.post("/token")
def token():
    return {{}}
'''


def generate(path: Path) -> int:
    """Write the 1,000-route app; returns its route count."""
    lines = [_HEADER.format(secret=SECRET)]
    count = 0
    for a in range(10):
        lines.append(f"outer{a} = APIRouter(prefix='/area{a}')")
        for b in range(10):
            guard = "dependencies=[Depends(require_staff)]" if b == 9 else ""
            lines.append(f"inner{a}_{b} = APIRouter(prefix='/part{b}', {guard})")
            for c in range(10):
                count += 1
                kind = c % 5
                if b == 9:
                    dep = ""
                elif kind == 4:
                    dep = "key: Annotated[str, Security(key_user)]" if c == 4 else ""
                else:
                    scope = ["r"] if kind in (1, 2) else ["w"] if kind == 3 else []
                    dep = f"user: Annotated[dict, Security(current_user, scopes={scope!r})]"
                method = "post" if kind == 3 else "get"
                lines.append(f"@inner{a}_{b}.{method}('/item{c}/{{item_id}}')")
                lines.append(f"def r{a}_{b}_{c}(item_id: int, {dep}):")
                lines.append("    return {}")
            lines.append(f"outer{a}.include_router(inner{a}_{b})")
        lines.append(f"root.include_router(outer{a})")
    lines.append("app.include_router(root)")
    path.write_text("\n".join(lines) + "\n")
    return count


def _build(path: Path, serial: int) -> tuple[Any, float, float]:
    """(app, import seconds, import-and-build seconds)."""
    name = f"bench_native_app_{serial}"
    start = time.perf_counter()
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = time.perf_counter() - start
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI builds every route at include_router
        pass
    else:
        for _ in iter_route_contexts(module.app.router.routes):
            pass
    return module.app, imported, time.perf_counter() - start


def run(quick: bool = False) -> list[dict[str, Any]]:
    from authctl import matrix, routes, targets
    from authctl.store import Store

    rounds = 2 if quick else 5
    builds: list[float] = []
    imports: list[float] = []
    inventories: list[float] = []
    matrices: list[float] = []
    with tempfile.TemporaryDirectory(prefix="authctl-bench-native-") as name:
        directory = Path(name)
        route_count = generate(directory / "nativeapp.py")
        with Store.create(directory / "native.db") as store:
            for user in ("rahul", "suman"):
                store.add_user(user, None)
            target = targets.add(store, "bench", mode="token", key=SECRET.encode(), scope_claim="scope",
                                 scopes={"rahul": "r", "suman": "r w"})
            users = ["rahul", "suman", matrix.ANONYMOUS]
            _build(directory / "nativeapp.py", 10_000)  # warm: FastAPI's own caches, authctl's imports
            cells = 0
            for serial in range(rounds):
                app, imported, built = _build(directory / "nativeapp.py", serial * 2)
                builds.append(built)
                imports.append(imported)
                start = time.perf_counter()
                infos = routes.inventory(app)
                inventories.append(time.perf_counter() - start)
                assert len([i for i in infos if i.path.startswith("/api/v1/area")]) == route_count
                app, imported, built = _build(directory / "nativeapp.py", serial * 2 + 1)
                builds.append(built)
                imports.append(imported)
                start = time.perf_counter()
                cells = len(matrix.offline_cells(store, app, users, {}, target=target))
                matrices.append(time.perf_counter() - start)
    build, inventory, grid = benchlib.stats(builds), benchlib.stats(inventories), benchlib.stats(matrices)
    import_only = benchlib.stats(imports)
    rows = []
    for label, step, extra in (("routes", inventory, {}), ("matrix offline", grid, {"cells": cells})):
        ratio = (build["median"] + step["median"]) / build["median"]
        rows.append({
            "name": f"{label} on a {route_count}-route native app", "routes": route_count, "rounds": rounds,
            "build_median_s": build["median"], "build_min_s": build["min"], "build_max_s": build["max"],
            "step_median_s": step["median"], "step_min_s": step["min"], "step_max_s": step["max"],
            "import_median_s": import_only["median"],
            "ratio_to_import": (import_only["median"] + step["median"]) / import_only["median"],
            "ratio": ratio, "target": f"(build + {label}) / build <= {GOAL}x", "meets_target": ratio <= GOAL, **extra,
        })
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{row['name']}: {row['ratio']:.2f}x the app's import-and-build "
        f"(build {row['build_median_s'] * 1000:.0f} ms, step {row['step_median_s'] * 1000:.0f} ms "
        f"[{row['step_min_s'] * 1000:.0f}-{row['step_max_s'] * 1000:.0f}]"
        + (f", {row['cells']} cells" if "cells" in row else "")
        + f"; {row['ratio_to_import']:.2f}x the import alone, {row['import_median_s'] * 1000:.0f} ms; goal <= {GOAL}x: "
        + ("met" if row["meets_target"] else "NOT met") + ")"
        for row in rows
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    options = parser.parse_args()
    print(_table(run(quick=options.quick)))
