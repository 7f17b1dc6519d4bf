"""CSV that a spreadsheet cannot run: formula injection (OWASP "CSV Injection") defused.

A cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR is a formula to Excel,
LibreOffice and Google Sheets; a username such as ``=HYPERLINK(...)`` would run beside
the next user's password hash. Such cells are written with a leading ``'``, which the
spreadsheet shows as text. ``unescape`` undoes exactly that (and nothing else), so a
file authctl wrote reads back to the same values: a value that already starts with
``'`` before a trigger character (or before another ``'``) gets one more on the way
out, and loses one on the way in.
"""

from __future__ import annotations

import csv
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def _quoted(text: str) -> bool:
    """A leading ``'`` that ``escape`` added (or would have to add, to keep the value)."""
    return len(text) > 1 and text[0] == _QUOTE and (text[1] in TRIGGERS or text[1] == _QUOTE)


def escape(value: Any) -> Any:
    """The cell for ``value``: a string a spreadsheet would evaluate gets a leading ``'``."""
    if isinstance(value, str) and value and (value[0] in TRIGGERS or _quoted(value)):
        return _QUOTE + value
    return value


def unescape(text: str) -> str:
    """The value ``escape`` wrote ``text`` for."""
    return text[1:] if _quoted(text) else text


class DictWriter(csv.DictWriter):
    """``csv.DictWriter`` with every cell (and the header) passed through ``escape``."""

    def __init__(self, stream: Any, fieldnames: Any, **kwargs: Any) -> None:
        kwargs.setdefault("lineterminator", "\n")
        super().__init__(stream, fieldnames, **kwargs)

    def writeheader(self) -> Any:
        return self.writer.writerow([escape(name) for name in self.fieldnames])

    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({key: escape(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Any) -> None:
        for row in rowdicts:
            self.writerow(row)
