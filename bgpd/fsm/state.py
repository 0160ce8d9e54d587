"""The six session states of RFC 4271 §8.2.2."""

from enum import StrEnum


class State(StrEnum):
    """A BGP session state. The value is the RFC's name, as shown by ``show`` commands."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPENSENT = "OpenSent"
    OPENCONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


__all__ = ["State"]
