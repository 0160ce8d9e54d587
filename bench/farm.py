"""Many minimal BGP speakers in one process, served by one selector loop: what the idle-sessions
benchmark's clients (sessions.py) and the Calico reflector benchmark's nodes (calico_rr.py)
share. A subclass of :class:`Farm` says what a message does (:meth:`Farm.message`) and what a
drop leaves behind (:meth:`Farm.drop`); its speakers subclass :class:`Speaker`.

Output is written at once and what the socket does not take is queued (``out``), with write
interest while it is not empty; input is framed in ``buf``; KEEPALIVEs go from a heap of
deadlines; the idle window records, per speaker, the longest silence of the reflector.
"""

from __future__ import annotations

import contextlib
import heapq
import selectors
import socket

from bgpd.wire import Keepalive

HEADER = 19
KEEPALIVE_MSG = Keepalive().encode()
IDLE, CONNECTING, OPENSENT, OPENCONFIRM, ESTABLISHED = range(5)
STATE_NAMES = ("idle", "connecting", "opensent", "openconfirm", "established")


class Speaker:
    """One session's socket, buffers and timers (``i``: its index in the farm)."""

    __slots__ = (
        "i",
        "sock",
        "state",
        "buf",
        "out",
        "full",
        "last_rx",
        "max_gap",
        "next_ka",
        "ka_every",
        "sessions",
    )

    def __init__(self, i: int, ka_every: float) -> None:
        self.i = i
        self.sock: socket.socket | None = None
        self.state = IDLE
        self.buf = bytearray()
        self.out = bytearray()
        self.full = False  # holds every route it should
        self.last_rx = 0.0
        self.max_gap = 0.0  # longest silence of the reflector while the window was open
        self.next_ka = 0.0
        self.ka_every = ka_every
        self.sessions = 0  # times Established


class Farm:
    """The selector loop's socket work over ``self.speakers`` (indexed by ``Speaker.i``)."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.speakers: list = []
        self.ka: list[tuple[float, int]] = []
        self.established = 0
        self.full = 0
        self.window: dict | None = None  # counters while the idle window is open
        self.bytes_in = 0
        self.messages_in = 0

    # --- hooks

    def on_open(self, s: Speaker, body: bytes, now: float) -> None:
        """The reflector's OPEN (``body``: after the header) in OpenSent: check it, answer."""
        raise NotImplementedError

    def on_established(self, s: Speaker, now: float) -> None:
        """Its KEEPALIVE in OpenConfirm: the session is up."""
        raise NotImplementedError

    def on_update(self, s: Speaker, buf: bytearray, start: int, end: int) -> None:
        """An UPDATE in Established, its body at ``buf[start:end]``."""
        raise NotImplementedError

    def message(self, s: Speaker, t: int, buf: bytearray, i: int, length: int, now: float) -> bool:
        """Message type ``t`` at ``buf[i:i + length]`` (header included); False when it
        ended the session (``s`` was dropped)."""
        if t == 2:
            if s.state != ESTABLISHED:
                self.drop(s, now, f"UPDATE in state {STATE_NAMES[s.state]}")
                return False
            self.on_update(s, buf, i + HEADER, i + length)
        elif t == 4:
            if s.state == OPENCONFIRM:
                self.on_established(s, now)
            elif self.window is not None:
                self.window["ka_rx"] += 1
        elif t == 1:
            if s.state != OPENSENT:
                self.drop(s, now, f"OPEN in state {STATE_NAMES[s.state]}")
                return False
            self.on_open(s, bytes(buf[i + HEADER : i + length]), now)
        elif t == 3:
            code = buf[i + HEADER] if length > HEADER else 0
            sub = buf[i + HEADER + 1] if length > HEADER + 1 else 0
            self.drop(s, now, f"NOTIFICATION {code}/{sub}")
            return False
        elif t != 5:  # ROUTE-REFRESH: nothing to do, no Adj-RIB-Out is kept
            self.drop(s, now, f"message type {t}")
            return False
        return True

    def drop(self, s: Speaker, now: float, reason: str) -> None:
        """The session is over: at least :meth:`release` it."""
        self.release(s)

    # --- sockets

    def send(self, s: Speaker, data: bytes, now: float) -> None:
        if s.sock is None:
            return
        if s.out:
            s.out += data
            return
        try:
            k = s.sock.send(data)
        except BlockingIOError:
            k = 0
        except OSError as e:
            self.drop(s, now, f"send: {e}")
            return
        if k < len(data):
            s.out += data[k:]
            self.sel.modify(s.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, s)

    def flush(self, s: Speaker, now: float) -> None:
        """The socket takes output again: send what is queued; read interest only once empty."""
        if s.out:
            try:
                k = s.sock.send(s.out)
            except BlockingIOError:
                return
            except OSError as e:
                self.drop(s, now, f"send: {e}")
                return
            del s.out[:k]
        if not s.out:
            self.sel.modify(s.sock, selectors.EVENT_READ, s)

    def release(self, s: Speaker) -> None:
        """Close ``s``'s socket and forget its session: counters, buffers, state Idle."""
        if s.state == ESTABLISHED:
            self.established -= 1
        if s.full:
            self.full -= 1
            s.full = False
        if s.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(s.sock)
            s.sock.close()
        s.sock = None
        s.state = IDLE
        s.buf = bytearray()
        s.out = bytearray()

    def readable(self, s: Speaker, now: float) -> None:
        try:
            data = s.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as e:
            self.drop(s, now, f"recv: {e}")
            return
        if not data:
            self.drop(s, now, "EOF")
            return
        self.bytes_in += len(data)
        if self.window is not None and s.state == ESTABLISHED:
            gap = now - s.last_rx
            if gap > s.max_gap:
                s.max_gap = gap
        s.last_rx = now
        buf = s.buf
        buf += data
        i, end = 0, len(buf)
        while end - i >= HEADER:
            length = (buf[i + 16] << 8) | buf[i + 17]
            if length < HEADER:
                self.drop(s, now, f"bad message length {length}")
                return
            if end - i < length:
                break
            self.messages_in += 1
            if not self.message(s, buf[i + 18], buf, i, length, now) or s.sock is None:
                return
            i += length
        if i:
            del buf[:i]

    # --- keepalives

    def schedule_keepalives(self, s: Speaker, now: float) -> None:
        """Established: ``s`` sends a KEEPALIVE every ``ka_every`` seconds from now on."""
        if s.ka_every:
            s.next_ka = now + s.ka_every
            heapq.heappush(self.ka, (s.next_ka, s.i))

    def keepalives(self, now: float) -> None:
        ka = self.ka
        while ka and ka[0][0] <= now:
            due, i = heapq.heappop(ka)
            s = self.speakers[i]
            if s.state != ESTABLISHED or s.next_ka != due:
                continue  # a session that has since gone down
            self.send(s, KEEPALIVE_MSG, now)
            if self.window is not None:
                self.window["ka_tx"] += 1
            s.next_ka = max(due + s.ka_every, now)
            heapq.heappush(ka, (s.next_ka, i))

    # --- the idle window

    def open_window(self, now: float, **counters) -> None:
        self.window = {"t0": now, "ka_rx": 0, "ka_tx": 0, "updates": 0, "drops": 0, **counters}
        for s in self.speakers:
            s.max_gap = 0.0

    def silences(self, now: float) -> list[float]:
        """Per speaker, the longest silence of the reflector in the window, sorted."""
        return sorted(
            max(s.max_gap, now - s.last_rx) if s.state == ESTABLISHED else s.max_gap
            for s in self.speakers
        )
