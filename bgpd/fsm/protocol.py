"""The per-peer protocol object: RFC 4271 §8 as a sans-I/O state machine.

One :class:`Protocol` drives one transport at a time through Idle, Connect/Active, OpenSent,
OpenConfirm and Established, and restarts itself after errors. Every input method takes ``now``
(monotonic seconds) and returns a list of :mod:`~bgpd.fsm.events`; bytes to write are drained
with :meth:`Protocol.data_to_send`, and :meth:`Protocol.next_deadline` says when to call
:meth:`Protocol.handle_timer`. Nothing here touches a socket, the event loop or the clock.

The machine is the table :data:`TRANSITIONS`, ``(State, input class) -> handler``. A handler
performs the actions of its transition and returns the next state (None: stay). Entry actions
(timers, the OPEN and first KEEPALIVE, idle-hold back-off, SessionDown) live in one place,
:meth:`Protocol._enter`, in the manner of OpenBGPD's ``change_state``. An input missing from the
table is ignored in Idle, Connect and Active, and is an FSM error (RFC 6608 5/1, 5/2, 5/3, the
unexpected message type as data) in OpenSent, OpenConfirm and Established.

Choices where RFC 4271 leaves room or where bgpd deviates, each as BIRD or OpenBGPD do:

* TcpConnectionFails in Connect/Active (refused, timed out, closed during DelayOpen) goes to
  Active and retries when the ConnectRetryTimer fires, instead of Idle.
* Every loss of a session that got past the TCP handshake (errors, hold timer expiry, the peer
  closing the connection or sending a NOTIFICATION) goes to Idle; with automatic restart on,
  the IdleHoldTimer then starts the FSM again. Its delay doubles per consecutive error from
  ``idle_hold[0]`` up to ``idle_hold[1]`` and falls back after ``error_forget`` seconds without
  errors. A Cease or a version-error NOTIFICATION from the peer waits the current idle hold
  without doubling it (``wait_after_peer_stop`` False: after a Cease from the peer or its
  closed connection, no wait at all, as BIRD); ManualStop and collision dumps disable
  automatic restart.
* A NOTIFICATION is sent in Connect/Active too when a connection exists (RFC 4271's optional
  SendNOTIFICATIONwithoutOPEN): for OPEN errors under DelayOpen and unexpected messages (5/0).
* Received ROUTE-REFRESH also restarts the hold timer (any message proves the peer alive).
* A malformed NOTIFICATION closes the connection without a NOTIFICATION (RFC 4271 §6.4).
* A header error in Established sends the header error (1/x, RFC 4271 §6.1), not the FSM
  error the §8.2.2 Established text lists for Events 21-22, as every implementation does.
* An OPEN is decoded only in Connect/Active (DelayOpen) and OpenSent, an UPDATE or
  ROUTE-REFRESH only in Established: elsewhere they are FSM errors whatever their content.
* A ``collision_dump`` is also honoured in Established (RFC 4271 Event 23): when the peer's
  OPEN and KEEPALIVE arrive in one read, the binding sees OpenReceived only after the session
  already reached Established.
* No keepalive jitter: deterministic timers; the binding may add jitter by calling late.

The binding owns one transport per Protocol: a second ``connection_made`` while one is up
raises LocalProtocolError (report ``connection_failed`` for the old one first, or run a
second Protocol for a colliding connection).
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from ..wire import (
    BGPError,
    Framer,
    Keepalive,
    LocalProtocolError,
    Notification,
    RouteRefresh,
    decode_message,
)
from ..wire.constants import (
    CEASE_COLLISION,
    ERR_CEASE,
    ERR_FSM,
    ERR_HEADER,
    ERR_HOLD_TIMER,
    ERR_OPEN,
    FSM_ESTABLISHED,
    FSM_OPENCONFIRM,
    FSM_OPENSENT,
    FSM_UNSPECIFIED,
    KEEPALIVE,
    MAX_EXTENDED_MESSAGE,
    MAX_MESSAGE,
    MESSAGE_NAMES,
    NOTIFICATION,
    OPEN,
    OPEN_UNSUPPORTED_VERSION,
    ROUTE_REFRESH,
    RR_EORR,
    UPDATE,
)
from ..wire.errors import Action
from . import events as ev
from . import inputs as inp
from .negotiate import Negotiated, build_open, negotiate
from .settings import SessionSettings
from .state import State

# RFC 4271 §8.2.2: "a large value" for the hold timer in OpenSent; 4 minutes is suggested.
OPENSENT_HOLD_TIME = 240.0
# BIRD's bgp_hold_timeout grace: with unread input pending, extend instead of resetting.
HOLD_GRACE = 10.0
HOLD_GRACE_MAX = 6

IDLE, CONNECT, ACTIVE = State.IDLE, State.CONNECT, State.ACTIVE
OPENSENT, OPENCONFIRM, ESTABLISHED = State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED

# Timer kinds, in the order they are handled when due at the same instant.
TIMER_INPUTS: dict[str, Callable[[bool], inp.Input]] = {
    "idle_hold": lambda unread: inp.IdleHoldTimerExpires(),
    "connect_retry": lambda unread: inp.ConnectRetryTimerExpires(),
    "delay_open": lambda unread: inp.DelayOpenTimerExpires(),
    "hold": lambda unread: inp.HoldTimerExpires(unread),
    "keepalive": lambda unread: inp.KeepaliveTimerExpires(),
}
_TIMER_ORDER = {kind: i for i, kind in enumerate(TIMER_INPUTS)}

# How the idle hold before an automatic restart is chosen when a session goes down.
BACKOFF = "backoff"  # an error: wait the current idle hold, double it for the next time
KEEP = "keep"  # wait the current idle hold without doubling it (Cease from the peer)
NO_RESTART = "no_restart"  # ManualStop, collision dump: stay in Idle

# Messages decoded in each state; elsewhere they arrive undecoded, as FSM errors.
_DECODED_IN = {
    OPEN: frozenset((CONNECT, ACTIVE, OPENSENT)),
    UPDATE: frozenset((ESTABLISHED,)),
    ROUTE_REFRESH: frozenset((ESTABLISHED,)),
}
_ERROR_INPUT = {
    OPEN: inp.BGPOpenMsgErr,
    UPDATE: inp.UpdateMsgErr,
    ROUTE_REFRESH: inp.RouteRefreshMsgErr,
    NOTIFICATION: inp.NotifMsgErr,
}


_TYPE_OCTET = operator.itemgetter(18)  # the type octet of an encoded message
# Protocol.send_updates: the last tuple of messages checked, with (max size, joined bytes,
# UPDATEs, ROUTE-REFRESHes in it)
_last_batch: list = [None, 0, b"", 0, 0]


def _check_batch(messages, max_size: int) -> tuple[bytes, int, int]:
    """The bytes of ``messages`` joined and how many UPDATEs and ROUTE-REFRESHes they are;
    LocalProtocolError for anything else, or a message that does not fit."""
    if len(messages) == 1:
        m = messages[0]
        if len(m) < 23 or len(m) > max_size:
            raise LocalProtocolError(f"not one message that fits ({len(m)} octets)")
        types = m[18:19]
    else:
        sizes = list(map(len, messages))
        if min(sizes) < 23 or max(sizes) > max_size:
            raise LocalProtocolError("not messages that fit")
        types = bytes(map(_TYPE_OCTET, messages))
    updates = types.count(UPDATE)
    refreshes = 0
    if updates != len(types):
        refreshes = types.count(ROUTE_REFRESH)
        if updates + refreshes != len(types):
            raise LocalProtocolError("only UPDATE and ROUTE-REFRESH messages are sent here")
    return b"".join(messages), updates, refreshes


_KEEPALIVE_BYTES = Keepalive().encode()


def _new_counts() -> dict[str, int]:
    return dict.fromkeys(MESSAGE_NAMES.values(), 0)


@dataclass(slots=True)
class Stats:
    """Counters for ``show neighbor`` and metrics. Times are the ``now`` values passed in."""

    messages_in: dict[str, int] = field(default_factory=_new_counts)
    messages_out: dict[str, int] = field(default_factory=_new_counts)
    updates_in: int = 0
    updates_out: int = 0
    established_at: float | None = None
    flaps: int = 0  # times the session left Established
    last_error: str | None = None
    last_state_change: float | None = None
    connect_attempts: int = 0  # ConnectRequested emitted
    hold_extensions: int = 0  # hold timer expiries forgiven because input was pending


@dataclass(slots=True)
class _Down:
    """Why the FSM is about to enter Idle; consumed by the Idle entry action."""

    reason: str
    sent: Notification | None = None
    received: Notification | None = None
    error: BGPError | None = None
    backoff: str = BACKOFF
    is_error: bool = True
    peer_stop: bool = False  # the peer ended it without an error: a Cease, a closed connection


class Protocol:
    """The RFC 4271 state machine of one BGP peer, without I/O.

    ``state``, ``negotiated`` (None until an OPEN is accepted; kept after the session goes down
    until the next connection, for graceful restart), ``stats`` and ``last_error`` are public.
    Misuse by the caller (a second connection while one is up, sending an UPDATE outside
    Established) raises :class:`~bgpd.wire.LocalProtocolError`; input from the peer never
    raises.
    """

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.state: State = IDLE
        self.negotiated: Negotiated | None = None
        self.stats = Stats()
        self.local_open = build_open(settings)
        self._local_open_bytes = self.local_open.encode()
        self._framer = Framer()
        self._out = bytearray()
        self._timers: dict[str, float] = {}
        self._events: list[ev.Event] = []
        self._now = 0.0
        self._connected = False  # a transport is up
        self._connecting = False  # ConnectRequested emitted, no outcome reported yet
        self._auto_restart = False
        self._loopback = False  # the current connection is between two loopback addresses
        self._delay_connect = False  # the next Active waits connect_delay, not connect_retry
        self._idle_hold = float(settings.idle_hold[0])
        self._last_error_at: float | None = None
        self._hold_grace_used = 0
        self._down: _Down | None = None

    # --- public surface ---------------------------------------------------------------------

    def update_settings(self, settings: SessionSettings) -> None:
        """New settings for the next connection (e.g. the graceful-restart R bit cleared once
        a restart is over); a session that is up keeps what it negotiated."""
        self.settings = settings
        self.local_open = build_open(settings)
        self._local_open_bytes = self.local_open.encode()

    @property
    def last_error(self) -> str | None:
        """Why the session last went down abnormally, readable."""
        return self.stats.last_error

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def timers(self) -> dict[str, float]:
        """Running timers: kind -> deadline."""
        return dict(self._timers)

    @property
    def idle_hold(self) -> float:
        """The wait before the next automatic restart after an error."""
        return self._idle_hold

    def start(self, now: float) -> list[ev.Event]:
        """ManualStart (Event 1), or ManualStart_with_PassiveTcpEstablishment (Event 4) when
        the settings say passive. Also enables automatic restart after errors."""
        return self.dispatch(inp.ManualStart(), now)

    def stop(self, now: float, subcode: int = 2, message: str = "") -> list[ev.Event]:
        """ManualStop (Event 2): Cease ``subcode`` (RFC 4486) with an RFC 9003 ``message`` if
        connected, then Idle without automatic restart."""
        return self.dispatch(inp.ManualStop(subcode, message), now)

    def connection_made(self, now: float, outbound: bool, loopback: bool = False) -> list[ev.Event]:
        """Tcp_CR_Acked (Event 16, ``outbound``) or TcpConnectionConfirmed (Event 17).
        ``loopback``: both ends of the connection are loopback addresses (the peer runs on this
        host), which makes its loopback next hops usable (``SessionSettings.loopback_next_hop``
        "auto")."""
        if not self._connected:
            self._loopback = loopback
        return self.dispatch(inp.TcpCRAcked() if outbound else inp.TcpConnectionConfirmed(), now)

    def connection_failed(self, now: float) -> list[ev.Event]:
        """TcpConnectionFails (Event 18): refused, timed out, or closed by the peer."""
        self._connected = self._connecting = False
        return self.dispatch(inp.TcpConnectionFails(), now)

    def collision_dump(self, now: float) -> list[ev.Event]:
        """OpenCollisionDump (Event 23): Cease 7, Idle, no back-off and no automatic restart."""
        return self.dispatch(inp.OpenCollisionDump(), now)

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Bytes read from the transport: each complete message becomes an input."""
        self._now = now
        framer = self._framer
        if (
            data == _KEEPALIVE_BYTES
            and self.state is ESTABLISHED
            and not framer.buffer
            and framer.error is None
            and self._connected
        ):
            # A lone KEEPALIVE in Established (every read of an idle session): what framing
            # it and dispatching KeepAliveMsg would do, without the machinery.
            self.stats.messages_in["KEEPALIVE"] += 1
            self._down = None
            self._restart_hold()
            return self._take_events()
        while self._connected:
            max_size = framer.max_size
            for msg_type, body in framer.feed(data):
                self._receive_message(msg_type, body)
                if not self._connected:
                    break
            else:
                if framer.error is None:
                    break
                if framer.max_size != max_size:
                    # The peer's OPEN raised the limit (RFC 8654) after the rest of this read
                    # was framed with the old one: frame what is left again.
                    framer.error = None
                    data = b""
                    continue
                self._dispatch(inp.BGPHeaderErr(framer.error))
            break
        return self._take_events()

    @property
    def has_data_to_send(self) -> bool:
        """Something is queued for the transport (:meth:`data_to_send` would not be empty)."""
        return bool(self._out)

    @property
    def unframed(self) -> bytes:
        """Octets read but not yet a whole message (the start of the next one): what a
        monitor splitting reads into messages puts in front of the next read."""
        return bytes(self._framer.buffer)

    def data_to_send(self) -> bytes:
        """Everything queued for the transport since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def deadline(self, kind: str) -> float | None:
        """When the timer ``kind`` (as in :attr:`timers`) expires, or None if it is not running."""
        return self._timers.get(kind)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None if no timer runs."""
        timers = self._timers
        return min(timers.values()) if timers else None

    def handle_timer(self, now: float, unread_input: bool = False) -> list[ev.Event]:
        """Fire every timer due at ``now``, earliest first. ``unread_input``: the binding has
        bytes it has not fed yet; a hold timer expiry is then deferred (bounded)."""
        self._now = now
        timers = self._timers
        if self.state is ESTABLISHED:
            # The common case (an idle session): only the keepalive timer is due. What the
            # table's (Established, KeepaliveTimerExpires) handler does, without the search.
            ka = timers.get("keepalive")
            hold = timers.get("hold")
            if (
                ka is not None
                and ka <= now
                and (hold is None or hold > now)
                and len(timers) == (1 if hold is None else 2)
            ):
                del timers["keepalive"]
                self._down = None
                _keepalive_timer(self, None)
                return self._take_events()
        for _ in range(4 * len(TIMER_INPUTS)):
            due = [(d, _TIMER_ORDER[k], k) for k, d in timers.items() if d <= now]
            if not due:
                break
            kind = min(due)[2]
            del timers[kind]
            self._dispatch(TIMER_INPUTS[kind](unread_input))
        return self._take_events()

    def send_update(self, raw_bytes: bytes, now: float | None = None) -> list[ev.Event]:
        """Queue one encoded UPDATE message. Only in Established. Restarts the keepalive
        timer: a KEEPALIVE need not follow an UPDATE (RFC 4271 §4.4)."""
        if now is not None:
            self._now = now
        if self.state is not ESTABLISHED:
            raise LocalProtocolError(f"send_update in {self.state}")
        raw = bytes(raw_bytes)
        assert self.negotiated is not None
        if len(raw) < 23 or raw[18] != UPDATE or len(raw) > self.negotiated.context.max_size:
            raise LocalProtocolError(f"not one UPDATE message that fits ({len(raw)} octets)")
        self._out += raw
        self.stats.messages_out["UPDATE"] += 1
        self.stats.updates_out += 1
        if "keepalive" in self._timers:
            self._timers["keepalive"] = self._now + self.negotiated.keepalive
        return self._take_events()

    def send_updates(self, messages, now: float | None = None) -> bytes:
        """A batch of encoded messages to send at once: UPDATEs, checked and counted as
        :meth:`send_update` does (the keepalive timer moves once), and the ROUTE-REFRESH
        markers of an enhanced route refresh (BoRR/EoRR, RFC 7313) that the route engine
        sends between them. Returns the bytes to write, anything already queued first (as
        h11's ``send``): nothing else changes, no event, no earlier deadline.

        The route engine gives every member of an export group the same tuple of messages:
        the last tuple's checks and joined bytes are kept, so they are done once a batch,
        not once per member."""
        if now is not None:
            self._now = now
        if self.state is not ESTABLISHED:
            raise LocalProtocolError(f"send_updates in {self.state}")
        if not messages:
            return self.data_to_send()
        neg = self.negotiated
        assert neg is not None
        max_size = MAX_EXTENDED_MESSAGE if neg.context.extended_message else MAX_MESSAGE
        last = _last_batch
        if last[0] is messages and last[1] == max_size:
            data, updates, refreshes = last[2], last[3], last[4]
        else:
            data, updates, refreshes = _check_batch(messages, max_size)
            if type(messages) is tuple:  # immutable: safe to remember by identity
                last[:] = (messages, max_size, data, updates, refreshes)
        if refreshes:
            if not neg.route_refresh:
                raise LocalProtocolError("route refresh was not negotiated")
            self.stats.messages_out[MESSAGE_NAMES[ROUTE_REFRESH]] += refreshes
        if updates:
            self.stats.messages_out["UPDATE"] += updates
            self.stats.updates_out += updates
            if "keepalive" in self._timers:
                self._timers["keepalive"] = self._now + neg.keepalive
        if self._out:
            data = self.data_to_send() + data
        return data

    def send_route_refresh(
        self, afi: int, safi: int, subtype: int = 0, now: float | None = None
    ) -> list[ev.Event]:
        """Queue a ROUTE-REFRESH (RFC 2918; BoRR 1 / EoRR 2 need RFC 7313). Only in
        Established, for a negotiated family, when the peer advertised the capability."""
        if now is not None:
            self._now = now
        neg = self.negotiated
        if self.state is not ESTABLISHED or neg is None:
            raise LocalProtocolError(f"send_route_refresh in {self.state}")
        if not neg.route_refresh:
            raise LocalProtocolError("route refresh was not negotiated")
        if subtype and not (neg.enhanced_route_refresh and subtype <= RR_EORR):
            raise LocalProtocolError(f"route refresh subtype {subtype} not negotiated")
        if (afi, safi) not in neg.families:
            raise LocalProtocolError(f"family {(afi, safi)} not negotiated")
        self._send(RouteRefresh(afi, safi, subtype))
        return self._take_events()

    def dispatch(self, event: inp.Input, now: float) -> list[ev.Event]:
        """Feed one :mod:`~bgpd.fsm.inputs` input through the table (the public methods all
        end here; tests use it to drive every (state, input) pair)."""
        self._now = now
        self._dispatch(event)
        return self._take_events()

    # --- the machine ------------------------------------------------------------------------

    def _dispatch(self, event: inp.Input) -> None:
        self._down = None
        state = self.state
        handler = TRANSITIONS.get((state, type(event)))
        if handler is None:
            handler = _DEFAULT[state]
        new = handler(self, event)
        if new is not None and new is not self.state:
            self._set_state(new)

    def _set_state(self, new: State) -> None:
        old = self.state
        self.state = new
        self.stats.last_state_change = self._now
        self._emit(ev.StateChanged(old, new))
        self._enter(new, old)

    def _enter(self, new: State, old: State) -> None:
        """Entry actions: the one place that sets timers on a state change."""
        timers = self._timers
        now = self._now
        if new is IDLE:
            timers.clear()
            down = self._down or _Down("stopped", is_error=False)
            self._down = None
            if self._connected or self._connecting:
                self._emit(ev.CloseRequested())
            self._connected = self._connecting = False
            if old is ESTABLISHED:
                self.stats.flaps += 1
            if down.is_error:
                self.stats.last_error = down.reason
            if down.backoff == NO_RESTART:
                self._auto_restart = False
            elif self._auto_restart:
                if down.peer_stop and not self.settings.wait_after_peer_stop:
                    self._reset_backoff()
                    timers["idle_hold"] = now  # start again at once (BIRD)
                else:
                    timers["idle_hold"] = now + self._next_idle_hold(down.backoff)
            self._emit(
                ev.SessionDown(
                    down.reason,
                    down.sent,
                    down.received,
                    down.error,
                    was_established=old is ESTABLISHED,
                )
            )
        elif new is CONNECT:
            for kind in ("delay_open", "hold", "keepalive", "idle_hold"):
                timers.pop(kind, None)
            timers["connect_retry"] = now + self.settings.connect_retry
            self._request_connection()
        elif new is ACTIVE:
            for kind in ("delay_open", "hold", "keepalive", "idle_hold"):
                timers.pop(kind, None)
            if self.settings.passive:
                timers.pop("connect_retry", None)
            elif self._delay_connect:
                # a start with connect_delay: the first attempt waits that long (BIRD's
                # connect delay time); the peer's connection is accepted meanwhile
                self._delay_connect = False
                timers["connect_retry"] = now + self.settings.connect_delay
            else:
                timers["connect_retry"] = now + self.settings.connect_retry
        elif new is OPENSENT:
            for kind in ("connect_retry", "delay_open", "keepalive"):
                timers.pop(kind, None)
            self._send_open()
            self._arm_hold(OPENSENT_HOLD_TIME)
        elif new is OPENCONFIRM:
            timers.pop("connect_retry", None)
            timers.pop("delay_open", None)
            neg = self.negotiated
            assert neg is not None
            self._send(Keepalive())
            if neg.hold_time:
                self._arm_hold(neg.hold_time)
                timers["keepalive"] = now + neg.keepalive
            else:
                timers.pop("hold", None)
                timers.pop("keepalive", None)
        elif new is ESTABLISHED:
            neg = self.negotiated
            assert neg is not None
            if neg.hold_time:
                self._arm_hold(neg.hold_time)
            self.stats.established_at = now
            self._emit(ev.SessionEstablished(neg))

    # --- helpers used by handlers -----------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _take_events(self) -> list[ev.Event]:
        events = self._events
        self._events = []
        return events

    def _send(self, msg) -> None:
        self._out += msg.encode()
        self.stats.messages_out[MESSAGE_NAMES[msg.type]] += 1

    def _send_open(self) -> None:
        self._out += self._local_open_bytes
        self.stats.messages_out["OPEN"] += 1

    def _request_connection(self) -> None:
        self._connecting = True
        self.stats.connect_attempts += 1
        self._emit(ev.ConnectRequested())

    def _arm_hold(self, seconds: float) -> None:
        self._timers["hold"] = self._now + seconds
        self._hold_grace_used = 0

    def _restart_hold(self) -> None:
        """A KEEPALIVE, UPDATE or ROUTE-REFRESH arrived: the peer is alive."""
        neg = self.negotiated
        if neg is not None and neg.hold_time and "hold" in self._timers:
            self._arm_hold(neg.hold_time)

    def _next_idle_hold(self, backoff: str) -> float:
        """The idle hold for this restart; with BACKOFF, doubled for the next one."""
        initial, maximum = self.settings.idle_hold
        now = self._now
        last = self._last_error_at
        if last is not None and now - last >= self.settings.error_forget:
            self._idle_hold = float(initial)
        delay = self._idle_hold
        if backoff == BACKOFF:
            self._last_error_at = now
            self._idle_hold = float(min(max(delay * 2, initial), maximum))
        return delay

    def _reset_backoff(self) -> None:
        self._idle_hold = float(self.settings.idle_hold[0])
        self._last_error_at = None

    def _go_down(
        self,
        reason: str,
        *,
        sent: Notification | None = None,
        received: Notification | None = None,
        error: BGPError | None = None,
        backoff: str = BACKOFF,
        is_error: bool = True,
        peer_stop: bool = False,
    ) -> State:
        """Record why the session ends; the Idle entry action reports it."""
        self._down = _Down(reason, sent, received, error, backoff, is_error, peer_stop)
        return IDLE

    def _fail(self, error: BGPError) -> State:
        """A local error: send its NOTIFICATION, then Idle with back-off."""
        n = Notification.from_error(error)
        self._send(n)
        return self._go_down(error.reason, sent=n, error=error)

    def _accept_connection(self) -> None:
        self._connected = True
        self._connecting = False
        self._framer = Framer()
        self._out.clear()  # leftovers belong to a previous connection
        self.negotiated = None

    def _accept_open(self, event: inp.BGPOpen) -> None:
        """Negotiate with the peer's OPEN; raises the BGPError to send if it is refused."""
        assert event.open is not None
        self.negotiated = neg = negotiate(
            self.settings, self.local_open, event.open, loopback=self._loopback
        )
        self._framer.max_size = neg.context.max_size
        self._emit(ev.OpenReceived(event.open))

    def _receive_message(self, msg_type: int, body: bytes) -> None:
        """Decode one framed message into its FSM input and dispatch it."""
        self.stats.messages_in[MESSAGE_NAMES[msg_type]] += 1
        event: inp.Input
        if msg_type == KEEPALIVE:
            event = inp.KeepAliveMsg()
        elif msg_type in _DECODED_IN and self.state not in _DECODED_IN[msg_type]:
            event = {
                OPEN: inp.BGPOpen,
                UPDATE: inp.UpdateMsg,
                ROUTE_REFRESH: inp.RouteRefreshMsg,
            }[msg_type]()
        else:
            ctx = self.negotiated.context if self.negotiated is not None else None
            try:
                if ctx is None:
                    msg = decode_message(msg_type, body)
                else:
                    msg = decode_message(msg_type, body, ctx)
            except BGPError as e:
                if msg_type == NOTIFICATION:
                    event = inp.NotifMsgErr(e)
                elif e.code == ERR_HEADER:
                    event = inp.BGPHeaderErr(e)
                else:
                    # An UPDATE error raised rather than returned leaves no NLRI to withdraw:
                    # whatever its RFC 7606 action, the session is reset.
                    event = _ERROR_INPUT[msg_type](e)
            else:
                if msg_type == OPEN:
                    event = inp.BGPOpen(msg)
                elif msg_type == UPDATE:
                    err = msg.error
                    if err is not None and err.action >= Action.AFI_SAFI_DISABLE:
                        event = inp.UpdateMsgErr(err)
                    else:
                        event = inp.UpdateMsg(msg)
                elif msg_type == NOTIFICATION:
                    if msg.code == ERR_OPEN and msg.subcode == OPEN_UNSUPPORTED_VERSION:
                        event = inp.NotifMsgVerErr(msg)
                    else:
                        event = inp.NotifMsg(msg)
                else:
                    event = inp.RouteRefreshMsg(msg)
        self._dispatch(event)


# --- handlers: (protocol, input) -> next state or None ----------------------------------------


def _ignore(p: Protocol, e: inp.Input) -> None:
    return None


def _fsm_error(subcode: int) -> Callable[[Protocol, inp.Input], State]:
    def handler(p: Protocol, e: inp.Input) -> State:
        data = bytes((e.msg_type,)) if e.msg_type is not None else b""
        what = MESSAGE_NAMES.get(e.msg_type or 0) or type(e).__name__
        error = BGPError(
            ERR_FSM, subcode, data, Action.RESET, f"unexpected {what} in {p.state.value}"
        )
        if p._connected:
            return p._fail(error)
        return p._go_down(error.reason, error=error)

    handler.__name__ = f"_fsm_error_{subcode}"
    return handler


_unexpected_in_opensent = _fsm_error(FSM_OPENSENT)
_unexpected_in_openconfirm = _fsm_error(FSM_OPENCONFIRM)
_unexpected_in_established = _fsm_error(FSM_ESTABLISHED)
_unexpected_before_open = _fsm_error(FSM_UNSPECIFIED)


def _started(p: Protocol) -> State:
    """Connect (initiate TCP) or, passive, Active (listen). With ``connect_delay``, Active
    first: the ConnectRetryTimer then runs for ``connect_delay`` and its expiry connects."""
    if p.settings.passive:
        return ACTIVE
    if p.settings.connect_delay > 0:
        p._delay_connect = True
        return ACTIVE
    return CONNECT


def _start(p: Protocol, e: inp.Input) -> State:
    """Idle + ManualStart: Connect or Active (:func:`_started`). Enables automatic restart;
    an idle hold in progress is cut short."""
    p._auto_restart = True
    p._reset_backoff()
    return _started(p)


def _automatic_start(p: Protocol, e: inp.Input) -> State | None:
    """Idle + IdleHoldTimer_Expires: AutomaticStart (Event 3, or 5 when passive)."""
    if not p._auto_restart:
        return None
    return _started(p)


def _stop_in_idle(p: Protocol, e: inp.ManualStop) -> None:
    """Idle + ManualStop: no automatic restart."""
    p._auto_restart = False
    p._reset_backoff()
    p._timers.pop("idle_hold", None)
    return None


def _refuse(p: Protocol, e: inp.Input) -> None:
    """Idle refuses connections (RFC 4271 §8.2.2)."""
    p._emit(ev.CloseRequested())
    return None


def _second_connection(p: Protocol, e: inp.Input) -> None:
    raise LocalProtocolError(f"{type(e).__name__} in {p.state.value}: one transport per Protocol")


def _manual_stop(p: Protocol, e: inp.ManualStop) -> State:
    """ManualStop in any state but Idle: Cease if connected, Idle, no automatic restart."""
    p._auto_restart = False
    p._reset_backoff()
    sent = None
    reason = "administratively stopped"
    if p._connected:
        sent = Notification.cease(e.subcode, e.message)
        p._send(sent)
        reason = f"administratively stopped: {sent.reason}"
    if e.message:
        reason += f": {e.message!r}"
    return p._go_down(reason, sent=sent, backoff=NO_RESTART, is_error=False)


def _connect_retry_in_connect(p: Protocol, e: inp.Input) -> None:
    """Connect + ConnectRetryTimer_Expires: abandon the attempt, try again."""
    if p._connected:  # DelayOpen is running: the timer was stopped
        return None
    if p._connecting:
        p._emit(ev.CloseRequested())
    p._timers["connect_retry"] = p._now + p.settings.connect_retry
    p._request_connection()
    return None


def _connect_retry_in_active(p: Protocol, e: inp.Input) -> State | None:
    """Active + ConnectRetryTimer_Expires: initiate a connection (never when passive)."""
    if p.settings.passive or p._connected:
        return None
    return CONNECT


def _connection_up(p: Protocol, e: inp.Input) -> State | None:
    """Connect/Active + Tcp_CR_Acked/TcpConnectionConfirmed: send OPEN (OpenSent), or with
    DelayOpen wait for the peer's OPEN up to ``delay_open`` seconds."""
    if p._connected:
        raise LocalProtocolError("connection_made while a transport is up")
    p._accept_connection()
    p._timers.pop("connect_retry", None)
    if p.settings.delay_open > 0:
        p._timers["delay_open"] = p._now + p.settings.delay_open
        return None
    return OPENSENT


def _connection_fails_early(p: Protocol, e: inp.Input) -> State:
    """Connect/Active + TcpConnectionFails: Active, retry on the ConnectRetryTimer."""
    p._connected = p._connecting = False
    p._timers.pop("delay_open", None)
    if p.state is ACTIVE and not p.settings.passive:
        p._timers["connect_retry"] = p._now + p.settings.connect_retry
    return ACTIVE


def _delay_open_expires(p: Protocol, e: inp.Input) -> State | None:
    """Connect/Active + DelayOpenTimer_Expires: send our OPEN now."""
    return OPENSENT if p._connected else None


def _open_with_delay_open(p: Protocol, e: inp.BGPOpen) -> State | None:
    """Connect/Active + BGPOpen with DelayOpenTimer running (Event 20): check the OPEN, send
    ours and a KEEPALIVE, OpenConfirm."""
    if not p._connected or e.open is None:
        return None
    try:
        p._accept_open(e)
    except BGPError as err:
        return p._fail(err)
    p._send_open()
    return OPENCONFIRM


def _open_received(p: Protocol, e: inp.BGPOpen) -> State:
    """OpenSent + BGPOpen (Event 19): check and negotiate, KEEPALIVE, OpenConfirm."""
    if e.open is None:
        return _unexpected_in_opensent(p, e)
    try:
        p._accept_open(e)
    except BGPError as err:
        return p._fail(err)
    return OPENCONFIRM


def _protocol_error(p: Protocol, e: inp.Input) -> State:
    """A malformed message whose action is session reset: NOTIFICATION, Idle."""
    error: BGPError = e.error  # type: ignore[attr-defined]
    if not p._connected:
        return p._go_down(error.reason, error=error)
    return p._fail(error)


def _bad_notification(p: Protocol, e: inp.NotifMsgErr) -> State:
    """A malformed NOTIFICATION: close without answering (RFC 4271 §6.4)."""
    return p._go_down(f"malformed NOTIFICATION: {e.error.reason}", error=e.error)


def _notification(p: Protocol, e: inp.NotifMsg | inp.NotifMsgVerErr) -> State:
    """NotifMsg / NotifMsgVerErr: the peer ended the session."""
    n = e.notification
    p._emit(ev.NotificationReceived(n))
    reason = f"received NOTIFICATION {n.reason}"
    sc = n.shutdown_communication
    if sc is not None:
        reason += f": {sc.describe()}"
    elif n.data and n.code != ERR_CEASE:
        reason += f" (data {n.data.hex()})"
    # A Cease is deliberate (shutdown, reset, collision): wait without doubling.
    mild = n.code == ERR_CEASE or isinstance(e, inp.NotifMsgVerErr)
    return p._go_down(
        reason, received=n, backoff=KEEP if mild else BACKOFF, peer_stop=n.code == ERR_CEASE
    )


def _connection_lost(p: Protocol, e: inp.Input) -> State:
    """OpenSent/OpenConfirm/Established + TcpConnectionFails: Idle, with back-off."""
    p._connected = False
    return p._go_down(f"connection closed by peer in {p.state.value}", peer_stop=True)


def _hold_timer_expires(p: Protocol, e: inp.HoldTimerExpires) -> State | None:
    """HoldTimer_Expires: NOTIFICATION 4/0 and Idle, unless input is waiting to be read."""
    neg = p.negotiated
    if p.state is not OPENSENT and neg is not None and not neg.hold_time:
        return None  # hold time 0: no hold timer runs, nothing can expire
    if e.unread_input and p._hold_grace_used < HOLD_GRACE_MAX:
        p._hold_grace_used += 1
        p.stats.hold_extensions += 1
        p._timers["hold"] = p._now + HOLD_GRACE
        return None
    return p._fail(BGPError(ERR_HOLD_TIMER, 0, b"", Action.RESET))


def _keepalive_timer(p: Protocol, e: inp.Input) -> None:
    """KeepaliveTimer_Expires: send a KEEPALIVE, restart the timer."""
    neg = p.negotiated
    if neg is None or not neg.keepalive:
        return None
    p._out += _KEEPALIVE_BYTES
    p.stats.messages_out["KEEPALIVE"] += 1
    p._timers["keepalive"] = p._now + neg.keepalive
    return None


def _keepalive_in_openconfirm(p: Protocol, e: inp.Input) -> State:
    """OpenConfirm + KeepAliveMsg: Established."""
    return ESTABLISHED


def _keepalive_in_established(p: Protocol, e: inp.Input) -> None:
    p._restart_hold()
    return None


def _update(p: Protocol, e: inp.UpdateMsg) -> State | None:
    """Established + UpdateMsg: deliver (with its RFC 7606 error, if any)."""
    if e.update is None:
        return _unexpected_in_established(p, e)
    p._restart_hold()
    p.stats.updates_in += 1
    if e.update.error is not None:
        p._emit(ev.UpdateError(e.update.error))
    p._emit(ev.UpdateReceived(e.update))
    return None


def _route_refresh(p: Protocol, e: inp.RouteRefreshMsg) -> State | None:
    """Established + ROUTE-REFRESH: deliver it for a negotiated family with a known subtype,
    ignore it otherwise (RFC 2918 §4, RFC 7313 §5)."""
    rr = e.rr
    if rr is None:
        return _unexpected_in_established(p, e)
    p._restart_hold()
    neg = p.negotiated
    if (
        neg is not None
        and p.settings.route_refresh
        and (rr.afi, rr.safi) in neg.families
        and rr.subtype <= RR_EORR
    ):
        p._emit(ev.RouteRefreshReceived(rr))
    return None


def _collision_dump(p: Protocol, e: inp.Input) -> State:
    """OpenCollisionDump: Cease 7, Idle, no back-off, no automatic restart."""
    n = None
    if p._connected:
        n = Notification.cease(CEASE_COLLISION)
        p._send(n)
    return p._go_down("connection collision resolution", sent=n, backoff=NO_RESTART, is_error=False)


# --- the table ------------------------------------------------------------------------------

Handler = Callable[[Protocol, inp.Input], State | None]

TRANSITIONS: dict[tuple[State, type[inp.Input]], Handler] = {
    # Idle (RFC 4271 §8.2.2): refuse connections, wait for a start.
    (IDLE, inp.ManualStart): _start,
    (IDLE, inp.IdleHoldTimerExpires): _automatic_start,
    (IDLE, inp.ManualStop): _stop_in_idle,
    (IDLE, inp.TcpCRAcked): _refuse,
    (IDLE, inp.TcpConnectionConfirmed): _refuse,
    # Connect: our connection attempt is under way.
    (CONNECT, inp.ManualStop): _manual_stop,
    (CONNECT, inp.ConnectRetryTimerExpires): _connect_retry_in_connect,
    (CONNECT, inp.DelayOpenTimerExpires): _delay_open_expires,
    (CONNECT, inp.TcpCRAcked): _connection_up,
    (CONNECT, inp.TcpConnectionConfirmed): _connection_up,
    (CONNECT, inp.TcpConnectionFails): _connection_fails_early,
    (CONNECT, inp.BGPOpen): _open_with_delay_open,
    (CONNECT, inp.BGPHeaderErr): _protocol_error,
    (CONNECT, inp.BGPOpenMsgErr): _protocol_error,
    (CONNECT, inp.NotifMsgErr): _bad_notification,
    (CONNECT, inp.NotifMsgVerErr): _notification,
    (CONNECT, inp.NotifMsg): _notification,
    (CONNECT, inp.KeepAliveMsg): _unexpected_before_open,
    (CONNECT, inp.UpdateMsg): _unexpected_before_open,
    (CONNECT, inp.RouteRefreshMsg): _unexpected_before_open,
    # Active: listening (and, unless passive, retrying on the ConnectRetryTimer).
    (ACTIVE, inp.ManualStop): _manual_stop,
    (ACTIVE, inp.ConnectRetryTimerExpires): _connect_retry_in_active,
    (ACTIVE, inp.DelayOpenTimerExpires): _delay_open_expires,
    (ACTIVE, inp.TcpCRAcked): _connection_up,
    (ACTIVE, inp.TcpConnectionConfirmed): _connection_up,
    (ACTIVE, inp.TcpConnectionFails): _connection_fails_early,
    (ACTIVE, inp.BGPOpen): _open_with_delay_open,
    (ACTIVE, inp.BGPHeaderErr): _protocol_error,
    (ACTIVE, inp.BGPOpenMsgErr): _protocol_error,
    (ACTIVE, inp.NotifMsgErr): _bad_notification,
    (ACTIVE, inp.NotifMsgVerErr): _notification,
    (ACTIVE, inp.NotifMsg): _notification,
    (ACTIVE, inp.KeepAliveMsg): _unexpected_before_open,
    (ACTIVE, inp.UpdateMsg): _unexpected_before_open,
    (ACTIVE, inp.RouteRefreshMsg): _unexpected_before_open,
    # OpenSent: our OPEN is out, waiting for theirs (hold timer 4 minutes).
    (OPENSENT, inp.ManualStart): _ignore,
    (OPENSENT, inp.ManualStop): _manual_stop,
    (OPENSENT, inp.HoldTimerExpires): _hold_timer_expires,
    (OPENSENT, inp.TcpCRAcked): _second_connection,
    (OPENSENT, inp.TcpConnectionConfirmed): _second_connection,
    (OPENSENT, inp.TcpConnectionFails): _connection_lost,
    (OPENSENT, inp.BGPOpen): _open_received,
    (OPENSENT, inp.BGPHeaderErr): _protocol_error,
    (OPENSENT, inp.BGPOpenMsgErr): _protocol_error,
    (OPENSENT, inp.OpenCollisionDump): _collision_dump,
    (OPENSENT, inp.NotifMsgErr): _bad_notification,
    (OPENSENT, inp.NotifMsgVerErr): _notification,
    (OPENSENT, inp.NotifMsg): _notification,
    # OpenConfirm: OPENs exchanged, waiting for the first KEEPALIVE.
    (OPENCONFIRM, inp.ManualStart): _ignore,
    (OPENCONFIRM, inp.ManualStop): _manual_stop,
    (OPENCONFIRM, inp.HoldTimerExpires): _hold_timer_expires,
    (OPENCONFIRM, inp.KeepaliveTimerExpires): _keepalive_timer,
    (OPENCONFIRM, inp.TcpCRAcked): _second_connection,
    (OPENCONFIRM, inp.TcpConnectionConfirmed): _second_connection,
    (OPENCONFIRM, inp.TcpConnectionFails): _connection_lost,
    (OPENCONFIRM, inp.BGPHeaderErr): _protocol_error,
    (OPENCONFIRM, inp.BGPOpenMsgErr): _protocol_error,
    (OPENCONFIRM, inp.OpenCollisionDump): _collision_dump,
    (OPENCONFIRM, inp.NotifMsgErr): _bad_notification,
    (OPENCONFIRM, inp.NotifMsgVerErr): _notification,
    (OPENCONFIRM, inp.NotifMsg): _notification,
    (OPENCONFIRM, inp.KeepAliveMsg): _keepalive_in_openconfirm,
    # Established.
    (ESTABLISHED, inp.ManualStart): _ignore,
    (ESTABLISHED, inp.ManualStop): _manual_stop,
    (ESTABLISHED, inp.HoldTimerExpires): _hold_timer_expires,
    (ESTABLISHED, inp.KeepaliveTimerExpires): _keepalive_timer,
    (ESTABLISHED, inp.TcpCRAcked): _second_connection,
    (ESTABLISHED, inp.TcpConnectionConfirmed): _second_connection,
    (ESTABLISHED, inp.TcpConnectionFails): _connection_lost,
    (ESTABLISHED, inp.BGPHeaderErr): _protocol_error,
    (ESTABLISHED, inp.OpenCollisionDump): _collision_dump,
    (ESTABLISHED, inp.NotifMsgErr): _bad_notification,
    (ESTABLISHED, inp.NotifMsgVerErr): _notification,
    (ESTABLISHED, inp.NotifMsg): _notification,
    (ESTABLISHED, inp.KeepAliveMsg): _keepalive_in_established,
    (ESTABLISHED, inp.UpdateMsg): _update,
    (ESTABLISHED, inp.UpdateMsgErr): _protocol_error,
    (ESTABLISHED, inp.RouteRefreshMsg): _route_refresh,
    (ESTABLISHED, inp.RouteRefreshMsgErr): _protocol_error,
}

# What happens to an input missing from the table.
_DEFAULT: dict[State, Handler] = {
    IDLE: _ignore,
    CONNECT: _ignore,
    ACTIVE: _ignore,
    OPENSENT: _unexpected_in_opensent,
    OPENCONFIRM: _unexpected_in_openconfirm,
    ESTABLISHED: _unexpected_in_established,
}


def handler_for(state: State, input_type: type[inp.Input]) -> Handler:
    """The handler the table (or the default for ``state``) gives an input type."""
    return TRANSITIONS.get((state, input_type)) or _DEFAULT[state]


__all__ = [
    "HOLD_GRACE",
    "HOLD_GRACE_MAX",
    "OPENSENT_HOLD_TIME",
    "TRANSITIONS",
    "Protocol",
    "Stats",
    "handler_for",
]
