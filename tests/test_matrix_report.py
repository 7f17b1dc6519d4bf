"""`matrix --format html` checked in a real browser (headless Chromium), and `--format markdown`.

A user or route named like markup must stay text: the page is rendered by Chromium and
the DOM it built is inspected, so "escaped" means what a browser does with it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.apphelpers import DEMO_PASSWORDS, make_demo_db
from tests.conftest import STRONG, Cli, skip_unless_ci

SCRIPT_USER = "<script>document.title='pwned'</script>"
IMG_USER = "<img/src=x/onerror=alert(1)>"
PIPE_USER = "a|b*c_"

HOSTILE_APP = '''
from fastapi import Depends, FastAPI
from authctl.fastapi import Auth

auth = Auth(db="{db}")
app = FastAPI()

@app.get("/x/<b>bold</b>")
async def forgot():  # no requirement: flagged
    return {{}}

@app.get("/students", dependencies=[Depends(auth.require("students:read"))])
async def students():
    return []
'''


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser(*args: str) -> subprocess.CompletedProcess:
    binary = chromium()
    if binary is None:
        skip_unless_ci("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    return subprocess.run([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def hostile(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, str]:
    """The demo, users named like markup, and an app with a route named like markup and no requirement."""
    make_demo_db(cli)
    for name in (SCRIPT_USER, IMG_USER, PIPE_USER):
        result = cli("user", "add", name, "--role", "student", "--password-stdin", input=STRONG + "\n")
        assert result.exit_code == 0, result.stderr
    module = f"hostileapp_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{module}.py").write_text(HOSTILE_APP.format(db=cli.db))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield cli, f"{module}:app"
    sys.modules.pop(module, None)


class Dom(HTMLParser):
    """The elements Chromium built (tag, attributes, the text inside each)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[list] = []
        self.texts: dict[int, str] = {}

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in ("meta", "br", "img", "input", "link"):
            self.stack.append([len(self.elements) - 1, ""])

    def handle_endtag(self, tag):
        if self.stack:
            index, content = self.stack.pop()
            self.texts[index] = content
            if self.stack:
                self.stack[-1][1] += content

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][1] += data

    def text_of(self, tag: str, **attrs: str) -> list[str]:
        return [self.texts.get(i, "") for i, (t, a) in enumerate(self.elements)
                if t == tag and all(a.get(k) is not None and v in (a.get(k) or "").split() for k, v in attrs.items())]


def test_html_report_in_a_real_browser_names_are_inert_and_cells_carry_traces(hostile, tmp_path: Path) -> None:
    cli, app = hostile
    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /students"]\nanonymous = 403\n')  # really 401: an unmet expectation
    result = cli("matrix", "--app", app, "--by", "user", "--expect", str(expect), "--format", "html")
    assert result.exit_code == 6, result.stderr
    page = tmp_path / "matrix.html"
    page.write_text(result.stdout, encoding="utf-8")
    dumped = browser("--dump-dom", page.as_uri())
    assert dumped.returncode == 0 and "<table>" in dumped.stdout, dumped.stderr[-500:]
    dom = Dom()
    dom.feed(dumped.stdout)
    tags = [tag for tag, _ in dom.elements]
    assert "script" not in tags and "img" not in tags and "b" not in tags  # names stayed text
    assert dom.text_of("title") == ["authctl matrix"]  # no script ran
    headers = dom.text_of("th")
    assert SCRIPT_USER in headers and IMG_USER in headers and PIPE_USER in headers
    assert "GET /x/<b>bold</b> ⚠" in headers
    flagged = [a for t, a in dom.elements if t == "tr" and a.get("class") == "flagged"]
    assert len(flagged) == 1
    failed = dom.text_of("td", **{"class": "failed"})
    assert len(failed) == 1 and "expected forbidden: NOT met" in failed[0] and "offline: 401 Unauthorized (status 401): no credentials" in failed[0]
    opened = [a for t, a in dom.elements if t == "details" and "open" in a]
    assert len(opened) == 1  # the failed cell is open; every other trace waits to be opened
    cells = [a for t, a in dom.elements if t == "td" and "cell" in (a.get("class") or "").split()]
    outcomes = {a["data-outcome"] for a in cells}
    assert {"allowed", "forbidden", "unauthenticated"} <= outcomes
    assert all("background:" in (a.get("style") or "") for a in cells)
    traces = dom.text_of("ul", **{"class": "trace"})
    assert len(traces) == len(cells) and all("requires" in trace for trace in traces)
    assert any("lacks students:read" in trace for trace in traces)

    shot = tmp_path / "matrix.png"
    taken = browser(f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-500:]
    print(f"screenshot of the HTML matrix: {shot}")


def test_html_report_is_one_self_contained_file(hostile) -> None:
    cli, app = hostile
    page = cli("matrix", "--app", app, "--format", "html").stdout
    lowered = page.lower()
    assert lowered.startswith("<!doctype html>")
    assert not re.search(r"\s(src|href|action)\s*=", lowered)  # no attribute that loads anything
    for external in ("@import", "url(", "http://", "https://", "<script", "<link", "<img", "<iframe"):
        assert external not in lowered, external
    assert "default-src 'none'" in page  # and the page may not load anything even if it tried
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page


def test_html_report_groups_role_sets_with_their_members(hostile) -> None:
    cli, app = hostile
    page = cli("matrix", "--app", app, "--format", "html").stdout
    assert '<th scope="col">student <span class="count">(4)</span></th>' in page  # rahul and the three above
    assert "for 4 user(s): " in page and "rahul" in page


def test_markdown_escapes_pipes_and_markup_in_names(hostile) -> None:
    cli, app = hostile
    result = cli("matrix", "--app", app, "--by", "user", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    header = table[0]
    assert "a\\|b\\*c\\_" in header and "&lt;script&gt;" in header and "<script" not in result.stdout
    columns = len(table[1].split("|"))
    # a | in a name never adds a column: every row splits into as many cells as the separator
    assert all(len(line.replace("\\|", "").split("|")) == columns for line in table)
    assert any("`GET /x/<b>bold</b>` ⚠ unprotected?" in line for line in table)


def test_markdown_marks_failures_in_bold(cli: Cli, tmp_path: Path) -> None:
    make_demo_db(cli)
    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /students"]\nrahul = "allow"\n')  # rahul is a student: 403
    result = cli("matrix", "--expect", str(expect), "--format", "markdown")
    assert result.exit_code == 6
    assert "**1 failed cell(s)**" in result.stdout
    assert "**403 \\(expected allowed\\)**" in result.stdout
    assert DEMO_PASSWORDS  # the demo users exist
