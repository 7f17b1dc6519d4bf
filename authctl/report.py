"""``matrix --format html`` and ``--format markdown``: the matrix as a page and as a PR comment.

The HTML page is one file with no external asset (inline CSS, no script; its
Content-Security-Policy forbids loading anything). Every name in it (users, role
sets, routes, reasons) comes from outside and is escaped, so a user named
``<script>`` is text. Markdown escapes what GitHub would read as markup, and ``|``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .policy import Outcome

if TYPE_CHECKING:
    from .matrix import Cell, MatrixResult

_COLOURS = {
    Outcome.ALLOWED: "#d9f2d9", Outcome.REDIRECTED: "#f7d9a8", Outcome.UNAUTHENTICATED: "#fff0c2", Outcome.FORBIDDEN: "#f9d0d0",
    Outcome.NO_ROUTE: "#ead7f5", Outcome.CLIENT_ERROR: "#f3b0b0", Outcome.SERVER_ERROR: "#e08080",
    Outcome.NOT_SENT: "#e6e6e6", Outcome.ERROR: "#e08080", Outcome.UNDECIDED: "#d9e4f5",
}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
.meta, .legend, .summary { margin: .3em 0; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .4em; border: 1px solid #bbb; }
.summary.bad { color: #a00; font-weight: bold; }
table { border-collapse: collapse; margin-top: .8em; }
th, td { border: 1px solid #bbb; padding: .25em .5em; vertical-align: top; text-align: left; }
thead th { background: #f4f4f4; position: sticky; top: 0; }
th.route { white-space: nowrap; font-family: ui-monospace, monospace; font-weight: normal; }
tr.flagged th.route { background: #fff3b0; }
td.requires { color: #555; }
td.cell summary { cursor: pointer; white-space: nowrap; font-family: ui-monospace, monospace; }
td.failed { outline: 3px solid #c00; outline-offset: -3px; }
.trace { margin: .3em 0 0; padding-left: 1.2em; font-size: .9em; max-width: 32em; }
.count { color: #555; font-weight: normal; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell_summary(cell: "Cell") -> str:
    """The same short text as the terminal table (``Cell.summary``)."""
    return "".join(piece for piece, _ in cell.summary())


def _trace(cell: "Cell", members: list[str] | None) -> list[str]:
    """What a reader needs to trust the cell: the requirement, the engine's reason, what was observed."""
    route = cell.route
    lines = [f"{route.method} {route.path} (route {route.template}) requires {route.requires}"]
    if route.unprotected:
        lines.append("⚠ unprotected? the route has no authctl requirement and is not marked public")
    if members is not None and members != [cell.user]:
        shown = ", ".join(members[:20]) + (f" and {len(members) - 20} more" if len(members) > 20 else "")
        lines.append(f"for {len(members)} user(s): {shown}")
    if cell.decision is not None:
        outcome = cell.decision_outcome
        status = f"{cell.undecided} decides in code" if cell.undecided else f"status {cell.decision}"
        lines.append(f"offline: {outcome.label} ({status})" + (f": {cell.reason}" if cell.reason else ""))  # type: ignore[union-attr]
    if cell.live is not None:
        verdict = "" if cell.agrees is None else ("agrees" if cell.agrees else "DISAGREES with the offline decision")
        lines.append(f"live: {cell.live.outcome.label} (status {cell.live_status})" + (f", {verdict}" if verdict else ""))
        lines += [f"⚠ {problem}" for problem in cell.live.lints]
    if cell.not_sent is not None:
        lines.append(f"not sent: {cell.not_sent}")
    if cell.expected is not None:
        met = "met" if cell.meets_expectation else "NOT met"
        lines.append(f"expected {cell.expected.value}: {met}")
    return lines


def to_html(result: "MatrixResult", title: str = "authctl matrix") -> str:
    """The whole page. Failed cells (a live disagreement, an unmet expectation) are outlined and open."""
    columns = result.users
    members = {group.name: group.members for group in result.groups or []}
    rows: dict[str, dict[str, "Cell"]] = {}
    for each in result.cells:
        rows.setdefault(f"{each.route.method} {each.route.path}", {})[each.user] = each
    failed = sum(each.failed for each in result.cells)
    flagged = sorted({cell.route.key for cell in result.cells if cell.route.unprotected})
    kind = f"live on {result.target}" if result.target else "offline decisions"
    out = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(rows)} routes × {len(columns)} columns '
        f'({"role sets" if result.groups is not None else "users"}), {_e(kind)}. Open a cell for its trace.</p>',
        '<p class="legend">' + "".join(
            f'<span style="background:{_COLOURS[o]}">{_e(o.label)}</span>' for o in _COLOURS) + "</p>",
    ]
    problems = []
    if failed:
        problems.append(f"{failed} failed cell(s): live disagreements or unmet expectations (outlined, open)")
    if flagged:
        problems.append(f"{len(flagged)} unprotected? route(s): " + ", ".join(flagged))
    if result.without_expectation:
        problems.append(f"{len(result.without_expectation)} route(s) with no expectation (--strict): "
                        + ", ".join(result.without_expectation))
    for problem in problems:
        out.append(f'<p class="summary bad">{_e(problem)}</p>')
    if not problems:
        out.append('<p class="summary">No failed cell, no unprotected route.</p>')
    for note in result.notes:
        out.append(f'<p class="meta">{_e(note)}</p>')
    out.append("<table>")
    header = ['<th scope="col">route</th>', '<th scope="col">requires</th>']
    for column in columns:
        count = len(members.get(column, [column]))
        suffix = f' <span class="count">({count})</span>' if count > 1 else ""
        header.append(f'<th scope="col">{_e(column)}{suffix}</th>')
    out.append("<thead><tr>" + "".join(header) + "</tr></thead>")
    out.append("<tbody>")
    for name, by_column in rows.items():
        route = next(iter(by_column.values())).route
        mark = " ⚠" if route.unprotected else ""
        line = ['<tr class="flagged">' if route.unprotected else "<tr>",
                f'<th scope="row" class="route">{_e(name)}{mark}</th>', f'<td class="requires">{_e(route.requires)}</td>']
        for column in columns:
            cell = by_column.get(column)
            if cell is None:
                line.append("<td></td>")
                continue
            classes = f"cell o-{cell.outcome.value}" + (" failed" if cell.failed else "")
            trace = "".join(f"<li>{_e(item)}</li>" for item in _trace(cell, members.get(column)))
            line.append(
                f'<td class="{classes}" style="background:{_COLOURS[cell.outcome]}" data-outcome="{cell.outcome.value}">'
                f'<details{" open" if cell.failed else ""}><summary>{_e(_cell_summary(cell))}</summary>'
                f'<ul class="trace">{trace}</ul></details></td>'
            )
        out.append("".join(line) + "</tr>")
    out += ["</tbody>", "</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


_MARKDOWN_SPECIAL = "\\`*_{}[]()#+-.!|~>"


def md(value: Any) -> str:
    """Text for a GitHub table cell: markup characters and ``|`` backslash-escaped, HTML as entities."""
    shown = " ".join(str(value).split())
    shown = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in shown)


def to_markdown(result: "MatrixResult") -> str:
    """A GitHub-flavoured table for a pull-request comment; failures in bold, flagged routes marked."""
    members = {group.name: group.members for group in result.groups or []}
    columns = result.users
    headers = [md(c) + (f" ({len(members[c])})" if len(members.get(c, [])) > 1 else "") for c in columns]
    rows: dict[str, dict[str, "Cell"]] = {}
    for each in result.cells:
        rows.setdefault(f"{each.route.method} {each.route.path}", {})[each.user] = each
    lines = ["| route | requires | " + " | ".join(headers) + " |", "|---|---|" + "---|" * len(columns)]
    for name, by_column in rows.items():
        route = next(iter(by_column.values())).route
        shown = []
        for column in columns:
            cell = by_column.get(column)
            text = "" if cell is None else md(_cell_summary(cell))
            shown.append(f"**{text}**" if cell is not None and cell.failed else text)
        flag = " ⚠ unprotected?" if route.unprotected else ""
        code = name.replace("`", "'").replace("|", "\\|")  # a | splits a table row even inside a code span
        lines.append(f"| `{code}`{flag} | {md(route.requires)} | " + " | ".join(shown) + " |")
    failed = sum(cell.failed for cell in result.cells)
    summary = [f"**{failed} failed cell(s)**" if failed else "no failed cell"]
    flagged = sorted({cell.route.key for cell in result.cells if cell.route.unprotected})
    if flagged:
        summary.append(f"{len(flagged)} unprotected? route(s)")
    if result.without_expectation:
        summary.append(f"{len(result.without_expectation)} route(s) without an expectation")
    head = f"**authctl matrix**: {len(rows)} routes × {len(columns)} columns; " + ", ".join(summary)
    return head + "\n\n" + "\n".join(lines) + "\n"
