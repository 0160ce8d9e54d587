"""The asyncio binding of BFD: UDP sockets, one timer, callbacks. Wraps :class:`Manager`.

:class:`BfdService` is what the daemon (and ``python -m bgpd.bfd``) uses::

    svc = BfdService(on_state_change=cb)            # inside a running event loop
    key = svc.add_session("10.0.0.2", "10.0.0.1", params=SessionParams(...))
    svc.is_up(key); svc.snapshot(); svc.admin_down(key); svc.remove_session(key)
    svc.close()

Sockets (RFC 5881 §4-5, RFC 5883 §5):

* one receiving socket per (local address, port[, interface for IPv6 link-local]), bound
  to that address on 3784 (single hop) or 4784 (multihop), shared by every session from that
  address, with IP_RECVTTL / IPV6_RECVHOPLIMIT (the TTL is checked by the manager: 255 for
  single hop, the configured minimum for multihop) and IP_PKTINFO / IPV6_RECVPKTINFO (the
  interface, for sessions bound to one);
* one sending socket per session, bound to the local address and a source port drawn from
  49152-65535 (unique per session, as RFC 5881 §4 recommends), TTL/hop limit 255, DSCP CS6,
  SO_BINDTODEVICE when the session names an interface.

Both are non-blocking and read with ``loop.add_reader``; there is no task per session and no
sleeping loop. Every socket uses IP_FREEBIND, so a session can be added before its local
address exists (an interface coming up, IPv6 DAD). A failed send is counted, never raised:
BFD treats a lost packet like any other.

Timers: the manager keeps all deadlines in one heap; this binding keeps a single
``loop.call_at`` for the earliest and re-arms it after every input.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import struct
from collections.abc import Callable

import structlog

from .config import BfdConfig
from .manager import Manager, SessionKey
from .packet import SINGLE_HOP_PORT, SOURCE_PORT_MAX, SOURCE_PORT_MIN, State
from .session import SessionParams, StateChanged

log = structlog.get_logger("bgpd.bfd")

# Linux values the socket module of Python 3.11 lacks.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TTL = socket.IP_TTL  # also the cmsg type of a received TTL
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SO_PRIORITY = getattr(socket, "SO_PRIORITY", 12)
DSCP_CS6 = 0xC0  # "network control", as BIRD and FRR mark BFD
PRIORITY = 6  # the highest SO_PRIORITY an unprivileged socket may use
READ_BATCH = 64  # datagrams read per readiness callback before yielding to the loop
RECV_SIZE = 512
ANC_SIZE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(32)

StateCallback = Callable[[SessionKey, StateChanged], None]


class _RxSocket:
    __slots__ = ("sock", "local", "port", "family", "users")

    def __init__(self, sock: socket.socket, local: str, port: int, family: int) -> None:
        self.sock = sock
        self.local = local
        self.port = port
        self.family = family
        self.users = 0


class BfdService:
    """Many BFD sessions over UDP in the running event loop. See the module docstring.

    ``on_state_change(key, event)`` is called for every state change of every session, after
    the session's own ``on_change`` (given to :meth:`add_session`). Exceptions from callbacks
    are logged and swallowed. ``rng`` (discriminators, jitter, sequence numbers) is for tests.
    """

    def __init__(
        self,
        *,
        on_state_change: StateCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._loop = loop
        self._rng = rng if rng is not None else random.SystemRandom()
        self.manager = Manager(rng=self._rng)
        self.on_state_change = on_state_change
        self._callbacks: dict[SessionKey, StateCallback] = {}
        self._rx: dict[tuple, _RxSocket] = {}
        self._rx_of: dict[SessionKey, tuple] = {}
        self._tx: dict[SessionKey, socket.socket] = {}
        self._dest: dict[SessionKey, tuple] = {}
        self._sport: dict[SessionKey, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ifnames: dict[int, str | None] = {}
        self.tx_errors: dict[SessionKey, int] = {}
        self.last_tx_error: dict[SessionKey, str] = {}
        self.closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # --- the API the daemon uses -------------------------------------------------------------

    def add_session(
        self,
        peer: str,
        local: str,
        *,
        interface: str | None = None,
        multihop: bool = False,
        params: SessionParams | None = None,
        min_ttl: int | None = None,
        on_change: StateCallback | None = None,
        admin_down: bool = False,
    ) -> SessionKey:
        """Start a session to ``peer`` from ``local`` and return its key.

        Raises ValueError for a bad address pair or a session that exists, OSError when its
        sockets cannot be made (the session is then not added).
        """
        if self.closed:
            raise RuntimeError("the BFD service is closed")
        key = SessionKey.make(peer, local, interface, multihop)
        if key in self.manager:
            raise ValueError(f"a BFD session for {key} exists")
        params = params or SessionParams()
        rx_key = self._rx_key(key)
        rx = self._rx.get(rx_key)
        if rx is None:
            rx = self._open_rx(key)
            self._rx[rx_key] = rx
        tx = None
        try:
            tx = self._open_tx(key)
            self.manager.add(key, params, self.loop.time(), min_ttl=min_ttl, admin_down=admin_down)
        except BaseException:
            if tx is not None:
                tx.close()
            if rx.users == 0:
                self._close_rx(rx_key)
            raise
        rx.users += 1
        self._rx_of[key] = rx_key
        self._tx[key] = tx
        self._sport[key] = tx.getsockname()[1]
        self._dest[key] = self._destination(key)
        if on_change is not None:
            self._callbacks[key] = on_change
        log.info(
            "bfd session added", session=str(key), local_disc=self.manager.session(key).local_disc
        )
        self._after([])
        return key

    def add_configured(
        self,
        peer: str,
        local: str,
        cfg: BfdConfig,
        on_change: StateCallback | None = None,
    ) -> SessionKey:
        """:meth:`add_session` from a parsed ``bfd:`` section (:func:`bgpd.bfd.config.parse`):
        its interface, multihop, min_ttl and params."""
        return self.add_session(
            peer,
            local,
            interface=cfg.interface,
            multihop=cfg.multihop,
            params=cfg.params,
            min_ttl=cfg.min_ttl,
            on_change=on_change,
        )

    @staticmethod
    def local_address_for(peer: str, interface: str | None = None) -> str:
        """The source address the kernel would use towards ``peer`` (a connected UDP socket,
        nothing sent): the ``local`` of a session whose BGP neighbor has no update_source,
        known before the TCP connection exists. Raises OSError without a route."""
        fam = socket.AF_INET6 if ":" in peer else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            if interface:
                s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
            if fam == socket.AF_INET6:
                scope = socket.if_nametoindex(interface) if interface else 0
                s.connect((peer, SINGLE_HOP_PORT, 0, scope))
            else:
                s.connect((peer, SINGLE_HOP_PORT))
            return s.getsockname()[0].split("%", 1)[0]

    def remove_session(self, key: SessionKey) -> None:
        """Stop the session: a last AdminDown goes to the peer (if known), sockets close."""
        if self.manager.remove(key) is None:
            return
        self._flush()
        self._callbacks.pop(key, None)
        tx = self._tx.pop(key, None)
        if tx is not None:
            tx.close()
        self._dest.pop(key, None)
        self._sport.pop(key, None)
        self.tx_errors.pop(key, None)
        self.last_tx_error.pop(key, None)
        rx_key = self._rx_of.pop(key)
        rx = self._rx[rx_key]
        rx.users -= 1
        if rx.users == 0:
            self._close_rx(rx_key)
        log.info("bfd session removed", session=str(key))

    def update_session(self, key: SessionKey, params: SessionParams) -> None:
        """New intervals, multiplier or authentication (a Poll Sequence tells the peer)."""
        self._after(self.manager.update(key, params, self.loop.time()))

    def admin_down(self, key: SessionKey) -> None:
        self._after(self.manager.admin_down(key, self.loop.time()))

    def admin_up(self, key: SessionKey) -> None:
        self._after(self.manager.admin_up(key, self.loop.time()))

    def state(self, key: SessionKey) -> State | None:
        s = self.manager.session(key)
        return None if s is None else s.state

    def is_up(self, key: SessionKey) -> bool:
        return self.state(key) == State.UP

    def keys(self) -> list[SessionKey]:
        return self.manager.keys()

    def snapshot(self) -> dict:
        """``show bfd`` / metrics: every session's state, timers and counters, plus the
        service-wide drop counters."""
        snap = self.manager.snapshot(self.loop.time())
        for row in snap["sessions"]:
            key = SessionKey(row["peer"], row["local"], row["interface"], row["multihop"])
            row["source_port"] = self._sport.get(key)
            row["tx_errors"] = self.tx_errors.get(key, 0)
            row["last_tx_error"] = self.last_tx_error.get(key)
        snap["sockets"] = [
            {"local": rx.local, "port": rx.port, "sessions": rx.users} for rx in self._rx.values()
        ]
        return snap

    def close(self) -> None:
        """Remove every session (each sends its last AdminDown) and close every socket."""
        for key in list(self.manager.keys()):
            self.remove_session(key)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for rx_key in list(self._rx):
            self._close_rx(rx_key)
        self.closed = True

    # --- sockets -----------------------------------------------------------------------------

    @staticmethod
    def _rx_key(key: SessionKey) -> tuple:
        scoped = key.family == 6 and key.local.startswith("fe80:")
        return (key.local, key.port, key.interface if scoped else None)

    def _scope(self, key: SessionKey) -> int:
        if key.family == 6 and key.interface:
            return socket.if_nametoindex(key.interface)
        return 0

    def _destination(self, key: SessionKey) -> tuple:
        if key.family == 6:
            return (key.peer, key.port, 0, self._scope(key))
        return (key.peer, key.port)

    def _open_rx(self, key: SessionKey) -> _RxSocket:
        fam = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                scope = self._scope(key) if key.local.startswith("fe80:") else 0
                sock.bind((key.local, key.port, 0, scope))
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                sock.bind((key.local, key.port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        rx = _RxSocket(sock, key.local, key.port, key.family)
        self.loop.add_reader(sock.fileno(), self._readable, rx)
        return rx

    def _close_rx(self, rx_key: tuple) -> None:
        rx = self._rx.pop(rx_key, None)
        if rx is None:
            return
        with contextlib.suppress(Exception):
            self.loop.remove_reader(rx.sock.fileno())
        rx.sock.close()

    def _open_tx(self, key: SessionKey) -> socket.socket:
        fam = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, DSCP_CS6)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_TTL, 255)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_CS6)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_PRIORITY, PRIORITY)
            if key.interface:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, key.interface.encode())
                except PermissionError:
                    log.warning(
                        "bfd: cannot bind to the interface (needs CAP_NET_RAW)",
                        session=str(key),
                    )
            scope = self._scope(key) if key.local.startswith("fe80:") else 0
            for _ in range(256):
                port = self._rng.randint(SOURCE_PORT_MIN, SOURCE_PORT_MAX)
                addr = (key.local, port, 0, scope) if fam == socket.AF_INET6 else (key.local, port)
                try:
                    sock.bind(addr)
                    break
                except OSError as e:
                    if e.errno != errno.EADDRINUSE:
                        raise
            else:
                raise OSError(errno.EADDRINUSE, "no free source port in 49152-65535")
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    # --- input -------------------------------------------------------------------------------

    def _ifname(self, index: int) -> str | None:
        try:
            return self._ifnames[index]
        except KeyError:
            try:
                name = socket.if_indextoname(index)
            except OSError:
                name = None
            if len(self._ifnames) > 4096:
                self._ifnames.clear()
            self._ifnames[index] = name
            return name

    def _readable(self, rx: _RxSocket) -> None:
        sock = rx.sock
        manager = self.manager
        events: list = []
        v6 = rx.family == 6
        now = self.loop.time()
        for _ in range(READ_BATCH):
            try:
                data, anc, _flags, addr = sock.recvmsg(RECV_SIZE, ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # e.g. a queued ICMP error: nothing to do with BFD input
                log.debug("bfd: receive error", local=rx.local, port=rx.port, error=str(e))
                break
            ttl = None
            ifindex = 0
            for level, kind, value in anc:
                if v6:
                    if level == socket.IPPROTO_IPV6:
                        if kind == IPV6_HOPLIMIT and len(value) >= 4:
                            ttl = struct.unpack_from("i", value)[0]
                        elif kind == IPV6_PKTINFO and len(value) >= 20:
                            ifindex = struct.unpack_from("I", value, 16)[0]
                elif level == socket.IPPROTO_IP:
                    if kind == IP_TTL and len(value) >= 1:
                        ttl = value[0] if len(value) < 4 else struct.unpack_from("i", value)[0]
                    elif kind == IP_PKTINFO and len(value) >= 4:
                        ifindex = struct.unpack_from("i", value)[0]
            src = addr[0]
            if v6 and "%" in src:
                src = src.split("%", 1)[0]
            events += manager.datagram_received(
                data,
                src=src,
                dst=rx.local,
                port=rx.port,
                ttl=ttl,
                interface=self._ifname(ifindex) if ifindex else None,
                now=now,
            )
        self._after(events)

    def _on_timer(self) -> None:
        at = self._timer_at
        self._timer = None
        self._timer_at = None
        now = self.loop.time()
        if at is not None and now < at:
            now = at  # asyncio may run a handle up to its clock resolution early
        self._after(self.manager.handle_timer(now))

    # --- output ------------------------------------------------------------------------------

    def _after(self, events: list) -> None:
        """After every input: send, re-arm the timer, then tell the callbacks."""
        self._flush()
        self._rearm()
        for key, ev in events:
            if not isinstance(ev, StateChanged):
                continue
            log.info(
                "bfd state",
                session=str(key),
                old=ev.old.label,
                new=ev.new.label,
                diag=ev.diag,
                remote_state=ev.remote_state.label,
            )
            for cb in (self._callbacks.get(key), self.on_state_change):
                if cb is None:
                    continue
                try:
                    cb(key, ev)
                except Exception:
                    log.exception("bfd: state callback failed", session=str(key))

    def _flush(self) -> None:
        for key, data in self.manager.datagrams_to_send():
            sock = self._tx.get(key)
            if sock is None:
                continue
            try:
                sock.sendto(data, self._dest[key])
            except OSError as e:  # full buffer, no route, filtered: like a lost packet
                self.tx_errors[key] = self.tx_errors.get(key, 0) + 1
                self.last_tx_error[key] = e.strerror or str(e)

    def _rearm(self) -> None:
        when = self.manager.next_deadline()
        if when is None:
            return
        if self._timer is not None:
            if self._timer_at is not None and self._timer_at <= when:
                return  # fires first; the manager re-arms then
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)


__all__ = ["BfdService", "StateCallback"]
