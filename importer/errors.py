"""The one error type for bad input: it always renders as one line naming the file, the place and what was expected."""

from __future__ import annotations


class InputError(Exception):
    """Bad input. The command line prints str(error) on one line and exits with status 2."""

    def __init__(self, message: str, path: str | None = None, place: str | None = None):
        self.path = path
        self.place = place
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [str(p) for p in (self.path, self.place) if p]
        text = ": ".join([*parts, self.message])
        return " ".join(text.split())
