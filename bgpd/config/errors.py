"""The one error type of config loading: the file, the key path and the reason."""


class ConfigError(Exception):
    """A problem in a config file.

    ``key`` is a dotted path such as ``neighbors[2].hold_time``; it is ``""`` for problems of
    the file as a whole (unreadable, empty) and ``"line L, column C"`` for YAML syntax errors.
    """

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}: {self.key}: {self.reason}"
        return f"{self.file}: {self.reason}"


class Invalid(Exception):
    """Raised by a key's checker; the parser adds the file and the key path.

    ``key`` is relative to the key being checked (``"[0]"``, ``"ipv4.send"``) or None when the
    problem is the value as a whole.
    """

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        super().__init__(reason)
