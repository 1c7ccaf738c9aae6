"""Errors a user can act on, distinct from bugs."""

from __future__ import annotations


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
        self.reason = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
