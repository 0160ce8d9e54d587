"""The asyncio binding of one peer: TCP connections, one timer handle, reads and writes.

The protocol logic lives in :class:`bgpd.fsm.Protocol` (sans-I/O); this module only moves bytes
and time to it and acts on the events it returns. One ``loop.call_at`` handle per peer is
re-armed after every call into the FSM, as aioquic's binding does. During a connection
collision (RFC 4271 §6.8) a peer briefly holds two connections, each with its own FSM.
"""

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

import structlog

from bgpd.fsm import Protocol, SessionSettings, State, resolve_collision
from bgpd.fsm import events as ev
from bgpd.wire.constants import CEASE_COLLISION, ERR_CEASE

from . import tcp
from .wheel import RATE, wheel_for

log = structlog.get_logger("bgpd.session")

# Output flow control: stop producing UPDATEs above HIGH, resume below LOW (bytes queued in
# the transport). A slow peer then costs at most HIGH bytes of buffered output.
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
# A connection being closed gets this long to send what is still queued (the NOTIFICATION
# last); then it is aborted, as BIRD hangs up after 10 s in its Close state. A peer that stops
# reading (hung, or gone without a FIN) would otherwise keep the socket and the buffered
# output forever.
CLOSE_TIMEOUT = 10.0


@dataclass(slots=True)
class Transport:
    """Where and how to reach the peer."""

    remote_address: str
    remote_port: int = 179
    local_address: str | None = None
    password: str | None = None
    ttl: int = 64
    min_ttl: int | None = None
    connect_timeout: float = 10.0


class _Conn(asyncio.Protocol):
    """One TCP connection and the FSM that owns it."""

    def __init__(self, session: "PeerSession", fsm: Protocol, outbound: bool) -> None:
        self.session = session
        self.fsm = fsm
        self.outbound = outbound
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self.peer_open = None  # the peer's OPEN on this connection, once received
        self.paused_at: float | None = None  # when the transport stopped taking output
        self.reported_up = False  # the handler was told its session is Established
        self.dumped = False  # lost a collision: events still queued for it are stale
        self._abort_handle: asyncio.TimerHandle | None = None  # see CLOSE_TIMEOUT

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.session._made(self)

    def data_received(self, data: bytes) -> None:
        self.session._feed(self, data)

    def eof_received(self):
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._abort_handle is not None:
            self._abort_handle.cancel()
            self._abort_handle = None
        self.session._lost(self, exc)

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_at = time.monotonic()

    def resume_writing(self) -> None:
        self.paused = False
        self.paused_at = None
        self.session._resumed(self)

    def close(self) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        t.close()  # sends what is queued first
        if self._abort_handle is None and t.get_write_buffer_size():
            self._abort_handle = self.session.loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self._abort_handle = None
        if self.transport is not None and not self.closed:
            self.session.log.info(
                "connection aborted: queued output not sent",
                queued=self.transport.get_write_buffer_size(),
                timeout=CLOSE_TIMEOUT,
            )
            self.transport.abort()

    @property
    def sock(self):
        if self.transport is None:
            return None
        return self.transport.get_extra_info("socket")

    def local(self) -> str | None:
        if self.transport is None:
            return None
        name = self.transport.get_extra_info("sockname")
        return name[0] if name else None

    def loopback(self) -> bool:
        """Both ends are loopback addresses: the peer runs on this host."""
        if self.transport is None:
            return False
        ends = (self.transport.get_extra_info(k) for k in ("sockname", "peername"))
        return all(e and _is_loopback(e[0]) for e in ends)


class SessionHandler(TypingProtocol):
    """What a session reports, to the daemon (bgpd/speaker/daemon.py), which forwards the
    routing part to the route engine."""

    def session_established(self, session: "PeerSession") -> None: ...

    def session_down(self, session: "PeerSession", event: ev.SessionDown) -> None: ...

    def updates_received(self, session: "PeerSession", updates: list) -> None: ...

    def route_refresh_received(self, session: "PeerSession", rr) -> None: ...

    def session_writable(self, session: "PeerSession") -> None: ...


class SessionTap(TypingProtocol):
    """What a session shows of its wire to monitoring (the MRT update log, BMP), when
    ``PeerSession.tap`` is set: the bytes of every read before the FSM sees them, the bytes
    of every write (whole messages), every state change. ``conn`` is the connection they
    belong to (one per TCP connection: ``conn.fsm``, ``conn.transport``, ``conn.local()``);
    a state change may come with None (no connection). Must not raise and must not block."""

    def received(self, session: "PeerSession", conn, data: bytes) -> None: ...

    def sent(self, session: "PeerSession", conn, data: bytes) -> None: ...

    def state(self, session: "PeerSession", conn, old: State, new: State) -> None: ...


class PeerSession:
    """One configured (or dynamic) neighbor's session; it reports to ``handler`` (a
    :class:`SessionHandler`). ``owner`` is whatever the handler wants back with each report
    (the daemon's neighbor)."""

    def __init__(
        self,
        settings: SessionSettings,
        transport: Transport,
        handler: SessionHandler,
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.monotonic,
        owner: Any = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.handler = handler
        self.owner = owner
        self.loop = loop or asyncio.get_event_loop()
        self.clock = clock
        self.fsm = Protocol(settings)
        self.conn: _Conn | None = None  # the connection of self.fsm
        self.other: _Conn | None = None  # a second connection during a collision
        # The FSM's next deadline is kept armed: in the loop's shared TimerWheel (slot
        # self._slot), or, when the loop has none for our clock, with one call_at handle.
        self._wheel = wheel_for(self.loop, clock)
        self._slot: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0  # the FSM deadline self._timer is armed for
        self._connect_task: asyncio.Task | None = None
        self.enabled = False
        self.closed = False
        self.last_error: str | None = None  # the latest reason the session is not up
        self._peer_dumped = False  # the session ended with the peer's Cease 6/7
        self.reading_paused = False
        self.log = log.bind(peer=transport.remote_address)
        self.tap: SessionTap | None = None  # monitoring (MRT, BMP); None costs one test

    # --- control ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.transport.remote_address

    @property
    def state(self) -> State:
        return self.fsm.state

    @property
    def established(self) -> bool:
        return self.fsm.state == State.ESTABLISHED

    def local_address(self) -> str | None:
        if self.conn is not None:
            return self.conn.local()
        return self.transport.local_address

    def update_settings(self, settings: SessionSettings) -> None:
        """New settings (a reload changed connect_retry, error_wait...): for the FSMs running
        now, from their next timer or connection on, and for every FSM made later. What a
        session already negotiated stays until it is re-established."""
        self.settings = settings
        for fsm in (self.fsm, self.other.fsm if self.other is not None else None):
            if fsm is not None:
                fsm.update_settings(settings)

    def start(self) -> None:
        self.enabled = True
        self._run(self.fsm, self.fsm.start(self.clock()))

    def stop(self, subcode: int = 2, message: str = "") -> None:
        """Administrative shutdown: Cease with an RFC 9003 message, then stay down."""
        self.enabled = False
        self._cancel_connect()
        now = self.clock()
        if self.other is not None:
            self._run(self.other.fsm, self.other.fsm.stop(now, subcode=subcode, message=message))
        self._run(self.fsm, self.fsm.stop(now, subcode=subcode, message=message))

    def drop(self, subcode: int, message: str = "", restart: bool = True) -> None:
        """End the session with Cease ``subcode`` because something outside BGP says the
        peer is gone (BFD Down, RFC 9384). Not an administrative stop: graceful restart
        applies as to any other loss. The session starts again at once, or, without
        ``restart``, stays down until :meth:`start`."""
        if self.closed or not self.enabled:
            return
        now = self.clock()
        if self.other is not None:
            self._run(self.other.fsm, self.other.fsm.stop(now, subcode=subcode, message=message))
        self._run(self.fsm, self.fsm.stop(now, subcode=subcode, message=message))
        if restart:
            self._run(self.fsm, self.fsm.start(now))
        else:
            self.enabled = False
            self._cancel_connect()

    def reset(self, message: str = "") -> None:
        """Administrative reset (Cease 6/4) followed by a fresh start."""
        self.stop(subcode=4, message=message)
        self.start()

    def close(self, subcode: int = 3, message: str = "") -> None:
        """The neighbor is deconfigured (Cease 6/3): stop and release everything."""
        self.stop(subcode=subcode, message=message)
        self.closed = True
        self._disarm()
        for c in (self.conn, self.other):
            if c is not None:
                c.close()

    def abort(self) -> None:
        """Drop the connection without a NOTIFICATION (our graceful restart: the neighbor
        keeps our routes as stale) and release everything."""
        self.enabled = False
        self.closed = True
        self._cancel_connect()
        self._disarm()
        for c in (self.conn, self.other):
            if c is not None and c.transport is not None and not c.closed:
                c.transport.abort()

    def send(self, messages: list[bytes]) -> None:
        """Send already-encoded UPDATEs (and the BoRR/EoRR markers of an enhanced route
        refresh) only while Established: one FSM call and one transport write per batch.
        Sending moves no deadline earlier and raises no event, so the timer is left as it
        is (see :meth:`_arm`)."""
        conn = self.conn
        fsm = self.fsm
        if conn is None or fsm.state is not State.ESTABLISHED:
            return
        data = fsm.send_updates(messages, self.clock())
        t = conn.transport
        if data and t is not None and not conn.closed:
            t.write(data)
            if self.tap is not None:
                self.tap.sent(self, conn, data)

    def send_route_refresh(self, afi: int, safi: int, subtype: int = 0) -> None:
        if self.established:
            self._run(self.fsm, self.fsm.send_route_refresh(afi, safi, subtype))

    def pause_reading(self) -> None:
        """Stop reading from the peer for now (the RIB has enough to export first)."""
        c = self.conn
        if c is not None and c.transport is not None and not c.closed:
            c.transport.pause_reading()
            self.reading_paused = True

    def resume_reading(self) -> None:
        c = self.conn
        self.reading_paused = False
        if c is not None and c.transport is not None and not c.closed:
            c.transport.resume_reading()

    @property
    def writable(self) -> bool:
        """True while the transport can take more output (below the high-water mark)."""
        c = self.conn
        return c is not None and not c.closed and not c.paused

    @property
    def unwritable_since(self) -> float | None:
        """Since when the transport has been above its high-water mark (None: it is not)."""
        c = self.conn
        return c.paused_at if c is not None and c.paused else None

    def write_buffer_size(self) -> int:
        c = self.conn
        if c is None or c.transport is None:
            return 0
        return c.transport.get_write_buffer_size()

    # --- inbound connections ----------------------------------------------------------------

    def accept(self, sock: socket.socket) -> bool:
        """Take an accepted socket from the listener; False if it was refused."""
        if self.closed or not self.enabled:
            return False
        state = self.fsm.state
        if state == State.ESTABLISHED and self.other is None and self._restarted_peer():
            # Graceful restart: the peer connects again while we still think the session is
            # up: it restarted. Drop the old connection as if TCP had died (no NOTIFICATION:
            # the handler keeps its routes as stale) and take the new one, as BIRD and FRR do.
            old = self.conn
            self.log.info("new connection while Established: the peer restarted")
            self._lost(old, ConnectionResetError("new connection from the peer (restart)"))
            old.close()
            state = self.fsm.state
        if state == State.ESTABLISHED:
            return False  # an Established session wins over a new connection (RFC 4271 §6.8)
        # The peer has at most one connection of its own open here. One that already brought
        # its OPEN wins over a newer one (as in BIRD). One that has not is taken as abandoned
        # and replaced (as FRR does): otherwise connections that never send anything (half
        # open, or from a peer that restarted) keep the real one out for the OpenSent hold
        # time. Collisions with our own connection keep RFC 4271 §6.8.
        inbound = self._inbound()
        if inbound is not None:
            if inbound.peer_open is not None:
                return False
            self._replace_inbound(inbound)
            state = self.fsm.state
        if self.other is not None:
            return False
        if state == State.IDLE:
            # Waiting out the idle-hold back-off after an error. The peer connecting is the
            # sign it is ready again: start now rather than refuse (as BIRD does); otherwise two
            # speakers backing off at the same time keep refusing each other.
            self._run(self.fsm, self.fsm.start(self.clock()))
            state = self.fsm.state
            if state not in (State.CONNECT, State.ACTIVE):
                return False
        if self.conn is not None:
            # Collision: run a second FSM on this connection until the OPENs decide (§6.8).
            # Also when the first one is still in Connect/Active (its transport not made yet,
            # or waiting in DelayOpen): refusing it instead loses both connections whenever
            # the peer, deciding by the identifiers, keeps this one and dumps ours.
            fsm = Protocol(self.settings)  # its ConnectRequested is ignored: not the main FSM
            conn = _Conn(self, fsm, outbound=False)
            self.other = conn
            self._run(fsm, fsm.start(self.clock()), conn)
        else:
            # Connect or Active. An outbound attempt still in flight is kept: if it completes,
            # it becomes the second connection and collision detection picks one (§6.8).
            conn = _Conn(self, self.fsm, outbound=False)
            self.conn = conn
        self._attach(conn, sock)
        return True

    def _inbound(self) -> "_Conn | None":
        """The connection the peer opened, if any (there is at most one)."""
        for c in (self.conn, self.other):
            if c is not None and not c.outbound and not c.closed:
                return c
        return None

    def _replace_inbound(self, old: _Conn) -> None:
        """Drop the peer's connection ``old``, which has not sent its OPEN, for a newer one:
        Cease 6/7 (Connection Collision Resolution) on it, if it is up. What is left is our own
        connection as the main one, or no connection and a fresh FSM, started."""
        self.log.info("new connection from the peer replaces one that sent no OPEN")
        if old is self.other:
            self.other = None
        elif self.other is not None:
            self.fsm, self.conn, self.other = self.other.fsm, self.other, None
        else:
            fsm = Protocol(self.settings)
            fsm.stats = self.fsm.stats  # the same neighbor: its counters go on
            # Started before it is the main FSM, so that its ConnectRequested is not acted on
            # (the connection is already there).
            self._run(fsm, fsm.start(self.clock()))
            self.fsm, self.conn = fsm, None
        # Not the main FSM any more: its SessionDown is not the session's (it never came up).
        self._run(old.fsm, old.fsm.collision_dump(self.clock()), old)
        old.dumped = True
        old.close()  # already closed, unless its FSM was still in Connect/Active

    def _restarted_peer(self) -> bool:
        """Graceful restart negotiated on the Established session (both sides)."""
        neg = self.fsm.negotiated
        return (
            self.settings.graceful_restart is not None
            and neg is not None
            and neg.graceful_restart is not None
        )

    def _attach(self, conn: _Conn, sock: socket.socket) -> None:
        """Wrap a connected socket in a transport; ``_made`` runs once it exists."""
        sock.setblocking(False)
        t = self.transport
        with contextlib.suppress(OSError):
            tcp.set_ttl(sock, t.ttl, t.min_ttl)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self.loop.create_task(self.loop.connect_accepted_socket(lambda: conn, sock))
        task.add_done_callback(lambda t: self._attach_done(conn, sock, t))

    def _attach_done(self, conn: _Conn, sock: socket.socket, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            sock.close()
            conn.closed = True
            self._lost(conn, None if task.cancelled() else task.exception())

    def _made(self, conn: _Conn) -> None:
        if self.closed or (conn is not self.conn and conn is not self.other):
            conn.close()
            return
        events = conn.fsm.connection_made(
            self.clock(), outbound=conn.outbound, loopback=conn.loopback()
        )
        self._run(conn.fsm, events, conn)

    # --- outbound connections -----------------------------------------------------------

    def _connect(self) -> None:
        if self._connect_task is not None and not self._connect_task.done():
            return
        self._connect_task = self.loop.create_task(self._do_connect())

    def _cancel_connect(self) -> None:
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        self._connect_task = None

    async def _do_connect(self) -> None:
        t = self.transport
        fam = tcp.family_of(t.remote_address)
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if t.password:
                tcp.set_md5(sock, t.remote_address, t.password)
            tcp.set_ttl(sock, t.ttl, t.min_ttl)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if t.local_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((t.local_address, 0))
            await asyncio.wait_for(
                self.loop.sock_connect(sock, (t.remote_address, t.remote_port)), t.connect_timeout
            )
        except asyncio.CancelledError:
            sock.close()
            raise
        except (TimeoutError, OSError) as e:
            sock.close()
            reason = _connect_error(e, t)
            self.log.info("connect failed", reason=reason)
            self.last_error = reason
            if self.fsm.state in (State.CONNECT, State.ACTIVE):
                self._run(self.fsm, self.fsm.connection_failed(self.clock()))
            return
        state = self.fsm.state
        if self.closed or not self.enabled:
            sock.close()
            return
        if self.conn is None and state == State.IDLE and self._peer_dumped:
            # The peer resolved a collision against the connection we had, in favour of
            # this one, which it accepted before we saw it complete: use it now rather than
            # close it and wait out the idle hold (both sides would lose both connections).
            self._peer_dumped = False
            self._run(self.fsm, self.fsm.start(self.clock()))
            state = self.fsm.state
        if self.conn is None and state in (State.CONNECT, State.ACTIVE):
            conn = _Conn(self, self.fsm, outbound=True)
            self.conn = conn
        elif self.conn is not None and self.other is None and state != State.ESTABLISHED:
            # An inbound connection arrived while we were connecting: keep both until the
            # OPENs decide (RFC 4271 §6.8), also when the FSM has not yet been told of the
            # inbound one (still Connect/Active): closing ours then loses both whenever the
            # peer keeps ours and dumps its own.
            fsm = Protocol(self.settings)
            conn = _Conn(self, fsm, outbound=True)
            self.other = conn
            self._run(fsm, fsm.start(self.clock()), conn)
        else:
            sock.close()
            return
        self._attach(conn, sock)

    # --- callbacks from connections -------------------------------------------------------------

    def _feed(self, conn: _Conn, data: bytes) -> None:
        if conn.fsm is None:
            return
        if self.tap is not None:
            self.tap.received(self, conn, data)
        self._run(conn.fsm, conn.fsm.receive_data(data, self.clock()), conn)

    def _lost(self, conn: _Conn, exc) -> None:
        fsm = conn.fsm
        if conn is self.other:
            self.other = None
        elif conn is self.conn:
            self.conn = None
        else:
            return
        if fsm.state != State.IDLE:
            if exc is not None:
                self.last_error = f"connection lost: {exc}"
            self._run(fsm, fsm.connection_failed(self.clock()))

    def _resumed(self, conn: _Conn) -> None:
        if conn is self.conn and self.established:
            self.handler.session_writable(self)

    # --- acting on FSM events ----------------------------------------------------------------

    def _run(self, fsm: Protocol, events, conn: _Conn | None = None) -> None:
        if not events and not fsm.has_data_to_send and self.other is None:
            self._arm()  # nothing happened (a KEEPALIVE in): no event, no output
            return
        if conn is None:
            conn = self.conn if fsm is self.fsm else self.other
        # Output is written after the events are handled (CloseRequested flushes before it
        # closes), so that a collision decided on OpenReceived can still drop the KEEPALIVE
        # the FSM queued when the same read also took it to OpenConfirm.
        updates = None
        for e in events:
            if conn is not None and conn.dumped:
                # This connection lost a collision while its events were being handled
                # (e.g. the peer's OPEN and KEEPALIVE came in one read): the rest of them,
                # Established and UPDATEs included, belong to a connection that is gone.
                updates = None
                break
            if isinstance(e, ev.UpdateReceived):
                if updates is None:
                    updates = []
                updates.append(e.update)
                continue
            if updates:
                self.handler.updates_received(self, updates)
                updates = None
            self._event(fsm, conn, e)
        if updates:
            self.handler.updates_received(self, updates)
        self._flush(fsm, conn)
        self._arm()

    def _flush(self, fsm: Protocol, conn: _Conn | None) -> None:
        data = fsm.data_to_send()
        if data and conn is not None and conn.transport is not None and not conn.closed:
            conn.transport.write(data)
            if self.tap is not None:
                self.tap.sent(self, conn, data)

    def _event(self, fsm: Protocol, conn: _Conn | None, e) -> None:
        if isinstance(e, ev.ConnectRequested):
            if fsm is self.fsm and self.enabled and not self.closed:
                self._connect()
        elif isinstance(e, ev.CloseRequested):
            if conn is not None:
                conn.fsm = fsm
                self._flush(fsm, conn)
                conn.close()
                if conn is self.conn:
                    self.conn = None
                elif conn is self.other:
                    self.other = None
        elif isinstance(e, ev.OpenReceived):
            if conn is not None:
                conn.peer_open = e.open
            self._check_collision()
        elif isinstance(e, ev.StateChanged):
            if self.tap is not None:
                self.tap.state(self, conn, e.old, e.new)
            if fsm is self.fsm:
                self.log.info("state", old=e.old.name, new=e.new.name)
            else:  # the second connection of a collision
                self.log.info("state", old=e.old.name, new=e.new.name, connection="second")
        elif isinstance(e, ev.SessionEstablished):
            if fsm is not self.fsm:
                self._promote_other()
            if conn is not None:
                conn.reported_up = True
            self.log.info("established")
            self.handler.session_established(self)
        elif isinstance(e, ev.SessionDown):
            if fsm is self.fsm:
                got = e.notification_received
                self._peer_dumped = (
                    got is not None and got.code == ERR_CEASE and got.subcode == CEASE_COLLISION
                )
                self.last_error = e.reason
                fields = {}
                sent = e.notification_sent
                if sent is not None:
                    fields["notification_sent"] = f"{sent.code}/{sent.subcode} {sent.reason}"
                self.log.warning("session down", reason=e.reason, **fields)
                self.handler.session_down(self, e)
        elif isinstance(e, ev.NotificationReceived):
            n = e.notification
            fields = {}
            sc = n.shutdown_communication
            if sc is not None and sc.invalid is None:
                fields["message"] = sc.text
            elif sc is not None:  # RFC 9003 §4: say it is invalid, keep the octets (hex)
                fields["invalid_message"] = sc.invalid
                fields["message_hex"] = sc.raw.hex()
            self.log.warning(
                "notification received", code=n.code, subcode=n.subcode, reason=n.reason, **fields
            )
        elif isinstance(e, ev.UpdateError):
            err = e.error
            self.log.warning(
                "malformed update",
                action=err.action.label,
                code=err.code,
                subcode=err.subcode,
                reason=err.reason,
            )
        elif isinstance(e, ev.RouteRefreshReceived):
            self.handler.route_refresh_received(self, e.route_refresh)

    def _check_collision(self) -> None:
        """RFC 4271 §6.8: with two connections, keep the one the higher BGP identifier opened."""
        main, other = self.conn, self.other
        if other is None or main is None:
            return
        peer_open = main.peer_open or other.peer_open
        if peer_open is None:
            return
        # Decide as soon as the peer's identifier is known on either connection. An eBGP peer
        # may share our identifier: the AS numbers decide then (RFC 6286 §2.3); iBGP peers
        # with our identifier were refused when their OPEN arrived.
        keep = resolve_collision(
            self.settings.router_id, peer_open.router_id, self.settings.local_as, peer_open.asn
        )
        inbound = other if not other.outbound else main
        outbound = main if inbound is other else other
        loser = outbound if keep == "keep_inbound" else inbound
        self.log.info("connection collision", keep=keep)
        now = self.clock()
        # Whatever the loser queued and has not sent yet (the KEEPALIVE of OpenConfirm when
        # the OPEN that decided arrived on it) must not go out: the peer would take its side
        # of this connection to Established and then refuse the one we keep.
        loser.fsm.data_to_send()
        if loser is main and main.reported_up:
            # The session on it was reported up: report it going down too.
            self._run(main.fsm, main.fsm.collision_dump(now), main)
            self._promote_other()
        elif loser is main:
            # Promote the winner first, so that the loser's SessionDown is not taken for the
            # session going down (it never came up) and its CloseRequested closes only it.
            self.fsm, self.conn, self.other = other.fsm, other, None
            self._run(main.fsm, main.fsm.collision_dump(now), main)
        else:
            self.other = None
            self._run(other.fsm, other.fsm.collision_dump(now), other)
        loser.dumped = True
        loser.close()  # already closed, unless its FSM was still in Connect/Active

    def _promote_other(self) -> None:
        other = self.other
        if other is None:
            return
        if self.conn is not None:
            self.conn.close()
        self.fsm = other.fsm
        self.conn = other
        self.other = None

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._slot is not None:
            self._wheel.cancel(self, self._slot)
            self._slot = None

    def _wheel_fired(self) -> None:
        self._slot = None
        self._on_timer()

    def _arm(self) -> None:
        """Keep the single timer handle at the earliest FSM deadline.

        A handle armed no later than that deadline is kept: an UPDATE sent moves the
        keepalive deadline later on every write, and re-creating the handle each time cost
        more than the early wake-up, after which :meth:`_on_timer` finds nothing due and
        arms again."""
        when = self.fsm.next_deadline()
        if self.other is not None:
            d = self.other.fsm.next_deadline()
            if d is not None and (when is None or d < when):
                when = d
        if when is None or self.closed:
            self._disarm()
            return
        wheel = self._wheel
        if wheel is not None:
            slot = int(when * RATE) + 1  # TimerWheel.slot_of, inlined
            if self._slot is not None:
                if self._slot <= slot:
                    return  # served no later than needed; _on_timer arms again
                wheel.cancel(self, self._slot)
            self._slot = wheel.schedule(self, slot)
            return
        timer = self._timer
        if timer is not None:
            if self._timer_when <= when:
                return  # fires early at worst; _on_timer re-arms
            timer.cancel()
        self._timer_when = when
        delay = when - self.clock()
        self._timer = self.loop.call_at(
            self.loop.time() + (delay if delay > 0 else 0.0), self._on_timer
        )

    def _on_timer(self) -> None:
        self._timer = None
        now = self.clock()
        for conn, fsm in (
            (self.other, self.other.fsm if self.other else None),
            (self.conn, self.fsm),
        ):
            if fsm is None:
                continue
            d = fsm.next_deadline()
            if d is not None and d <= now:
                # unread input only matters to a hold timer expiry (an ioctl per keepalive
                # otherwise)
                hold = fsm.deadline("hold")
                unread = (
                    conn is not None
                    and hold is not None
                    and hold <= now
                    and tcp.unread_bytes(conn.sock) > 0
                )
                self._run(fsm, fsm.handle_timer(now, unread_input=unread), conn)
        self._arm()


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _connect_error(e: BaseException, t: Transport) -> str:
    if isinstance(e, TimeoutError):
        reason = f"connect to {t.remote_address}:{t.remote_port} timed out"
        if t.password:
            reason += (
                " (TCP MD5 is configured: a wrong or missing password on either side makes the"
                " peer drop every segment silently)"
            )
        elif t.min_ttl is not None:
            reason += (
                f" (GTSM is configured: segments that arrive with a TTL below {t.min_ttl} are"
                " dropped; the peer must enable TTL security too)"
            )
        return reason
    if isinstance(e, ConnectionRefusedError):
        return f"connection refused by {t.remote_address}:{t.remote_port}"
    return f"connect to {t.remote_address}:{t.remote_port} failed: {e}"
