"""The one error type of policy compilation: the key path and the reason."""


class PolicyError(ValueError):
    """An invalid policy spec.

    ``key_path`` names the offending key from the top of the config, such as
    ``policies.calico-export.terms[0].match.prefix[1]``; ``reason`` says what is wrong with it.
    The config loader adds the file name.
    """

    def __init__(self, key_path: str, reason: str) -> None:
        self.key_path = key_path
        self.reason = reason
        super().__init__(key_path, reason)

    def __str__(self) -> str:
        return f"{self.key_path}: {self.reason}"
