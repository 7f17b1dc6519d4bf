"""Nothing cut off: the key commands at 80 columns and piped, every value whole.

At 80 columns a long value may fold over lines of its cell (never "…"); the cell is
put back together and the whole value must be in it. Piped (no COLUMNS, not a
terminal), tables take the width their data needs: each value on one line.
"""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len

from tests.apphelpers import make_demo_db
from tests.conftest import Cli

ELLIPSIS = "…"


@pytest.fixture
def busy(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The demo with two keys (one rotated out) and a log with list details."""
    make_demo_db(cli)
    assert cli("key", "rotate").exit_code == 0
    assert cli("role", "add", "instructor-assistant").exit_code == 0
    monkeypatch.delenv("COLUMNS", raising=False)
    return cli


def records(output: str, key: int = 0) -> list[list[str]]:
    """A Rich table's rows, each cell's folded lines put back together (a row starts where column ``key``
    has content: a column that never wraps)."""
    rows: list[list[list[str]]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if cells[key] or not rows:
            rows.append([[cell] for cell in cells])
        else:
            for pieces, cell in zip(rows[-1], cells):
                pieces.append(cell)
    return [["".join(pieces) for pieces in row] for row in rows]


def whole_in_a_cell(value: str, output: str, key: int = 0) -> bool:
    squeezed = value.replace(" ", "")
    return any(squeezed in cell.replace(" ", "") for row in records(output, key) for cell in row)


def at_80(cli: Cli, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(*args)
    monkeypatch.delenv("COLUMNS")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), result.stdout
    assert all(line.endswith(("│", "┃")) for line in lines if line.startswith(("│", "┃"))), result.stdout  # not cropped
    return result.stdout


def test_key_list_at_80_columns_and_piped_shows_every_kid_and_fingerprint_whole(busy: Cli, monkeypatch) -> None:
    keys = json.loads(busy("key", "list", "--json").stdout)
    assert len(keys) == 2
    narrow, piped = at_80(busy, monkeypatch, "key", "list"), busy("key", "list").stdout
    for output in (narrow, piped):
        assert ELLIPSIS not in output
        for key in keys:
            assert key["kid"] in output  # a kid never wraps
            assert whole_in_a_cell(key["fingerprint"], output)
    for key in keys:
        assert any(key["fingerprint"] in line and key["kid"] in line for line in piped.splitlines())


def test_routes_at_80_columns_and_piped_shows_every_path_whole(busy: Cli, monkeypatch) -> None:
    routes = json.loads(busy("routes", "--json").stdout)
    narrow, piped = at_80(busy, monkeypatch, "routes"), busy("routes").stdout
    assert "kind" not in narrow.splitlines()[1] and "kind" in piped.splitlines()[1]  # the redundant column goes first
    for output in (narrow, piped):
        assert ELLIPSIS not in output
        for route in routes:
            assert whole_in_a_cell(route["path"], output), route["path"]
            assert whole_in_a_cell(route["name"], output), route["name"]
    for route in routes:
        assert any(route["path"] in line for line in piped.splitlines())


def test_log_at_80_columns_and_piped_shows_timestamps_whole_and_no_python_reprs(busy: Cli, monkeypatch) -> None:
    entries = json.loads(busy("log", "--json").stdout)
    narrow, piped = at_80(busy, monkeypatch, "log"), busy("log").stdout
    for output in (narrow, piped):
        assert ELLIPSIS not in output
        assert "['" not in output and "=[" not in output
        for entry in entries:
            assert entry["at"] in output  # a timestamp never wraps
            assert whole_in_a_cell(entry["target"] or "", output)
    assert any("users=suman, rahul, priya" in line for line in piped.splitlines())
    fingerprints = [e["details"]["fingerprint"] for e in entries if "fingerprint" in (e["details"] or {})]
    assert fingerprints and all(whole_in_a_cell(f, narrow) for f in fingerprints)


def test_matrix_at_80_columns_and_piped_names_every_route_whole(busy: Cli, monkeypatch) -> None:
    cells = json.loads(busy("matrix", "--json").stdout)["cells"]
    names = {f"{c['method']} {c['path']}" for c in cells}
    for output in (at_80(busy, monkeypatch, "matrix"), at_80(busy, monkeypatch, "matrix", "--by", "user"),
                   busy("matrix", "--by", "user").stdout):
        assert ELLIPSIS not in output
        for name in names:
            assert whole_in_a_cell(name, output, key=-1), name  # the anonymous column never wraps


def test_piped_demo_keeps_rules_bounded_and_commands_on_one_line(cli: Cli, monkeypatch) -> None:
    from authctl import render

    monkeypatch.delenv("COLUMNS", raising=False)
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    rules = [line for line in lines if "────" in line and not line.startswith(("│", "┃", "┏", "┡", "└"))]
    assert rules and all(cell_len(line) <= render.FRAME_WIDTH for line in rules)
    for command in render.NEXT_STEPS:
        assert f"  {command}" in lines


def test_demo_at_80_columns_wraps_narration_at_words_and_never_splits_a_command(cli: Cli, monkeypatch) -> None:
    from authctl import render

    monkeypatch.setenv("COLUMNS", "80")
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines)
    for command in render.NEXT_STEPS:
        assert cell_len(command) + 2 <= 80 and f"  {command}" in lines
    narration = " ".join(line for line in lines[1:6] if not line.startswith("1."))
    assert "priya an instructor. Only admins may DELETE /student/{id}." in narration
    assert any("DELETE /student/{id}" in line for line in lines)  # kept on one line


@pytest.mark.parametrize("columns", ["50", "60", "72", "80"])
def test_check_hint_never_splits_the_command_it_suggests(cli: Cli, monkeypatch, columns: str) -> None:
    make_demo_db(cli)
    monkeypatch.setenv("COLUMNS", columns)
    result = cli("check", "DELETE", "/student/3", "--anonymous")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= int(columns) for line in lines)
    assert any("`authctl token issue --as USER`" in line for line in lines)
    assert any("`Authorization: Bearer <token>`" in line for line in lines)


def test_wrap_words_breaks_only_at_spaces_and_keeps_phrases_whole() -> None:
    from authctl.render import wrap_words

    message = "token: curl -s -X POST http://127.0.0.1:8000/token -d username=NAME (or: authctl token issue --as NAME)"
    wrapped = wrap_words(message, 40, keep=("authctl token issue --as NAME",))
    lines = wrapped.splitlines()
    assert " ".join(lines) == message  # nothing lost, nothing cut mid-word
    assert all(len(line) <= 40 for line in lines if " " in line)
    assert any("authctl token issue --as NAME" in line for line in lines)


def test_serve_banner_on_a_narrow_terminal_keeps_the_token_command_whole(monkeypatch) -> None:
    import io
    import sys

    from authctl import render

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "60")
    curl = "curl -s -X POST http://127.0.0.1:8000/token -d username=NAME -d password=..."
    render.banner(f"token: {curl} (or: authctl token issue --as NAME)", keep=(curl, "authctl token issue --as NAME"))
    import re

    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue()).splitlines()
    assert any("authctl token issue --as NAME" in line for line in shown)
    assert any(curl in line for line in shown)  # longer than the terminal: on a line of its own, whole
    assert shown[0] == "token:"
