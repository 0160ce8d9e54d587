"""Round-trip properties (hypothesis): decode(encode(x)) == x for every attribute and message.

Also the packer: whatever is packed decodes back to exactly the input prefixes, in order, and
no message exceeds the negotiated maximum size.
"""

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpd.wire import (
    Action,
    AttrSet,
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
    pack_withdraw,
)
from bgpd.wire.capabilities import (
    FQDN,
    AddPath,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    FourOctetAS,
    GracefulRestart,
    LongLivedGR,
    Multiprotocol,
    UnknownCapability,
)
from bgpd.wire.capabilities import RouteRefresh as RouteRefreshCap
from bgpd.wire.constants import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    IPV4_UNICAST,
    IPV6_UNICAST,
)
from bgpd.wire.nexthop import ipv6_problem

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
asn4 = st.integers(1, 0xFFFFFFFF)  # AS 0 is malformed (RFC 7607)
asn2 = st.integers(1, 0xFFFF)
id4 = st.binary(min_size=4, max_size=4)
# a host address usable as a next hop: not 0/8, 127/8, 224/4, 240/4 (bgpd.wire.nexthop)
host4 = st.tuples(
    st.integers(1, 223).filter(lambda b: b != 127), st.binary(min_size=3, max_size=3)
).map(lambda t: bytes((t[0],)) + t[1])
# not ::, ::1, ff00::/8, nor an IPv4-mapped address of a bad class
host6 = st.binary(min_size=16, max_size=16).filter(lambda b: ipv6_problem(b) is None)
link_local6 = st.binary(min_size=8, max_size=8).map(lambda b: b"\xfe\x80" + bytes(6) + b)
# a 32-octet next hop: global and link-local (RFC 2545 §3)
global_and_ll6 = st.tuples(host6, link_local6).map(lambda t: t[0] + t[1])


def prefix4():
    return st.tuples(u32, st.integers(0, 32)).map(
        lambda t: _key(ipaddress.IPv4Network((t[0], t[1]), strict=False))
    )


def prefix6():
    return st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: _key(ipaddress.IPv6Network((t[0], t[1]), strict=False))
    )


def _key(net) -> bytes:
    plen = net.prefixlen
    return bytes((plen,)) + net.network_address.packed[: (plen + 7) >> 3]


def segments(asn, types=(AS_SEQUENCE, AS_SET)):
    """Path segments. No confederation segments: bgpd is in no confederation, so they make
    an AS_PATH malformed (RFC 5065 §5; test_confed_segments_are_treat_as_withdraw)."""
    return st.tuples(st.sampled_from(types), st.lists(asn, min_size=1, max_size=8).map(tuple))


def as_path(four_octet: bool):
    return st.lists(segments(asn4), max_size=5).map(tuple)


def unknown_attrs():
    # optional transitive codes we do not know, one of each, in code order (as encoded)
    return st.dictionaries(st.integers(33, 255), st.binary(max_size=300), max_size=3).map(
        lambda d: tuple((0xE0, code, d[code]) for code in sorted(d))
    )


def attr_sets(four_octet=True, next_hop=None, mandatory=False):
    """``mandatory``: what an iBGP UPDATE announcing routes needs (RFC 4271 §5, RFC 7606 §3(d))."""
    opt = st.none
    if next_hop is None:
        next_hop = opt() | host4
    return st.builds(
        AttrSet,
        origin=st.integers(0, 2) if mandatory else opt() | st.integers(0, 2),
        as_path=as_path(four_octet) if mandatory else opt() | as_path(four_octet),
        next_hop=next_hop,
        med=opt() | u32,
        local_pref=u32 if mandatory else opt() | u32,
        atomic_aggregate=st.booleans(),
        aggregator=opt() | st.tuples(asn4, id4),
        communities=st.lists(u32, max_size=8).map(tuple) | st.lists(u32, max_size=70).map(tuple),
        originator_id=opt() | id4,
        cluster_list=st.lists(id4, max_size=5).map(tuple),
        ext_communities=st.lists(st.binary(min_size=8, max_size=8), max_size=5).map(tuple),
        large_communities=st.lists(st.tuples(u32, u32, u32), max_size=5).map(tuple),
        unknown=unknown_attrs(),
    )


def decode_one(wire: bytes, ctx: Context):
    framer = Framer(max_size=ctx.max_size)
    msgs = framer.feed(wire)
    assert framer.error is None
    assert len(msgs) == 1 and len(framer) == 0
    return decode_message(*msgs[0], ctx)


IBGP = Context(ibgp=True)
IBGP_AS2 = Context(ibgp=True, as4=False)


# --- attributes -----------------------------------------------------------------------------


@FAST
@given(attr_sets())
def test_attr_set_roundtrip(attrs):
    m = decode_one(Update(attrs=attrs).encode(IBGP), IBGP)
    assert m.error is None
    assert (m.attrs or AttrSet()) == attrs


@FAST
@given(attr_sets(four_octet=False))
def test_attr_set_roundtrip_two_octet_peer(attrs):
    """AS_TRANS + AS4_PATH / AS4_AGGREGATOR out, RFC 6793 §4.2.3 reconstruction in."""
    m = decode_one(Update(attrs=attrs).encode(IBGP_AS2), IBGP_AS2)
    assert m.error is None
    assert (m.attrs or AttrSet()) == attrs


@FAST
@given(
    attr_sets(mandatory=True, next_hop=host4),
    st.lists(segments(asn4, (AS_CONFED_SEQUENCE, AS_CONFED_SET)), min_size=1, max_size=2),
    st.sampled_from([Context(), IBGP]),
)
def test_confed_segments_are_treat_as_withdraw(attrs, confed, ctx):
    """An AS_PATH with AS_CONFED_* segments, wherever they are, from any peer: Malformed
    AS_PATH (3/11), treat-as-withdraw (RFC 5065 §5, RFC 7606 §7.2; bgpd has no confederation)."""
    path = tuple(confed) + attrs.as_path
    u = Update(attrs=attrs.replace(as_path=path), nlri=[bytes((8, 10))])
    m = decode_one(u.encode(ctx), ctx)
    assert (m.error.code, m.error.subcode, m.error.action) == (3, 11, Action.WITHDRAW)
    assert m.reach() == [] and m.unreach() == [(IPV4_UNICAST, [bytes((8, 10))])]


@FAST
@given(attr_sets())
def test_encoding_is_canonical(attrs):
    """decode then encode gives back the same bytes (the interning key is stable)."""
    wire = Update(attrs=attrs).encode(IBGP)
    assert decode_one(wire, IBGP).encode(IBGP) == wire


@FAST
@given(attr_sets(), st.sampled_from([Context(), IBGP]))
def test_attr_decode_is_interned(attrs, ctx):
    wire = Update(attrs=attrs).encode(ctx)
    a, b = decode_one(wire, ctx), decode_one(wire, ctx)
    assert a.attrs is b.attrs


# --- OPEN -----------------------------------------------------------------------------------

families = st.tuples(u16, u8)
name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", max_size=40)
capability = st.one_of(
    families.map(lambda f: Multiprotocol(*f)),
    st.just(RouteRefreshCap()),
    st.just(EnhancedRouteRefresh()),
    st.just(ExtendedMessage()),
    st.lists(st.tuples(u16, u16, u16), max_size=5).map(lambda e: ExtendedNextHop(tuple(e))),
    st.builds(
        GracefulRestart,
        restart_time=st.integers(0, 4095),
        restarting=st.booleans(),
        notification=st.booleans(),
        families=st.lists(st.tuples(u16, u8, st.booleans()), max_size=4).map(tuple),
    ),
    st.lists(st.tuples(u16, u8, st.integers(1, 3)), max_size=4).map(lambda e: AddPath(tuple(e))),
    st.lists(st.tuples(u16, u8, u8, st.integers(0, 2**24 - 1)), max_size=4).map(
        lambda e: LongLivedGR(tuple(e))
    ),
    st.builds(FQDN, name, name),
    st.builds(
        UnknownCapability,
        st.integers(0, 255).filter(lambda c: c not in (1, 2, 5, 6, 64, 65, 69, 70, 71, 73)),
        st.binary(max_size=255),
    ),
)


@st.composite
def opens(draw):
    asn = draw(asn4)
    caps = draw(st.lists(capability, max_size=12))
    if asn > 0xFFFF or draw(st.booleans()):
        caps.insert(draw(st.integers(0, len(caps))), FourOctetAS(asn))
    hold = draw(st.just(0) | st.integers(3, 0xFFFF))
    rid = str(ipaddress.IPv4Address(draw(st.integers(1, 0xFFFFFFFF))))
    return Open(asn=asn, hold_time=hold, router_id=rid, capabilities=tuple(caps))


@FAST
@given(opens())
def test_open_roundtrip(o):
    wire = o.encode()
    if len(wire) > 4096:
        return  # an OPEN this large cannot be sent at all
    assert decode_one(wire, Context()) == o


# --- UPDATE ---------------------------------------------------------------------------------


def nlri(prefix, addpath: bool, max_size=12):
    item = st.tuples(u32, prefix) if addpath else prefix
    return st.lists(item, max_size=max_size)


def route_attrs(next_hop):
    """Smaller attribute sets for the UPDATE properties (attributes have their own)."""
    return st.builds(
        AttrSet,
        origin=st.integers(0, 2),
        as_path=st.lists(segments(asn4), max_size=2).map(tuple),
        next_hop=next_hop,
        local_pref=u32,
        communities=st.lists(u32, max_size=3).map(tuple),
    )


@st.composite
def updates(draw):
    addpath4, addpath6 = draw(st.booleans()), draw(st.booleans())
    announce = draw(nlri(prefix4(), addpath4))
    attrs = draw(route_attrs(host4 if announce else st.none() | host4))
    mp_reach = mp_unreach = None
    if draw(st.booleans()):
        nh6 = draw(st.one_of(host6, global_and_ll6))
        mp_reach = MpReach(2, 1, nh6, draw(nlri(prefix6(), addpath6, 8)))
    if draw(st.booleans()):
        mp_unreach = MpUnreach(2, 1, draw(nlri(prefix6(), addpath6, 8)))
    withdrawn = draw(nlri(prefix4(), addpath4))
    return Update(withdrawn, attrs, announce, mp_reach, mp_unreach), addpath4, addpath6


def _addpath_ctx(v4: bool, v6: bool) -> Context:
    fams = frozenset(f for f, on in ((IPV4_UNICAST, v4), (IPV6_UNICAST, v6)) if on)
    return Context(ibgp=True, add_path_rx=fams, add_path_tx=fams)


@FAST
@given(updates())
def test_update_roundtrip(case):
    """IPv4 and IPv6 (MP_REACH/MP_UNREACH), each with and without ADD-PATH."""
    u, addpath4, addpath6 = case
    ctx = _addpath_ctx(addpath4, addpath6)
    m = decode_one(u.encode(ctx), ctx)
    assert m.error is None
    assert m == u
    if u.mp_reach is not None:
        assert m.mp_reach.attrs == u.attrs.with_next_hop(u.mp_reach.next_hop)


@FAST
@given(st.lists(prefix4(), max_size=50), st.lists(prefix6(), max_size=50))
def test_withdraw_only_roundtrip(w4, w6):
    u = Update(withdrawn=w4, mp_unreach=MpUnreach(2, 1, w6) if w6 else None)
    m = decode_one(u.encode(), Context())
    assert m == u and m.error is None
    assert m.reach() == []


# --- NOTIFICATION, ROUTE-REFRESH, KEEPALIVE ----------------------------------------------------


@FAST
@given(u8, u8, st.binary(max_size=200))
def test_notification_roundtrip(code, subcode, data):
    n = Notification(code, subcode, data)
    assert decode_one(n.encode(), Context()) == n


@FAST
@given(st.text(max_size=300))
def test_shutdown_communication_roundtrip(text):
    n = decode_one(Notification.cease(2, text).encode(), Context())
    assert len(n.data) <= 256
    if text:
        assert text.startswith(n.shutdown_message)
        assert len(n.shutdown_message.encode()) <= 255


@FAST
@given(u16, u8, u8)
def test_route_refresh_roundtrip(afi, safi, subtype):
    r = RouteRefresh(afi, safi, subtype)
    assert decode_one(r.encode(), Context()) == r


def test_keepalive_roundtrip():
    assert decode_one(Keepalive().encode(), Context()) == Keepalive()


# --- packer ---------------------------------------------------------------------------------


def _many(rnd, count: int, v6: bool, addpath: bool) -> list:
    out = []
    for _ in range(count):
        if v6:
            plen = rnd.randint(0, 128)
            net = ipaddress.IPv6Network((rnd.getrandbits(128), plen), strict=False)
        else:
            plen = rnd.randint(0, 32)
            net = ipaddress.IPv4Network((rnd.getrandbits(32), plen), strict=False)
        p = _key(net)
        out.append((rnd.getrandbits(32), p) if addpath else p)
    return out


FAMILY_NH = {
    # (family, next-hop strategy): IPv4 classic, IPv4 over an IPv6 next hop, IPv6 (1 or 2 addrs)
    "ipv4": (IPV4_UNICAST, host4),
    "ipv4-rfc8950": (IPV4_UNICAST, host6),
    "ipv6": (IPV6_UNICAST, host6),
    "ipv6-ll": (IPV6_UNICAST, global_and_ll6),
}


@st.composite
def pack_cases(draw):
    kind = draw(st.sampled_from(sorted(FAMILY_NH)))
    family, nh = FAMILY_NH[kind]
    addpath = draw(st.booleans())
    extended = draw(st.booleans())
    attrs = draw(attr_sets(next_hop=nh, mandatory=True))
    count = draw(st.integers(1, 3000))
    items = _many(draw(st.randoms(use_true_random=False)), count, family == IPV6_UNICAST, addpath)
    fams = frozenset({family}) if addpath else frozenset()
    ctx = Context(
        ibgp=True,
        add_path_rx=fams,
        add_path_tx=fams,
        extended_message=extended,
        extended_next_hop=frozenset({IPV4_UNICAST}),  # RFC 8950 for "ipv4-rfc8950"
    )
    return family, attrs, items, ctx


def _decode_stream(messages, ctx):
    out = []
    for wire in messages:
        assert len(wire) <= ctx.max_size
        out.append(decode_one(wire, ctx))
    return out


@SLOW
@given(pack_cases())
def test_pack_announce(case):
    family, attrs, items, ctx = case
    messages = pack_announce(family, attrs, items, ctx)
    got = []
    for m in _decode_stream(messages, ctx):
        assert m.error is None
        [(fam, got_attrs, prefixes)] = m.reach()
        assert fam == family
        assert got_attrs == attrs
        got += prefixes
    assert got == items
    # as few messages as fit: every message but the last is nearly full
    for wire in messages[:-1]:
        assert len(wire) > ctx.max_size - 40


@SLOW
@given(pack_cases())
def test_pack_withdraw(case):
    family, _attrs, items, ctx = case
    messages = pack_withdraw(family, items, ctx)
    got = []
    for m in _decode_stream(messages, ctx):
        assert m.error is None
        assert m.reach() == []
        [(fam, prefixes)] = m.unreach()
        assert fam == family
        got += prefixes
    assert got == items


def test_pack_nothing():
    ctx = Context()
    assert pack_announce(IPV4_UNICAST, AttrSet(origin=0, as_path=()), [], ctx) == []
    assert pack_withdraw(IPV6_UNICAST, [], ctx) == []
