"""The one error type of the EQL layer.

Parsing, verification and compilation all raise :class:`EqlError`, so callers (the ``query``
command, the rule loader) catch a single class and can always show the user where the problem is.
"""

from __future__ import annotations


class EqlError(Exception):
    """An invalid EQL query, with the position of the offending text (1-based; 0 = unknown)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"line {self.line}:{self.column}: {self.message}"
