"""Fuzz-ish: random bytes and mutated valid messages never crash the codec.

Whatever arrives, :class:`Framer` returns messages or sets ``error`` (a :class:`BGPError`), and
:func:`decode_message` returns a message or raises :class:`BGPError`: never another exception.
A decoded message can be inspected and encoded again.
"""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpd.wire import (
    Action,
    AttrSet,
    BGPError,
    Context,
    Framer,
    Keepalive,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_message,
    pack_announce,
)
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import (
    FQDN,
    AddPath,
    ExtendedNextHop,
    FourOctetAS,
    GracefulRestart,
    LongLivedGR,
    Multiprotocol,
    UnknownCapability,
)
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

MANY = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

P = pfx.from_str
ALL = frozenset({IPV4_UNICAST, IPV6_UNICAST})
CONTEXTS = [
    Context(),
    Context(ibgp=True),
    Context(as4=False),
    Context(ibgp=True, add_path_rx=ALL, add_path_tx=ALL),
    Context(extended_message=True, add_path_rx=frozenset({IPV4_UNICAST})),
]

FULL = AttrSet(
    origin=1,
    as_path=((3, (65001,)), (2, (65000, 4200000000)), (1, (1, 2))),
    next_hop=pfx.addr_from_str("192.0.2.1"),
    med=5,
    local_pref=100,
    atomic_aggregate=True,
    aggregator=(4200000000, b"\x01\x02\x03\x04"),
    communities=(1, 2, 0xFFFFFF01),
    originator_id=b"\x0a\x00\x00\x01",
    cluster_list=(b"\x0a\x00\x00\x02",),
    ext_communities=(b"\x00\x02\xfd\xe8\x00\x00\x00\x64",),
    large_communities=((1, 2, 3),),
    unknown=((0xE0, 0xF1, b"xyz"),),
)
V6 = pfx.addr_from_str("2001:db8::1") + pfx.addr_from_str("fe80::1")


def _seeds() -> list[bytes]:
    out = [
        Keepalive().encode(),
        Notification.cease(2, "bye").encode(),
        Notification(3, 1, b"\x01\x02").encode(),
        RouteRefresh(1, 1).encode(),
        RouteRefresh(2, 1, 2).encode(),
        Open(
            asn=4200000000,
            hold_time=90,
            router_id="10.0.0.1",
            capabilities=(
                Multiprotocol(1, 1),
                Multiprotocol(2, 1),
                FourOctetAS(4200000000),
                AddPath(((1, 1, 3), (2, 1, 1))),
                GracefulRestart(120, True, True, ((1, 1, True),)),
                LongLivedGR(((1, 1, 0x80, 3600),)),
                ExtendedNextHop(((1, 1, 2),)),
                FQDN("r1", "example.net"),
                UnknownCapability(200, b"\x01"),
            ),
        ).encode(),
        Open(
            asn=65000,
            hold_time=0,
            router_id="10.0.0.1",
            capabilities=(UnknownCapability(239, b"\xaa" * 250), Multiprotocol(1, 1)),
        ).encode(),
        Update(withdrawn=[P("10.0.0.0/8")]).encode(),
        Update().encode(),
        Update(mp_unreach=MpUnreach(2, 1, [])).encode(),
    ]
    for ctx in CONTEXTS:
        out.append(
            Update(
                withdrawn=[P("10.1.0.0/16")] if not ctx.add_path_tx else [],
                attrs=FULL,
                nlri=[P("192.168.1.0/24"), P("0.0.0.0/0")] if not ctx.add_path_tx else [],
                mp_reach=MpReach(2, 1, V6, [P("2001:db8::/32")] if not ctx.add_path_tx else []),
                mp_unreach=MpUnreach(2, 1, [P("2001:db8:1::/48")] if not ctx.add_path_tx else []),
            ).encode(ctx)
        )
        items = [P("10.0.0.0/8"), P("10.1.2.0/24")]
        if IPV4_UNICAST in ctx.add_path_tx:
            items = [(1, p) for p in items]
        out += pack_announce(IPV4_UNICAST, FULL, items, ctx)
    return out


SEEDS = _seeds()


def feed_and_decode(data: bytes, ctx: Context, chunk: int) -> None:
    framer = Framer(max_size=ctx.max_size)
    msgs = []
    for i in range(0, len(data), chunk):
        msgs += framer.feed(data[i : i + chunk])
    assert framer.error is None or isinstance(framer.error, BGPError)
    for msg_type, body in msgs:
        try:
            m = decode_message(msg_type, body, ctx)
        except BGPError as e:
            assert isinstance(e.action, Action)
            assert 0 <= e.code <= 255 and 0 <= e.subcode <= 255
            continue
        exercise(m, ctx)


def exercise(m, ctx: Context) -> None:
    if isinstance(m, Update):
        assert m.error is None or isinstance(m.error, BGPError)
        m.reach()
        m.unreach()
        m.eor()
        repr(m)
    # encode in the direction it was decoded in: our ADD-PATH "send" = what was received
    ctx = dataclasses.replace(ctx, add_path_tx=ctx.add_path_rx)
    wire = m.encode(ctx)
    # what we encode must frame and decode again
    framer = Framer(max_size=65535)
    again = framer.feed(wire)
    assert framer.error is None and len(again) == 1
    decode_message(*again[0], ctx)


contexts = st.sampled_from(CONTEXTS)
chunks = st.sampled_from([1, 7, 19, 4096, 100000])


@MANY
@given(st.binary(max_size=300), contexts, chunks)
def test_random_bytes(data, ctx, chunk):
    feed_and_decode(data, ctx, chunk)


@MANY
@given(st.binary(max_size=300), st.integers(0, 255), contexts)
def test_random_bodies_behind_a_valid_header(body, msg_type, ctx):
    """Random bodies reach the message decoders (the framer would stop most random bytes)."""
    header = b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes((msg_type % 6,))
    feed_and_decode(header + body, ctx, 100000)
    try:
        m = decode_message(msg_type % 6, body, ctx)
    except BGPError:
        return
    exercise(m, ctx)


@st.composite
def mutated(draw):
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["set", "set", "set", "insert", "delete"]))
        pos = draw(st.integers(19, max(19, len(seed) - 1))) if len(seed) > 19 else 0
        if op == "set" and pos < len(seed):
            seed[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            seed[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and pos < len(seed):
            del seed[pos : pos + draw(st.integers(1, 8))]
    if draw(st.booleans()) and len(seed) >= 19:
        seed[16:18] = len(seed).to_bytes(2, "big")  # keep the header consistent
    return bytes(seed)


@MANY
@given(mutated(), contexts, chunks)
def test_mutated_messages(data, ctx, chunk):
    feed_and_decode(data, ctx, chunk)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=5), contexts, chunks)
def test_valid_streams_decode(stream, ctx, chunk):
    """Unmutated seeds decode without a session reset in the context they were made for."""
    framer = Framer(max_size=65535)
    data = b"".join(stream)
    msgs = []
    for i in range(0, len(data), chunk):
        msgs += framer.feed(data[i : i + chunk])
    assert framer.error is None and len(msgs) == len(stream)
