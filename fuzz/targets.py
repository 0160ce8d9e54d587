"""Fuzz targets: one function per target, ``target(data: bytes) -> None``.

Each target turns arbitrary bytes into calls on bgpd's sans-I/O core and checks the invariants
of DESIGN.md ("Errors"); a violated invariant raises (AssertionError or the unexpected
exception itself), which is what a fuzzer reports as a crash.

``decoder``
    ``data[0]`` picks the decoding :class:`~bgpd.wire.Context` (four-octet AS on/off, iBGP,
    extended messages, ADD-PATH receive for IPv4 and for IPv6: 32 combinations), ``data[1]``
    how the rest is cut into reads. The rest is a byte stream for :class:`~bgpd.wire.Framer`;
    every framed message goes through :func:`~bgpd.wire.decode_message`.
    Invariant: every message decodes or raises :class:`~bgpd.wire.BGPError` (a raised error is
    always a session reset, with code/subcode that fit a NOTIFICATION); the framer stops with
    a BGPError or not at all; a decoded message can be used the way the speaker uses it
    (``reach``/``unreach``/``eor``, its attribute set re-encoded for export to peers of both AS
    sizes, packed into UPDATEs that fit 4096 octets), and re-encoded, it frames and decodes again.

``fsm``
    ``data[0]`` picks the session (our settings and the peer's OPEN: four-octet AS, iBGP,
    extended messages, ADD-PATH, hold time 0, DelayOpen, route refresh), ``data[1]`` seeds how
    the rest is cut into reads and how far the clock moves between them. A
    :class:`~bgpd.fsm.Protocol` is brought to Established with a valid OPEN exchange, then
    fed the rest as bytes from the peer, with timers fired as the clock moves.
    Invariant: input from the peer never raises; the state is always valid (see
    :func:`check_fsm`); everything the FSM writes frames and decodes, and a NOTIFICATION is
    the last thing written before the session goes to Idle.

``fsm_ops``
    The bytes are a program of FSM inputs in any order: start, stop, connection made/failed,
    collision dump, timers, canned or random bytes from the peer (OPENs, KEEPALIVEs, UPDATEs,
    NOTIFICATIONs, ROUTE-REFRESHes), sending UPDATEs and ROUTE-REFRESHes, and raw
    ``dispatch`` of every RFC 4271 input class. Invariant: only caller misuse (a second
    connection, sending outside Established, ...) raises, and only
    :class:`~bgpd.wire.LocalProtocolError`, leaving the state as it was; the state is always
    valid.
"""

import dataclasses
import math
import random

from bgpd.fsm import Protocol, SessionSettings, State
from bgpd.fsm import events as ev
from bgpd.fsm import inputs as inp
from bgpd.wire import (
    Action,
    AttrPool,
    AttrSet,
    BGPError,
    Context,
    Framer,
    Keepalive,
    LocalProtocolError,
    MpReach,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_message,
    encode_attrs,
    pack_announce,
    pack_withdraw,
)
from bgpd.wire.capabilities import (
    AddPath,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
)
from bgpd.wire.capabilities import RouteRefresh as RouteRefreshCap
from bgpd.wire.constants import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    MAX_MESSAGE,
    NOTIFICATION,
    OPEN,
    UPDATE,
)

V4, V6 = IPV4_UNICAST, IPV6_UNICAST
BOTH = frozenset({V4, V6})

# --- decoder ----------------------------------------------------------------------------------


def decoder_context(selector: int) -> Context:
    """One of 32 contexts: bit 0 two-octet AS, 1 iBGP, 2 extended messages, 3/4 ADD-PATH rx
    for IPv4/IPv6 (a fresh attribute pool each time, so that no input depends on another)."""
    rx = frozenset(f for bit, f in ((8, V4), (16, V6)) if selector & bit)
    return Context(
        as4=not selector & 1,
        ibgp=bool(selector & 2),
        extended_message=bool(selector & 4),
        add_path_rx=rx,
        add_path_tx=rx,
        pool=AttrPool(),
    )


CHUNKS = (1 << 20, 1, 7, 19, 64, 512, 4096, 0)  # 0: sizes drawn from a PRNG seeded by octet 1
FINE = 256  # reads under 64 octets cut only the first octets (splits inside headers)


def _reads(data: bytes, how: int) -> list[bytes]:
    size = CHUNKS[how & 7]
    out: list[bytes] = []
    i = 0
    rng = None if size else random.Random(how)
    while i < len(data):
        n = size or rng.choice((1, 2, 3, 18, 19, 20, 100, 4096))
        if n < 64 and i >= FINE:
            n = 4096  # keep long inputs fast: the framer's state does not depend on where
        out.append(data[i : i + n])
        i += n
    return out or [b""]


def check_error(e: BGPError) -> None:
    assert isinstance(e, BGPError), repr(e)
    assert isinstance(e.action, Action), repr(e)
    assert 1 <= e.code <= 255 and 0 <= e.subcode <= 255, repr(e)
    assert isinstance(e.data, bytes), repr(e)
    # What the FSM will send for it must be a valid NOTIFICATION.
    wire = Notification.from_error(e).encode()
    assert 21 <= len(wire) <= MAX_MESSAGE, f"NOTIFICATION of {len(wire)} octets for {e!r}"
    e.reason  # noqa: B018  (a readable reason exists for every code/subcode)


def frame_all(data: bytes, max_size: int) -> list[tuple[int, bytes]]:
    framer = Framer(max_size)
    msgs = framer.feed(data)
    assert framer.error is None, f"our own output does not frame: {framer.error!r}"
    assert not framer.buffer, "our own output ends in a partial message"
    return msgs


_EXPORT_CONTEXTS = (Context(), Context(as4=False), Context(extended_message=True))


def exercise(m, ctx: Context) -> None:
    """Use a decoded message the way the speaker does, and encode it again."""
    if isinstance(m, Update):
        if m.error is not None:
            check_error(m.error)
        reach = m.reach()
        unreach = m.unreach()
        m.eor()
        repr(m)
        if m.treat_as_withdraw:
            assert reach == [], "treat-as-withdraw must not reach anything"
        for fam, attrs, keys in reach:
            assert attrs is not None and keys
            attrs.as_path_len()
            attrs.first_as()
            list(attrs.all_asns())
            for out_ctx in _EXPORT_CONTEXTS:
                # Export: the set (with prefixes re-keyed without path ids) packed for peers.
                encode_attrs(attrs, out_ctx.as4)
                plain = [k[1] if type(k) is tuple else k for k in keys]
                for wire in pack_announce(fam, attrs, plain, out_ctx):
                    msgs = frame_all(wire, out_ctx.max_size)
                    assert len(msgs) == 1 and msgs[0][0] == UPDATE
        for fam, keys in unreach:
            plain = [k[1] if type(k) is tuple else k for k in keys]
            for wire in pack_withdraw(fam, plain, _EXPORT_CONTEXTS[0]):
                frame_all(wire, MAX_MESSAGE)
    elif isinstance(m, Open):
        m.four_octet_as  # noqa: B018
    # Encode in the direction it was decoded in: our ADD-PATH "send" = what was received.
    out_ctx = dataclasses.replace(ctx, add_path_tx=ctx.add_path_rx, pool=AttrPool())
    wire = m.encode(out_ctx)
    msgs = frame_all(wire, 65535)
    assert len(msgs) == 1
    try:
        again = decode_message(*msgs[0], out_ctx)
    except BGPError as e:
        # What decoded once must decode again once re-encoded.
        raise AssertionError(f"re-encoded {type(m).__name__} does not decode: {e!r}") from None
    if isinstance(m, Update) and m.error is None:
        assert again.error is None, f"re-encoded UPDATE has an error: {again.error!r}"


def decoder(data: bytes) -> None:
    if len(data) < 2:
        return
    ctx = decoder_context(data[0])
    framer = Framer(max_size=ctx.max_size)
    msgs = []
    for chunk in _reads(data[2:], data[1]):
        msgs += framer.feed(chunk)
    if framer.error is not None:
        check_error(framer.error)
        assert framer.error.action == Action.RESET
        assert framer.feed(b"\xff" * 19) == [], "the framer goes on after an error"
    for msg_type, body in msgs:
        assert len(body) + 19 <= ctx.max_size
        try:
            m = decode_message(msg_type, body, ctx)
        except BGPError as e:
            check_error(e)
            assert e.action == Action.RESET, f"a raised error must be a session reset: {e!r}"
            continue
        exercise(m, ctx)


# --- the FSM --------------------------------------------------------------------------------

LOCAL_AS, PEER_AS = 65001, 65002
LOCAL_ID, PEER_ID = "10.0.0.1", "10.0.0.2"


def fsm_session(selector: int) -> tuple[SessionSettings, bytes]:
    """Our settings and the peer's OPEN for one of 128 session variants.

    Bits: 0 the peer has no four-octet AS capability, 1 iBGP, 2 extended messages, 3 ADD-PATH
    both ways for both families, 4 the peer's hold time is 0, 5 DelayOpen, 6 no route refresh.
    """
    ibgp = bool(selector & 2)
    peer_as = LOCAL_AS if ibgp else PEER_AS
    settings = SessionSettings(
        local_as=LOCAL_AS,
        peer_as=peer_as,
        router_id=LOCAL_ID,
        hold_time=90,
        connect_retry=30,
        delay_open=5.0 if selector & 32 else 0.0,
        idle_hold=(1.0, 8.0),
        extended_message=bool(selector & 4),
        add_path={V4: "both", V6: "both"} if selector & 8 else {},
        route_refresh=not selector & 64,
        enhanced_route_refresh=not selector & 64,
        graceful_restart=GracefulRestart(120, families=((1, 1, True),)),
        pool=AttrPool(),  # a private pool: no input depends on another (nor on other tests)
    )
    caps = [Multiprotocol(1, 1), Multiprotocol(2, 1)]
    if not selector & 64:
        caps += [RouteRefreshCap(), EnhancedRouteRefresh()]
    if not selector & 1:
        caps.append(FourOctetAS(peer_as))
    if selector & 4:
        caps.append(ExtendedMessage())
    if selector & 8:
        caps.append(AddPath(((1, 1, 3), (2, 1, 3))))
    peer_open = Open(
        asn=peer_as,
        hold_time=0 if selector & 16 else 90,
        router_id=PEER_ID,
        capabilities=tuple(caps),
    ).encode()
    return settings, peer_open


_VALID_STATES = frozenset(State)
_CONNECTED_STATES = frozenset((State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED))
_TIMER_KINDS = frozenset(("idle_hold", "connect_retry", "delay_open", "hold", "keepalive"))


class Checker:
    """Follows one Protocol and checks every call's events, output and resulting state."""

    def __init__(self, p: Protocol) -> None:
        self.p = p
        self.state = p.state
        self.ctx_tx: Context | None = None  # how the peer decodes what we send

    def after(self, events: list, now: float) -> None:
        p = self.p
        state = self.state
        went_idle = 0
        downs = 0
        for e in events:
            assert isinstance(e, ev.Event), repr(e)
            if isinstance(e, ev.StateChanged):
                assert e.old is state, f"StateChanged {e.old}->{e.new} but FSM was in {state}"
                assert e.new is not e.old
                state = e.new
                went_idle += state is State.IDLE
            elif isinstance(e, ev.SessionDown):
                downs += 1
                assert state is State.IDLE, "SessionDown outside Idle"
            elif isinstance(e, ev.SessionEstablished):
                assert state is State.ESTABLISHED
            elif isinstance(e, ev.UpdateReceived | ev.RouteRefreshReceived):
                assert state is State.ESTABLISHED, f"{type(e).__name__} in {state}"
                if isinstance(e, ev.UpdateReceived):
                    err = e.update.error
                    assert err is None or err.action <= Action.WITHDRAW, repr(err)
            elif isinstance(e, ev.UpdateError):
                assert e.error.action <= Action.WITHDRAW, repr(e.error)
        assert state is p.state, f"events end in {state}, FSM is in {p.state}"
        assert downs == went_idle, f"{went_idle} entries into Idle, {downs} SessionDown"
        self.state = state
        check_state(p)
        self.check_output(p.data_to_send())

    def check_output(self, data: bytes) -> None:
        p = self.p
        if not data:
            return
        neg = p.negotiated
        max_size = neg.context.max_size if neg is not None else MAX_MESSAGE
        msgs = frame_all(data, max_size)
        ctx = Context()
        if neg is not None:
            ctx = dataclasses.replace(
                neg.context, add_path_rx=neg.context.add_path_tx, pool=AttrPool()
            )
        for i, (msg_type, body) in enumerate(msgs):
            if msg_type in (OPEN, KEEPALIVE, NOTIFICATION):
                assert len(body) + 19 <= MAX_MESSAGE
            if msg_type == UPDATE:
                continue  # the caller's bytes, passed through (send_update checks the size)
            m = decode_message(msg_type, body, ctx)  # our output decodes
            if msg_type == NOTIFICATION:
                assert i == len(msgs) - 1, "something was written after a NOTIFICATION"
                assert p.state is State.IDLE, f"NOTIFICATION sent, but the FSM is in {p.state}"
                assert m.code != 0


def check_state(p: Protocol) -> None:
    """The invariants of a Protocol between calls."""
    state = p.state
    assert state in _VALID_STATES
    timers = p.timers
    assert set(timers) <= _TIMER_KINDS, timers
    for kind, deadline in timers.items():
        assert math.isfinite(deadline), (kind, deadline)
    d = p.next_deadline()
    assert d is None or math.isfinite(d)
    if state is State.IDLE:
        assert not p.connected, "connected in Idle"
        assert set(timers) <= {"idle_hold"}, f"timers in Idle: {timers}"
    else:
        assert "idle_hold" not in timers, f"idle hold timer in {state}"
    if state in _CONNECTED_STATES:
        assert p.connected, f"{state} without a connection"
    if state in (State.OPENCONFIRM, State.ESTABLISHED):
        neg = p.negotiated
        assert neg is not None, f"{state} without a negotiated session"
        if neg.hold_time:
            assert "hold" in timers and "keepalive" in timers, f"{state} timers {timers}"
            assert neg.keepalive > 0
        else:
            assert "hold" not in timers and "keepalive" not in timers, timers
    if state is State.OPENSENT:
        assert "hold" in timers, f"OpenSent without a hold timer: {timers}"
    if state in (State.CONNECT, State.ACTIVE):
        assert "hold" not in timers and "keepalive" not in timers, timers
    s = p.stats
    assert s.updates_in >= 0 and s.flaps >= 0
    assert all(v >= 0 for v in s.messages_in.values())


def _established(selector: int) -> tuple[Protocol, Checker, float]:
    settings, peer_open = fsm_session(selector)
    p = Protocol(settings)
    c = Checker(p)
    now = 1000.0
    c.after(p.start(now), now)
    outbound = not settings.delay_open
    c.after(p.connection_made(now, outbound=outbound), now)
    c.after(p.receive_data(peer_open, now), now)
    if settings.delay_open:
        assert p.state is State.OPENCONFIRM, p.state
    c.after(p.receive_data(Keepalive().encode(), now), now)
    assert p.state is State.ESTABLISHED, (p.state, p.last_error)
    return p, c, now


def fsm(data: bytes) -> None:
    if len(data) < 2:
        return
    p, c, now = _established(data[0] & 0x7F)
    rng = random.Random(data[1])
    rest = data[2:]
    i = 0
    while i < len(rest) and p.connected:
        n = rng.choice((1, 7, 19, 23, 64, 512, 4096, 70000))
        c.after(p.receive_data(rest[i : i + n], now), now)
        i += n
        step = rng.choice((0.0, 0.0, 0.0, 1.0, 31.0, 89.0, 91.0))
        if step:
            now += step
            c.after(p.handle_timer(now, unread_input=rng.random() < 0.5), now)
    # Let every timer run out: the session ends (hold timer) or restarts; nothing raises.
    for _ in range(4):
        d = p.next_deadline()
        if d is None:
            break
        now = max(now, d)
        c.after(p.handle_timer(now), now)


# --- the FSM, driven by a program of inputs ------------------------------------------------------


def _canned_updates() -> list[bytes]:
    attrs = AttrSet(origin=0, as_path=((2, (PEER_AS,)),), next_hop=bytes((10, 0, 0, 2)))
    v6 = AttrSet(origin=0, as_path=((2, (PEER_AS, 4200000000)),), local_pref=100)
    return [
        Update(attrs=attrs, nlri=[b"\x18\x0a\x00\x01"]).encode(),
        Update(withdrawn=[b"\x18\x0a\x00\x01"]).encode(),
        Update(
            attrs=v6,
            mp_reach=MpReach(2, 1, bytes(15) + b"\x01", [b"\x30\x20\x01\x0d\xb8\x00\x01"]),
        ).encode(),
        Update().encode(),  # End-of-RIB
        b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x00\x00\x00",  # EoR, by hand
    ]


_UPDATES = _canned_updates()
_NOTIFICATIONS = [
    Notification.cease(2, "bye").encode(),
    Notification(2, 1, b"\x00\x04").encode(),
    Notification(3, 1).encode(),
    b"\xff" * 16 + b"\x00\x14\x03\x06",  # malformed: one octet body
]
_RRS = [RouteRefresh(1, 1).encode(), RouteRefresh(2, 1, 1).encode(), RouteRefresh(9, 9).encode()]
_OPENS = [fsm_session(s)[1] for s in (0, 1, 2, 4, 8, 16)] + [
    Open(asn=PEER_AS, hold_time=1, router_id=PEER_ID).encode(),  # unacceptable hold time
    Open(asn=64999, hold_time=90, router_id=PEER_ID).encode(),  # bad peer AS
    Open(asn=PEER_AS, hold_time=90, router_id=LOCAL_ID).encode(),  # our own identifier
]
_ERR = BGPError(3, 1, b"", Action.RESET, "fuzz")
_NOTIF = Notification.cease(4, "reset")


def _input(kind: int, arg: int, p: Protocol) -> inp.Input:
    """An RFC 4271 input of every class, with plausible payloads."""
    cls = inp.ALL_INPUTS[kind % len(inp.ALL_INPUTS)]
    if cls is inp.ManualStop:
        return inp.ManualStop(arg % 10, "x" * (arg % 3))
    if cls is inp.HoldTimerExpires:
        return inp.HoldTimerExpires(bool(arg & 1))
    if cls is inp.BGPOpen:
        if arg & 1:
            return inp.BGPOpen(None)
        framer = Framer()
        ((_t, body),) = framer.feed(_OPENS[arg % len(_OPENS)])
        try:
            return inp.BGPOpen(decode_message(OPEN, body))
        except BGPError:
            return inp.BGPOpen(None)
    if cls in (inp.BGPHeaderErr, inp.BGPOpenMsgErr, inp.UpdateMsgErr, inp.RouteRefreshMsgErr):
        return cls(_ERR)
    if cls is inp.NotifMsgErr:
        return cls(_ERR)
    if cls in (inp.NotifMsg, inp.NotifMsgVerErr):
        return cls(_NOTIF)
    if cls is inp.UpdateMsg:
        if arg & 1:
            return inp.UpdateMsg(None)
        return inp.UpdateMsg(Update(withdrawn=[b"\x08\x0a"]))
    if cls is inp.RouteRefreshMsg:
        return inp.RouteRefreshMsg(None if arg & 1 else RouteRefresh(1, 1))
    return cls()


# Public methods whose LocalProtocolError is documented caller misuse.
_MISUSE = {"connection_made", "send_update", "send_route_refresh", "dispatch"}


def fsm_ops(data: bytes) -> None:
    if not data:
        return
    settings, _open = fsm_session(data[0] & 0x7F)
    p = Protocol(settings)
    c = Checker(p)
    now = 1000.0
    pos = 1
    n = len(data)
    steps = 0
    while pos < n and steps < 200:
        steps += 1
        op = data[pos] % 16
        arg = data[pos + 1] if pos + 1 < n else 0
        pos += 2
        name = ""
        try:
            if op == 0:
                name = "start"
                events = p.start(now)
            elif op == 1:
                name = "stop"
                events = p.stop(now, subcode=arg % 10, message="m" * (arg % 4))
            elif op == 2:
                name = "connection_made"
                events = p.connection_made(now, outbound=bool(arg & 1))
            elif op == 3:
                name = "connection_failed"
                events = p.connection_failed(now)
            elif op == 4:
                name = "collision_dump"
                events = p.collision_dump(now)
            elif op == 5:
                name = "handle_timer"
                d = p.next_deadline()
                if arg & 1 and d is not None:
                    now = max(now, d)
                else:
                    now += arg % 100
                events = p.handle_timer(now, unread_input=bool(arg & 2))
            elif op == 6:
                name = "receive_data"
                events = p.receive_data(_OPENS[arg % len(_OPENS)], now)
            elif op == 7:
                name = "receive_data"
                events = p.receive_data(Keepalive().encode()[: 19 if arg & 1 else arg % 19], now)
            elif op == 8:
                name = "receive_data"
                k = arg % 64 + 1
                events = p.receive_data(data[pos : pos + k], now)
                pos += k
            elif op == 9:
                name = "receive_data"
                events = p.receive_data(_UPDATES[arg % len(_UPDATES)], now)
            elif op == 10:
                name = "receive_data"
                events = p.receive_data(_NOTIFICATIONS[arg % len(_NOTIFICATIONS)], now)
            elif op == 11:
                name = "receive_data"
                events = p.receive_data(_RRS[arg % len(_RRS)], now)
            elif op == 12:
                name = "send_update"
                raw = _UPDATES[arg % len(_UPDATES)] if arg < 200 else bytes(arg % 30)
                events = p.send_update(raw, now)
            elif op == 13:
                name = "send_route_refresh"
                events = p.send_route_refresh(1 + (arg & 1), 1 + (arg & 2), (arg >> 2) % 4, now)
            elif op == 14:
                name = "dispatch"
                events = p.dispatch(_input(arg, arg >> 5, p), now)
            else:
                name = "receive_data"
                # a whole random message behind a valid header
                body = data[pos : pos + arg % 48]
                pos += len(body)
                t = (body[-1] if body else arg) % 6
                wire = b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes((t,)) + body
                events = p.receive_data(wire, now)
        except LocalProtocolError:
            assert name in _MISUSE, f"LocalProtocolError from {name}: input from the peer"
            assert p.state is c.state, "caller misuse changed the state"
            p._take_events()  # noqa: SLF001  (drop what the refused call may have queued)
            check_state(p)
            c.check_output(p.data_to_send())
            continue
        before = c.state
        c.after(events, now)
        if name == "stop" or (name == "collision_dump" and before in _CONNECTED_STATES):
            # ManualStop and a lost collision end in Idle without an automatic restart.
            assert p.state is State.IDLE, f"{name} left the FSM in {p.state}"
            assert "idle_hold" not in p.timers, f"{name} armed an automatic restart"


TARGETS = {"decoder": decoder, "fsm": fsm, "fsm_ops": fsm_ops}
