"""Test helpers for bgpd.fsm: settings, a fake peer's messages, and two speakers back to back.

``Pair`` wires two :class:`Protocol` objects over an in-memory "wire" (h11's ConnectionPair,
aioquic's client_and_server/roundtrip): what one sends the other receives, and the clock is a
number both share.
"""

from bgpd.fsm import Protocol, SessionSettings, State
from bgpd.fsm import events as ev
from bgpd.wire import AttrSet, Context, Framer, Keepalive, Notification, Open, Update
from bgpd.wire.capabilities import (
    FourOctetAS,
    Multiprotocol,
    RouteRefresh,
)
from bgpd.wire.messages import decode_message

LOCAL_AS = 65001
PEER_AS = 65002
LOCAL_ID = "10.0.0.1"
PEER_ID = "10.0.0.2"

KEEPALIVE = Keepalive().encode()


def settings(**kw) -> SessionSettings:
    """Our side: AS 65001, router id 10.0.0.1, peer AS 65002."""
    base = {"local_as": LOCAL_AS, "peer_as": PEER_AS, "router_id": LOCAL_ID}
    base.update(kw)
    return SessionSettings(**base)


def peer_settings(**kw) -> SessionSettings:
    """The mirror image: AS 65002, router id 10.0.0.2, passive."""
    base = {"local_as": PEER_AS, "peer_as": LOCAL_AS, "router_id": PEER_ID, "passive": True}
    base.update(kw)
    return SessionSettings(**base)


def peer_open(
    asn: int = PEER_AS,
    router_id: str = PEER_ID,
    hold_time: int = 90,
    caps=None,
    my_as_field: int | None = None,
) -> bytes:
    """An OPEN from the fake peer (four-octet AS, ipv4+ipv6, route refresh by default)."""
    if caps is None:
        caps = (
            Multiprotocol(1, 1),
            Multiprotocol(2, 1),
            RouteRefresh(),
            FourOctetAS(asn),
        )
    return Open(
        asn=asn,
        hold_time=hold_time,
        router_id=router_id,
        capabilities=tuple(caps),
        my_as_field=my_as_field,
    ).encode()


def messages(data: bytes) -> list:
    """Decode a byte stream we sent into messages (large messages allowed)."""
    framer = Framer(max_size=65535)
    out = [decode_message(t, body, Context()) for t, body in framer.feed(data)]
    assert framer.error is None, framer.error
    assert not framer.buffer, "trailing partial message"
    return out


def notifications(data: bytes) -> list[Notification]:
    return [m for m in messages(data) if isinstance(m, Notification)]


def of_type(events, cls) -> list:
    return [e for e in events if isinstance(e, cls)]


def simple_update(ctx: Context | None = None) -> bytes:
    """A valid IPv4 UPDATE announcing 10.0.1.0/24 from AS 65002."""
    attrs = AttrSet(origin=0, as_path=((2, (PEER_AS,)),), next_hop=bytes((10, 0, 0, 2)))
    return Update(attrs=attrs, nlri=[b"\x18\x0a\x00\x01"]).encode(ctx or Context())


def raw_update(
    attr_block: bytes, nlri: bytes = b"\x18\x0a\x00\x01", withdrawn: bytes = b""
) -> bytes:
    body = (
        len(withdrawn).to_bytes(2, "big")
        + withdrawn
        + len(attr_block).to_bytes(2, "big")
        + attr_block
        + nlri
    )
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


def to_opensent(p: Protocol, now: float = 0.0) -> list:
    """Start ``p`` and give it a connection: it sends its OPEN and waits for the peer's."""
    evs = p.start(now)
    evs += p.connection_made(now, outbound=not p.settings.passive)
    assert p.state is State.OPENSENT, p.state
    return evs


def to_openconfirm(p: Protocol, now: float = 0.0, **open_kw) -> list:
    evs = to_opensent(p, now)
    evs += p.receive_data(peer_open(**open_kw), now)
    assert p.state is State.OPENCONFIRM, (p.state, evs)
    return evs


def to_established(p: Protocol, now: float = 0.0, **open_kw) -> list:
    evs = to_openconfirm(p, now, **open_kw)
    evs += p.receive_data(KEEPALIVE, now)
    assert p.state is State.ESTABLISHED, (p.state, evs)
    return evs


class Pair:
    """Two speakers back to back: ``a`` connects out, ``b`` (passive) accepts."""

    def __init__(self, a: SessionSettings | None = None, b: SessionSettings | None = None):
        self.a = Protocol(a or settings())
        self.b = Protocol(b or peer_settings())
        self.now = 0.0
        self.events: dict[Protocol, list] = {self.a: [], self.b: []}
        self.wire_log: list[tuple[str, bytes]] = []

    def _record(self, p: Protocol, evs: list) -> list:
        self.events[p].extend(evs)
        return evs

    def connect(self) -> "Pair":
        a, b = self.a, self.b
        evs = self._record(a, a.start(self.now))
        assert any(isinstance(e, ev.ConnectRequested) for e in evs)
        self._record(b, b.start(self.now))
        self._record(a, a.connection_made(self.now, outbound=True))
        self._record(b, b.connection_made(self.now, outbound=False))
        return self

    def pump(self) -> None:
        """Carry bytes both ways until neither side has anything to say."""
        for _ in range(100):
            da = self.a.data_to_send()
            db = self.b.data_to_send()
            if not da and not db:
                return
            if da:
                self.wire_log.append(("a->b", da))
                self._record(self.b, self.b.receive_data(da, self.now))
            if db:
                self.wire_log.append(("b->a", db))
                self._record(self.a, self.a.receive_data(db, self.now))
        raise AssertionError("the two speakers never stop talking")

    def establish(self) -> "Pair":
        self.connect().pump()
        assert self.a.state is State.ESTABLISHED, self.events[self.a]
        assert self.b.state is State.ESTABLISHED, self.events[self.b]
        return self

    def advance(self, seconds: float) -> None:
        """Move the shared clock, firing each side's timers at their deadlines, in order."""
        target = self.now + seconds
        while True:
            deadlines = [
                (d, i, p)
                for i, p in enumerate((self.a, self.b))
                if (d := p.next_deadline()) is not None and d <= target
            ]
            if not deadlines:
                break
            d, _, p = min(deadlines, key=lambda t: (t[0], t[1]))
            self.now = max(self.now, d)
            self._record(p, p.handle_timer(self.now))
            self.pump()
        self.now = target
