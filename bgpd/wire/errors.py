"""The one error type of the codec (RFC 4271 §6, RFC 7606 §2).

Every malformed input ends in a decoded message or a :class:`BGPError`, which carries the
NOTIFICATION code, subcode and data to send, and the RFC 7606 action that decides whether the
session is reset or only the UPDATE's routes are withdrawn or the attribute is discarded.
"""

from enum import IntEnum

from .constants import error_reason


class Action(IntEnum):
    """RFC 7606 error handling approaches, ordered so that the strongest wins."""

    DISCARD = 1  # attribute discard: drop the attribute, keep the routes
    WITHDRAW = 2  # treat-as-withdraw: all routes of the UPDATE are withdrawn
    AFI_SAFI_DISABLE = 3  # not used: we reset instead (RFC 7606 §5.3 allows either)
    RESET = 4  # session reset: send the NOTIFICATION and close

    @property
    def label(self) -> str:
        return {
            1: "attribute-discard",
            2: "treat-as-withdraw",
            3: "afi-safi-disable",
            4: "session-reset",
        }[self.value]


class BGPError(Exception):
    """A protocol error found in the peer's input.

    ``code``/``subcode``/``data`` are what goes into the NOTIFICATION when ``action`` is RESET.
    """

    __slots__ = ("code", "subcode", "data", "action", "detail")

    def __init__(
        self,
        code: int,
        subcode: int,
        data: bytes = b"",
        action: Action = Action.RESET,
        detail: str = "",
    ) -> None:
        self.code = code
        self.subcode = subcode
        self.data = bytes(data)
        self.action = action
        self.detail = detail
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        base = error_reason(self.code, self.subcode)
        return f"{base}: {self.detail}" if self.detail else base

    def __repr__(self) -> str:
        return (
            f"BGPError(code={self.code}, subcode={self.subcode}, data={self.data.hex()!r}, "
            f"action={self.action.name}, detail={self.detail!r})"
        )


class LocalProtocolError(Exception):
    """Our own misuse of the codec (a bug), never turned into a NOTIFICATION."""
