"""One BMP monitoring station (collector): the TCP client, its back-off and its bounded buffer.

The station connects out (RFC 7854 §3.2), retries with exponential back-off, and on every
(re)connection sends what :class:`~bgpd.bmp.service.BmpService` gives it: Initiation, a Peer
Up for the Loc-RIB and for every Established peer, then a full resync of the tables, produced
lazily while the socket drains. Live messages are written as they come, interleaved with the
resync.

A slow or dead collector never delays BGP: :meth:`Station.send` only appends to the
transport's buffer, and when that buffer would exceed ``buffer`` octets the stream is
dropped: the connection is aborted, the drop counted, and the next connection starts over
with a full resync. Memory per station is thereby bounded by ``buffer`` plus one resync chunk.
"""

import asyncio
import socket
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger("bgpd.bmp")

# The resync is produced while the transport holds less than this (octets; at most a quarter
# of the station's bound)...
RESYNC_HIGH = 1024 * 1024
# ... and for at most this long per event loop turn (seconds).
RESYNC_SLICE = 0.005


@dataclass(frozen=True, kw_only=True)
class StationConfig:
    address: str
    port: int = 1790
    local_address: str | None = None
    retry: float = 30.0  # first back-off (RFC 7854 §3.2 suggests 30 s)
    retry_max: float = 720.0
    buffer: int = 16 * 1024 * 1024
    connect_timeout: float = 10.0
    adj_rib_in: bool = True  # pre-policy Adj-RIB-In route monitoring
    loc_rib: bool = True  # RFC 9069 Loc-RIB route monitoring
    adj_rib_out: bool = False  # RFC 8671 post-policy Adj-RIB-Out route monitoring
    stats_interval: float = 60.0  # 0: no statistics reports
    sndbuf: int | None = None  # SO_SNDBUF of the connection (None: the kernel's autotuning)

    @property
    def name(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


class Station(asyncio.Protocol):
    """The connection to one collector. Created and driven by the service."""

    def __init__(self, service, cfg: StationConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.cfg = cfg
        self.loop = loop
        self.state = "idle"  # idle (waiting to retry) | connecting | up | closed
        self.transport: asyncio.Transport | None = None
        self.backoff = cfg.retry
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._resync = None  # iterator of bytes, while a resync is running
        self._producing = False
        self._paused = False
        # counters
        self.connects = 0
        self.connect_failures = 0
        self.drops = 0  # streams dropped because the buffer bound was reached
        self.dropped_bytes = 0  # octets thrown away by the drops (queued + the refused one)
        self.sent_bytes = 0
        self.resyncs = 0  # completed resyncs
        self.peak_buffer = 0
        self.last_error: str | None = None
        self.up_since: float | None = None
        self.resync_started: float | None = None
        self.resync_seconds: float | None = None  # duration of the last complete resync

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.state == "idle" and self._task is None and self._timer is None:
            self._connect_now()

    def _connect_now(self) -> None:
        self._timer = None
        if self.state == "closed":
            return
        self.state = "connecting"
        self._task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        cfg = self.cfg
        try:
            local = (cfg.local_address, 0) if cfg.local_address else None
            fam = socket.AF_INET6 if ":" in cfg.address else socket.AF_INET
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: self, cfg.address, cfg.port, local_addr=local, family=fam
                ),
                cfg.connect_timeout,
            )
        except (TimeoutError, OSError) as e:
            self.connect_failures += 1
            self.last_error = str(e) or type(e).__name__
            log.debug("bmp connect failed", station=cfg.name, error=self.last_error)
            self._task = None
            if self.state != "closed":
                self._retry_later()
            return
        except asyncio.CancelledError:
            self._task = None
            raise
        self._task = None

    def _retry_later(self) -> None:
        self.state = "idle"
        delay = self.backoff
        self.backoff = min(self.backoff * 2, self.cfg.retry_max)
        if self._timer is None:
            self._timer = self.loop.call_later(delay, self._connect_now)

    def close(self, final: bytes = b"") -> None:
        """Stop for good: send ``final`` (a Termination) if connected, then close."""
        self.state = "closed"
        self._resync = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        t = self.transport
        if t is not None:
            if final and not t.is_closing():
                t.write(final)
            t.close()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        if self.state == "closed":
            transport.abort()
            return
        self.transport = transport
        self.state = "up"
        self.connects += 1
        self.up_since = time.monotonic()
        self._paused = False
        # the resync pauses well below the bound, leaving room for the live stream
        high = min(RESYNC_HIGH, self.cfg.buffer // 4)
        transport.set_write_buffer_limits(high=high, low=high // 4)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if self.cfg.sndbuf:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.cfg.sndbuf)
            except OSError:
                pass
        log.info("bmp station connected", station=self.cfg.name)
        try:
            head, resync = self.service._session_start(self)
        except Exception:  # a bug in a provider: count it, try again later
            self.service.errors += 1
            log.exception("bmp: cannot start the session", station=self.cfg.name)
            self.state = "idle"
            transport.abort()
            return
        self._write(head)
        self._resync = resync
        self.resync_started = time.monotonic()
        self._schedule_produce()

    def data_received(self, data: bytes) -> None:
        pass  # a station has nothing to say to us (RFC 7854 §3.2); ignore it

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        self.transport = None
        self._resync = None
        self._paused = False
        if exc is not None:
            self.last_error = str(exc)
        if self.state == "closed":
            return
        log.info("bmp station disconnected", station=self.cfg.name, error=self.last_error)
        self._retry_later()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._schedule_produce()
        self.service._schedule_drain()

    # --- output -------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.state == "up"

    def buffered(self) -> int:
        t = self.transport
        return t.get_write_buffer_size() if t is not None else 0

    def send(self, data: bytes) -> bool:
        """Queue live messages; False when the station is down or the stream was dropped."""
        t = self.transport
        if self.state != "up" or t is None:
            return False
        size = t.get_write_buffer_size()
        if size + len(data) > self.cfg.buffer:
            self._drop(size, len(data))
            return False
        self._write(data)
        return True

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is None or not data:
            return
        t.write(data)
        self.sent_bytes += len(data)
        size = t.get_write_buffer_size()
        if size > self.peak_buffer:
            self.peak_buffer = size

    def _drop(self, size: int, refused: int) -> None:
        """The collector does not keep up: drop the stream, resync on the next connection."""
        self.drops += 1
        self.dropped_bytes += size + refused
        self.last_error = f"output buffer full ({size} octets queued, bound {self.cfg.buffer})"
        log.warning("bmp station too slow: stream dropped", station=self.cfg.name, queued=size)
        t = self.transport
        self._resync = None
        self.state = "idle"  # refuse everything from now on; the transport is going away
        if t is not None:
            t.abort()  # connection_lost() follows and schedules the reconnection

    def _schedule_produce(self) -> None:
        if self._resync is not None and not self._producing and not self._paused:
            self._producing = True
            self.loop.call_soon(self._produce)

    def _produce(self) -> None:
        """Write resync chunks until the transport is full or the time slice is used."""
        self._producing = False
        it = self._resync
        t = self.transport
        if it is None or t is None or self.state != "up":
            return
        deadline = time.monotonic() + RESYNC_SLICE
        while not self._paused:
            try:
                chunk = next(it)
            except Exception as e:
                if not isinstance(e, StopIteration):  # a bug in a provider: resync again later
                    self.service.errors += 1
                    log.exception("bmp: resync failed", station=self.cfg.name)
                    self._resync = None
                    self.state = "idle"
                    if self.transport is not None:
                        self.transport.abort()  # reconnect later and try again
                    return
                self._resync = None
                self.resyncs += 1
                self.backoff = self.cfg.retry  # a healthy session: forget the back-off
                if self.resync_started is not None:
                    self.resync_seconds = time.monotonic() - self.resync_started
                log.info("bmp resync complete", station=self.cfg.name, seconds=self.resync_seconds)
                return
            if self.state != "up":
                return
            # Written even past the bound: production runs only below the high mark (a
            # quarter of the bound at most), so the buffer holds at most that plus one chunk,
            # and a chunk bigger than the bound cannot drop the stream at every try.
            self._write(chunk)
            if time.monotonic() >= deadline:
                break
        if not self._paused:
            self._producing = True
            self.loop.call_soon(self._produce)

    @property
    def resyncing(self) -> bool:
        return self._resync is not None

    def stats(self) -> dict:
        return {
            "station": self.cfg.name,
            "state": self.state,
            "connects": self.connects,
            "connect_failures": self.connect_failures,
            "drops": self.drops,
            "dropped_bytes": self.dropped_bytes,
            "sent_bytes": self.sent_bytes,
            "buffered": self.buffered(),
            "peak_buffer": self.peak_buffer,
            "resyncing": self.resyncing,
            "resyncs": self.resyncs,
            "resync_seconds": self.resync_seconds,
            "backoff": self.backoff,
            "last_error": self.last_error,
        }


__all__ = ["RESYNC_HIGH", "Station", "StationConfig"]
