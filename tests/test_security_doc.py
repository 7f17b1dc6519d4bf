"""SECURITY.md names the test that pins each promise: every name it gives must exist in the file it names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: `test_x.py::test_y`, or `::test_y` for another test of the file named last before it.
_REFERENCE = re.compile(r"`(test_\w+\.py)?::(test_\w+)`|`(test_\w+\.py)`")


def _referenced_tests() -> list[tuple[str, str | None]]:
    references: list[tuple[str, str | None]] = []
    current: str | None = None
    for match in _REFERENCE.finditer((ROOT / "SECURITY.md").read_text(encoding="utf-8")):
        file, test, bare_file = match.groups()
        if bare_file:
            references.append((bare_file, None))
            continue
        current = file or current
        assert current, f"::{test} names no file"
        references.append((current, test))
    return references


def _defined_tests(file: str) -> set[str]:
    tree = ast.parse((ROOT / "tests" / file).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_test_security_md_names_exists() -> None:
    references = _referenced_tests()
    assert len(references) > 50  # the page really was read
    missing = [f"{file}::{test}" if test else file for file, test in references
               if not (ROOT / "tests" / file).exists() or (test and test not in _defined_tests(file))]
    assert missing == []
