"""The demo app with a chosen number of hashing threads, for bench_app's ``--hash-concurrency``.

    AUTHCTL_BENCH_HASH_CONCURRENCY=2 uvicorn --factory app_factory:create   (bench/ on PYTHONPATH)
"""

from __future__ import annotations

import os
from typing import Any


def create() -> Any:
    from authctl.app import create_app

    return create_app(hash_concurrency=int(os.environ["AUTHCTL_BENCH_HASH_CONCURRENCY"]))
