"""Splitting a byte stream into messages (RFC 4271 §4.1, §6.1)."""

from .constants import (
    ERR_HEADER,
    HDR_BAD_LENGTH,
    HDR_BAD_TYPE,
    HDR_NOT_SYNCHRONIZED,
    HEADER_LEN,
    KEEPALIVE,
    MARKER,
    MAX_MESSAGE,
    NOTIFICATION,
    OPEN,
    ROUTE_REFRESH,
    UPDATE,
)
from .errors import Action, BGPError

# Smallest valid total length per type (ROUTE-REFRESH length is checked by its decoder, which
# answers with the RFC 7313 error instead of a header error).
_MIN_LEN = {OPEN: 29, UPDATE: 23, NOTIFICATION: 21, KEEPALIVE: 19, ROUTE_REFRESH: 19}


class Framer:
    """Accumulates received bytes and returns complete ``(type, body)`` pairs.

    ``max_size`` is 4096 until both sides negotiated RFC 8654 extended messages; OPEN and
    KEEPALIVE never exceed 4096 whatever was negotiated.
    """

    __slots__ = ("buffer", "max_size", "error")

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self.buffer = bytearray()
        self.max_size = max_size
        # The header error that stopped framing; the messages before it are still returned.
        self.error: BGPError | None = None

    def __len__(self) -> int:
        return len(self.buffer)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data`` and return every complete message now available.

        On a header error, the messages before it are returned and ``error`` is set; the
        stream is unusable after that and further calls return nothing.
        """
        if self.error is not None:
            return []
        buf = self.buffer
        buf += data
        out = []
        i = 0
        n = len(buf)
        max_size = self.max_size
        while n - i >= HEADER_LEN:
            if buf[i : i + 16] != MARKER:
                self.error = BGPError(
                    ERR_HEADER, HDR_NOT_SYNCHRONIZED, b"", Action.RESET, "bad marker"
                )
                break
            length = (buf[i + 16] << 8) | buf[i + 17]
            msg_type = buf[i + 18]
            if msg_type not in _MIN_LEN:
                self.error = BGPError(
                    ERR_HEADER,
                    HDR_BAD_TYPE,
                    bytes((msg_type,)),
                    Action.RESET,
                    f"message type {msg_type}",
                )
                break
            limit = max_size if msg_type in (UPDATE, NOTIFICATION, ROUTE_REFRESH) else MAX_MESSAGE
            if (
                length < _MIN_LEN[msg_type]
                or length > limit
                or (msg_type == KEEPALIVE and length != 19)
            ):
                self.error = BGPError(
                    ERR_HEADER,
                    HDR_BAD_LENGTH,
                    length.to_bytes(2, "big"),
                    Action.RESET,
                    f"length {length} for message type {msg_type}",
                )
                break
            if n - i < length:
                break
            out.append((msg_type, bytes(buf[i + HEADER_LEN : i + length])))
            i += length
        if i:
            del buf[:i]
        return out
