"""The one error a BIRD configuration can raise: where (as BIRD counts it) and why."""


class BirdError(Exception):
    """A configuration error, printed exactly as ``bird -p`` prints it: ``file:line:col msg``.

    ``line`` and ``col`` follow BIRD 1.6's lexer: the column is where the last token read
    starts (1-based); at the end of the main file BIRD reports line 1 (its lexer resets the
    line counter there), and the column of whatever it matched last.
    """

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{col} {message}")
        self.file = file
        self.line = line
        self.col = col
        self.message = message

    def __str__(self) -> str:
        if not self.line:  # not inside the text: the main file could not be opened
            return self.message
        return f"{self.file}:{self.line}:{self.col} {self.message}"


class FilterRuntimeError(Exception):
    """A filter hit a runtime error (BIRD: "filters, line N: ..."): the route is dropped."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message
