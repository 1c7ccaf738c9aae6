"""Errors a user can act on, distinct from bugs."""

from __future__ import annotations

import re

# Control characters (a newline inside a user id, say) would split "one line" in two or
# rewrite a terminal; they are shown escaped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with every control character escaped, so it prints as one line."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class InputError(Exception):
    """Bad input or usage: one clear message, exit code 2, nothing written.

    The message names the file, the column and the first offending row where they apply.
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None) -> None:
        self.file = file
        self.column = column
        self.row = row
        where = []
        if file:
            where.append(file)
        if column:
            # Without a file the name is a request field (CLI option / HTTP field).
            where.append(f"column '{column}'" if file else f"field '{column}'")
        if row is not None:
            where.append(f"row {row}")
        message = one_line(message)
        where = [one_line(part) for part in where]
        self.reason = message
        self.errors = [(column, message)] if column and not file else []
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    @classmethod
    def for_fields(cls, problems: list[tuple[str, str]]) -> InputError:
        """One error naming every invalid request field: ``(field, reason)`` each, in order."""
        first, reason = problems[0]
        error = cls(reason, column=first)
        error.errors = [(field, one_line(text)) for field, text in problems]
        if len(problems) > 1:
            error.args = ("; ".join(f"field '{f}': {t}" for f, t in error.errors),)
        return error
