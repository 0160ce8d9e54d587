"""The update log's binding: records are encoded on the event loop, files written by a thread.

:class:`UpdateLogWriter` is what the daemon holds when ``mrt.updates`` is configured. Its
methods never block: they encode a record (a few microseconds), append it to the current
batch, and at most hand a finished batch to the writer thread through a queue. The thread
opens, appends to, and closes the files. When the disk does not keep up, at most
``max_pending`` octets wait in the queue; batches beyond that are dropped and counted
(``dropped_records``, ``dropped_bytes``), never waited for.

One ``loop.call_at`` handle is kept, re-armed from :meth:`UpdateLog.next_deadline` (flush
interval and rotation boundary).
"""

import asyncio
import functools
import os
import queue
import threading
import time

import structlog

from bgpd.wire.constants import HEADER_LEN, MARKER

from .codec import MrtPeer
from .log import UpdateLog

log = structlog.get_logger("bgpd.mrt")


def _guarded(fn):
    """A callback of the daemon's: a bug here is counted and logged, never raised into BGP."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        try:
            return fn(self, *args, **kw)
        except Exception:
            self.internal_errors += 1
            if self.internal_errors <= 10 or self.internal_errors % 1000 == 0:
                log.exception("mrt: internal error", call=fn.__name__)
            return None

    return wrapper


class UpdateLogWriter:
    """Logs every BGP message of every session as BGP4MP_ET records (see :mod:`.codec`)."""

    def __init__(
        self,
        pattern: str,
        rotate: float = 900.0,
        *,
        flush_bytes: int = 256 * 1024,
        flush_interval: float = 1.0,
        max_pending: int = 64 * 1024 * 1024,
        loop: asyncio.AbstractEventLoop | None = None,
        clock=time.time,
    ) -> None:
        self.core = UpdateLog(
            pattern, rotate, flush_bytes=flush_bytes, flush_interval=flush_interval
        )
        self.loop = loop
        self.clock = clock
        self.max_pending = max_pending
        self.queued = 0  # octets handed to the thread (loop thread writes)
        self.written = 0  # octets the thread finished with (thread writes)
        self.dropped_records = 0
        self.dropped_bytes = 0
        self.internal_errors = 0  # bugs caught in the calls (never raised into BGP)
        self.errors = 0  # write errors (thread side), with what they lost:
        self.failed_records = 0
        self.failed_bytes = 0
        self.last_error: str | None = None
        self.files: list[str] = []  # every file opened, in order (for tests and `show`)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bgpd-mrt-writer", daemon=True)
        self._thread.start()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._closed = False

    @classmethod
    def from_config(cls, cfg, **kw) -> "UpdateLogWriter":
        """From a checked :class:`~bgpd.mrt.config.MrtConfig` with ``updates`` set."""
        return cls(
            cfg.updates,
            cfg.rotate,
            flush_interval=cfg.flush_interval,
            max_pending=cfg.buffer,
            **kw,
        )

    # --- what the daemon calls ----------------------------------------------------------------

    @_guarded
    def message(self, peer: MrtPeer, raw: bytes, sent: bool = False, now: float | None = None):
        """Log one BGP message (the full message, header included)."""
        if self._closed:
            return
        if now is None:
            now = self.clock()
        self.core.add(peer.message(raw, now, sent), now)
        self._after()

    @_guarded
    def body(self, peer: MrtPeer, msg_type: int, body: bytes, sent: bool = False, now=None):
        """Log one message given as the framer returns it (type and body, no header)."""
        raw = MARKER + (HEADER_LEN + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body
        self.message(peer, raw, sent, now)

    @_guarded
    def messages(self, peer: MrtPeer, raws, sent: bool = False, now: float | None = None):
        """Log several messages of one session at once (one clock read, one timer check)."""
        if self._closed or not raws:
            return
        if now is None:
            now = self.clock()
        enc = peer.message
        self.core.add(b"".join([enc(r, now, sent) for r in raws]), now, len(raws))
        self._after()

    @_guarded
    def state_change(self, peer: MrtPeer, old, new, now: float | None = None) -> None:
        if self._closed:
            return
        if now is None:
            now = self.clock()
        self.core.add(peer.state_change(old, new, now), now)
        self._after()

    # --- batching and the timer ---------------------------------------------------------------

    def _after(self) -> None:
        if self.core._out:
            self._hand_over()
        self._arm()

    def _hand_over(self) -> None:
        for op in self.core.take():
            if op[0] == "write":
                n = len(op[2])
                if self.queued - self.written + n > self.max_pending:
                    self.dropped_bytes += n
                    self.dropped_records += op[3]
                    continue
                self.queued += n
            self._q.put(op)

    def _arm(self) -> None:
        d = self.core.next_deadline()
        if d == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = d
        if d is None:
            return
        loop = self.loop
        if loop is None:
            try:
                loop = self.loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # used without an event loop: flushed by size, sync() and close()
        self._timer = loop.call_at(loop.time() + max(0.0, d - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = None
        self.core.handle_timer(self.clock())
        self._hand_over()
        self._arm()

    @property
    def pending(self) -> int:
        """Octets waiting for the thread."""
        return self.queued - self.written + self.core.buffered

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        files: dict = {}
        q = self._q
        while True:
            op = q.get()
            if op is None:
                break
            kind = op[0]
            try:
                if kind == "write":
                    _, path, data, _count = op
                    fh = files.get(path)
                    if fh is None:
                        fh = files[path] = _open_append(path)
                        self.files.append(path)
                    fh.write(data)
                    self.written += len(data)
                elif kind == "close":
                    fh = files.pop(op[1], None)
                    if fh is not None:
                        fh.close()
                elif kind == "sync":
                    for fh in files.values():
                        fh.flush()
                    op[1].set()
            except OSError as e:
                self.errors += 1
                self.last_error = f"{op[1]}: {e.strerror or e}"
                if kind == "write":
                    self.written += len(op[2])
                    self.failed_bytes += len(op[2])
                    self.failed_records += op[3]
        for fh in files.values():
            try:
                fh.close()
            except OSError:
                pass

    def sync(self, timeout: float = 10.0) -> bool:
        """Flush everything to the files and wait for the thread (blocking: tests, shutdown)."""
        self.core.flush()
        self._hand_over()
        done = threading.Event()
        self._q.put(("sync", done))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, close the files and stop the thread (blocks up to ``timeout``)."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.core.close()
        self._hand_over()
        self._q.put(None)
        self._thread.join(timeout)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def stats(self) -> dict:
        return {
            "file": self.core.path,
            "records": self.core.records,
            "bytes": self.core.bytes + self.core.buffered,
            "pending": self.pending,
            "dropped_records": self.dropped_records,
            "dropped_bytes": self.dropped_bytes,
            "internal_errors": self.internal_errors,
            "errors": self.errors,
            "failed_records": self.failed_records,
            "failed_bytes": self.failed_bytes,
            "last_error": self.last_error,
        }


def _open_append(path: str):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    if path.endswith(".gz"):
        import gzip

        return gzip.open(path, "ab", compresslevel=5)
    if path.endswith(".bz2"):
        import bz2

        return bz2.open(path, "ab")
    return open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the thread


__all__ = ["UpdateLogWriter"]
