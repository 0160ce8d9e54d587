"""The update log's sans-I/O core: which file a record goes to, when to flush, when to rotate.

Records are appended to an in-memory batch. The batch is handed out (``take()``) as
``(path, bytes)`` chunks when it reaches ``flush_bytes``, when ``flush_interval`` seconds
passed since its first record, or when the rotation period ends. Files are named by
``time.strftime(pattern)`` of their period's start in UTC; periods are aligned on multiples of
``rotate`` seconds since the epoch (a 15-minute log starts at :00, :15, :30, :45, as the
public collectors' files do). Time is passed in (wall-clock seconds: MRT timestamps are
absolute).
"""

import time

from bgpd.wire.constants import HEADER_LEN


def period_start(now: float, rotate: float) -> float:
    if rotate <= 0:
        return 0.0
    return now - (now % rotate)


def file_name(pattern: str, start: float) -> str:
    return time.strftime(pattern, time.gmtime(start))


class UpdateLog:
    """Batches encoded records per output file. ``rotate`` 0 means one file forever."""

    def __init__(
        self,
        pattern: str,
        rotate: float = 900.0,
        *,
        flush_bytes: int = 256 * 1024,
        flush_interval: float = 1.0,
    ) -> None:
        self.pattern = pattern
        self.rotate = rotate
        self.flush_bytes = flush_bytes
        self.flush_interval = flush_interval
        self._start: float | None = None  # current period start
        self._end = float("inf")
        self.path: str | None = None  # current file
        self._batch: list[bytes] = []
        self._size = 0
        self._count = 0
        self._first: float | None = None  # when the batch got its first record
        self._out: list[tuple] = []  # ("write", path, data) | ("close", path)
        self.records = 0
        self.bytes = 0

    def _enter(self, now: float) -> None:
        if self.rotate <= 0:
            if self._start is not None:
                return
            start = now  # one file, named after the time it was opened
        else:
            start = period_start(now, self.rotate)
            if self._start == start:
                return
        self._flush()
        if self.path is not None:
            self._out.append(("close", self.path))
        self._start = start
        self._end = start + self.rotate if self.rotate > 0 else float("inf")
        self.path = file_name(self.pattern, start)

    def add(self, data: bytes, now: float, count: int = 1) -> None:
        """Append ``count`` encoded records (all stamped ``now`` or close to it)."""
        if now >= self._end or self._start is None:
            self._enter(now)
        self._batch.append(data)
        self._size += len(data)
        self._count += count
        self.records += count
        if self._first is None:
            self._first = now
        if self._size >= self.flush_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._out.append(("write", self.path, b"".join(self._batch), self._count))
            self.bytes += self._size
            self._batch = []
            self._size = 0
            self._count = 0
        self._first = None

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run (wall clock), None when nothing is pending."""
        d = None
        if self._first is not None:
            d = self._first + self.flush_interval
        if self.path is not None and self._end != float("inf"):
            d = self._end if d is None else min(d, self._end)
        return d

    def handle_timer(self, now: float) -> None:
        if self._first is not None and now >= self._first + self.flush_interval:
            self._flush()
        if now >= self._end:
            self._flush()
            if self.path is not None:
                self._out.append(("close", self.path))
            self.path = None
            self._start = None
            self._end = float("inf")

    def flush(self) -> None:
        self._flush()

    def close(self) -> None:
        self._flush()
        if self.path is not None:
            self._out.append(("close", self.path))
            self.path = None
            self._start = None
            self._end = float("inf")

    def take(self) -> list[tuple]:
        """The file operations due: ``("write", path, data, records)`` and ``("close", path)``."""
        out = self._out
        self._out = []
        return out

    @property
    def buffered(self) -> int:
        return self._size


class MessageSplitter:
    """Cuts a byte stream into whole BGP messages (keeps a partial one for the next call).

    For the sending side, where ``Protocol.data_to_send()`` returns whole messages joined, one
    splitter per direction and session is all the update log needs. It trusts the length
    fields: the receiving side should log what the session's framer accepted instead.
    """

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        out = []
        i = 0
        n = len(data)
        while n - i >= HEADER_LEN:
            length = (data[i + 16] << 8) | data[i + 17]
            if length < HEADER_LEN:
                return out  # not BGP: give up on this stream rather than loop
            if n - i < length:
                break
            out.append(data[i : i + length])
            i += length
        if i < n:
            self._rest = bytes(data[i:])
        return out


__all__ = ["MessageSplitter", "UpdateLog", "file_name", "period_start"]
