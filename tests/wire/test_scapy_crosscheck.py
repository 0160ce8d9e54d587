"""Cross-check against an independent decoder: scapy's BGP layer (a test-only dependency).

Both directions, over many messages from a seeded RNG: our encoder -> scapy's dissector, and
scapy's builder -> our decoder. Each side is reduced to the same plain "view" (prefixes as
text, AS path, next hop, communities, MED, LOCAL_PREF, ...) and the views must agree.

Scapy quirks worked around here: a list attribute (COMMUNITIES, LARGE_COMMUNITY, AS4_PATH)
dissects its first element and leaves the rest as a Raw payload; AGGREGATOR is always read
with a two-octet AS; the IPv4 NLRI dissector guesses ADD-PATH from the bytes, and a /0 prefix
makes it guess wrong, so prefixes here are /1 and longer.
"""

import ipaddress
import logging
import random

import pytest

pytest.importorskip("scapy")
logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.config import conf  # noqa: E402
from scapy.main import load_contrib  # noqa: E402
from scapy.packet import NoPayload, Raw  # noqa: E402

load_contrib("bgp")
from scapy.contrib import bgp as S  # noqa: E402

from bgpd.wire import (  # noqa: E402
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
)
from bgpd.wire import prefix as pfx  # noqa: E402
from bgpd.wire.capabilities import (  # noqa: E402
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    UnknownCapability,
    encode_capability,
)
from bgpd.wire.capabilities import RouteRefresh as RouteRefreshCap  # noqa: E402
from bgpd.wire.constants import (  # noqa: E402
    AS_SEQUENCE,
    AS_SET,
    AS_TRANS,
    IPV4_UNICAST,
)

N = 300  # random messages per direction
IBGP = Context(ibgp=True)
IBGP_AS2 = Context(ibgp=True, as4=False)


@pytest.fixture
def scapy_as4():
    """Set scapy's module-wide AS number size for one test."""
    saved = S.bgp_module_conf.use_2_bytes_asn

    def set_as4(as4: bool):
        S.bgp_module_conf.use_2_bytes_asn = not as4

    yield set_as4
    S.bgp_module_conf.use_2_bytes_asn = saved


def chain(pkt, parse):
    """``pkt`` and the elements scapy left in Raw payloads after it."""
    out = []
    while pkt is not None and not isinstance(pkt, NoPayload | conf.padding_layer):
        if isinstance(pkt, Raw):
            pkt = parse(pkt.load)
            continue
        out.append(pkt)
        pkt = pkt.payload
    return out


def decode_one(wire: bytes, ctx: Context):
    framer = Framer(max_size=ctx.max_size)
    msgs = framer.feed(wire)
    assert framer.error is None and len(msgs) == 1
    return decode_message(*msgs[0], ctx)


# --- random values ---------------------------------------------------------------------------


def r_prefix4(rnd) -> str:
    plen = rnd.randint(1, 32)
    return str(ipaddress.IPv4Network((rnd.getrandbits(32), plen), strict=False))


def r_prefix6(rnd) -> str:
    plen = rnd.randint(1, 128)
    return str(ipaddress.IPv6Network((rnd.getrandbits(128), plen), strict=False))


def r_ip4(rnd) -> str:
    """A usable next hop: not 0/8, 127/8, 224/4 or 240/4 (bgpd.wire.nexthop)."""
    return str(ipaddress.IPv4Address(rnd.choice((1, 126, 128, 223)) << 24 | rnd.getrandbits(24)))


def r_ip6(rnd) -> str:
    """A global unicast address (2000::/3): a usable next hop."""
    return str(ipaddress.IPv6Address(1 << 125 | rnd.getrandbits(125)))


def r_asn(rnd, as4: bool) -> int:
    if as4 and rnd.random() < 0.5:
        return rnd.randint(65536, 2**32 - 1)
    return rnd.randint(1, 65535)


def r_path(rnd, as4: bool):
    # No confederation segments: bgpd is in no confederation, they make the AS_PATH
    # malformed (RFC 5065 §5; tests/wire/test_fixtures.py checks that).
    path = []
    for _ in range(rnd.randint(0, 3)):
        seg_type = rnd.choice((AS_SEQUENCE, AS_SEQUENCE, AS_SET))
        path.append((seg_type, [r_asn(rnd, as4) for _ in range(rnd.randint(1, 6))]))
    return path


def r_ext(rnd) -> bytes:
    """A route target of a type scapy dissects: two-octet AS, IPv4 or four-octet AS."""
    kind = rnd.choice((0x00, 0x01, 0x02))
    return bytes((kind, 0x02)) + rnd.getrandbits(48).to_bytes(6, "big")


def r_spec(rnd, as4: bool) -> dict:
    """A random UPDATE as a plain view (the form both sides are reduced to)."""
    v6 = rnd.random() < 0.4
    announce = rnd.random() < 0.8
    view = {
        "withdrawn": [r_prefix4(rnd) for _ in range(rnd.randint(0, 4))] if not v6 else [],
        "nlri": [],
        "origin": None,
        "as_path": None,
        "next_hop": None,
        "med": None,
        "local_pref": None,
        "aggregator": None,
        "communities": [],
        "large": [],
        "ext": [],
        "originator_id": None,
        "cluster_list": [],
        "mp_reach": None,
        "mp_unreach": None,
    }
    if v6 and rnd.random() < 0.5:
        view["mp_unreach"] = (2, 1, [r_prefix6(rnd) for _ in range(rnd.randint(1, 4))])
    if not announce:
        return view
    view["origin"] = rnd.randint(0, 2)
    view["as_path"] = r_path(rnd, as4)
    view["local_pref"] = rnd.getrandbits(32)
    if v6:
        nhs = (
            [r_ip6(rnd)] if rnd.random() < 0.5 else [r_ip6(rnd), "fe80::" + str(rnd.randint(1, 9))]
        )
        view["mp_reach"] = (2, 1, nhs, [r_prefix6(rnd) for _ in range(rnd.randint(1, 6))])
    else:
        view["next_hop"] = r_ip4(rnd)
        view["nlri"] = [r_prefix4(rnd) for _ in range(rnd.randint(1, 8))]
    if rnd.random() < 0.5:
        view["med"] = rnd.getrandbits(32)
    if rnd.random() < 0.3:
        view["aggregator"] = (r_asn(rnd, as4), r_ip4(rnd))
    view["communities"] = [rnd.getrandbits(32) for _ in range(rnd.choice((0, 0, 1, 3, 70)))]
    view["large"] = [
        (rnd.getrandbits(32), rnd.getrandbits(32), rnd.getrandbits(32))
        for _ in range(rnd.choice((0, 1, 2)))
    ]
    view["ext"] = [r_ext(rnd) for _ in range(rnd.choice((0, 1, 2)))]
    if rnd.random() < 0.3:
        view["originator_id"] = r_ip4(rnd)
        view["cluster_list"] = [r_ip4(rnd) for _ in range(rnd.randint(1, 3))]
    return view


# --- our objects <-> view -------------------------------------------------------------------


def ip(text: str) -> bytes:
    return pfx.addr_from_str(text)


def spec_to_update(view: dict) -> Update:
    attrs = None
    if view["origin"] is not None:
        attrs = AttrSet(
            origin=view["origin"],
            as_path=tuple((t, tuple(a)) for t, a in view["as_path"]),
            next_hop=ip(view["next_hop"]) if view["next_hop"] else None,
            med=view["med"],
            local_pref=view["local_pref"],
            aggregator=(view["aggregator"][0], ip(view["aggregator"][1]))
            if view["aggregator"]
            else None,
            communities=view["communities"],
            large_communities=view["large"],
            ext_communities=view["ext"],
            originator_id=ip(view["originator_id"]) if view["originator_id"] else None,
            cluster_list=[ip(c) for c in view["cluster_list"]],
        )
    mp_reach = mp_unreach = None
    if view["mp_reach"]:
        afi, safi, nhs, prefixes = view["mp_reach"]
        mp_reach = MpReach(
            afi, safi, b"".join(ip(n) for n in nhs), [pfx.from_str(p) for p in prefixes]
        )
    if view["mp_unreach"]:
        afi, safi, prefixes = view["mp_unreach"]
        mp_unreach = MpUnreach(afi, safi, [pfx.from_str(p) for p in prefixes])
    return Update(
        withdrawn=[pfx.from_str(p) for p in view["withdrawn"]],
        attrs=attrs,
        nlri=[pfx.from_str(p) for p in view["nlri"]],
        mp_reach=mp_reach,
        mp_unreach=mp_unreach,
    )


def update_to_view(u: Update) -> dict:
    a = u.attrs or AttrSet()
    nh = a.next_hop
    view = {
        "withdrawn": [pfx.to_str(p, 1) for p in u.withdrawn],
        "nlri": [pfx.to_str(p, 1) for p in u.nlri],
        "origin": a.origin,
        "as_path": [(t, list(asns)) for t, asns in a.as_path] if a.as_path is not None else None,
        "next_hop": pfx.addr_to_str(nh) if nh else None,
        "med": a.med,
        "local_pref": a.local_pref,
        "aggregator": (a.aggregator[0], pfx.addr_to_str(a.aggregator[1])) if a.aggregator else None,
        "communities": list(a.communities),
        "large": list(a.large_communities),
        "ext": list(a.ext_communities),
        "originator_id": pfx.addr_to_str(a.originator_id) if a.originator_id else None,
        "cluster_list": [pfx.addr_to_str(c) for c in a.cluster_list],
        "mp_reach": None,
        "mp_unreach": None,
    }
    if u.mp_reach is not None:
        m = u.mp_reach
        nhs = [pfx.addr_to_str(m.next_hop[i : i + 16]) for i in range(0, len(m.next_hop), 16)]
        view["mp_reach"] = (m.afi, m.safi, nhs, [pfx.to_str(p, m.afi) for p in m.nlri])
    if u.mp_unreach is not None:
        m = u.mp_unreach
        view["mp_unreach"] = (m.afi, m.safi, [pfx.to_str(p, m.afi) for p in m.withdrawn])
    return view


def wire_view(view: dict, as4: bool) -> dict:
    """What a two-octet peer sees on the wire (RFC 6793 §4.2.2), for the scapy comparison."""
    out = dict(view, as4_path=None, as4_aggregator=None)
    if as4:
        return out
    if view["as_path"] is not None:
        out["as_path"] = [
            (t, [a if a <= 0xFFFF else AS_TRANS for a in asns]) for t, asns in view["as_path"]
        ]
        real = [(t, asns) for t, asns in view["as_path"] if t in (AS_SEQUENCE, AS_SET)]
        if any(a > 0xFFFF for _t, asns in real for a in asns):
            out["as4_path"] = real
    if view["aggregator"] and view["aggregator"][0] > 0xFFFF:
        out["aggregator"] = (AS_TRANS, view["aggregator"][1])
        out["as4_aggregator"] = view["aggregator"]
    return out


# --- scapy <-> view ---------------------------------------------------------------------------


def scapy_to_view(pkt, as4: bool) -> dict:
    upd = pkt[S.BGPUpdate]
    view = {
        "withdrawn": [n.prefix for n in upd.withdrawn_routes],
        "nlri": [n.prefix for n in upd.nlri],
        "origin": None,
        "as_path": None,
        "next_hop": None,
        "med": None,
        "local_pref": None,
        "aggregator": None,
        "communities": [],
        "large": [],
        "ext": [],
        "originator_id": None,
        "cluster_list": [],
        "mp_reach": None,
        "mp_unreach": None,
        "as4_path": None,
        "as4_aggregator": None,
    }
    for attr in upd.path_attr:
        code, value = attr.type_code, attr.attribute
        if code == 1:
            view["origin"] = value.origin
        elif code == 2:
            view["as_path"] = [(s.segment_type, list(s.segment_value)) for s in value.segments]
        elif code == 3:
            view["next_hop"] = value.next_hop
        elif code == 4:
            view["med"] = value.med
        elif code == 5:
            view["local_pref"] = value.local_pref
        elif code == 7:
            if as4:  # scapy reads AGGREGATOR with a two-octet AS only
                value = S.BGPPAAS4Aggregator(bytes(value))
            view["aggregator"] = (value.aggregator_asn, value.speaker_address)
        elif code == 8:
            view["communities"] = [c.community for c in chain(value, S.BGPPACommunity)]
        elif code == 9:
            view["originator_id"] = value.originator_id
        elif code == 10:
            view["cluster_list"] = [str(ipaddress.IPv4Address(c)) for c in value.cluster_list]
        elif code == 14:
            if value.nh_addr_len == 32:
                nhs = [value.nh_v6_global, value.nh_v6_link_local]
            else:
                nhs = [value.nh_v6_addr]
            view["mp_reach"] = (value.afi, value.safi, nhs, [n.prefix for n in value.nlri])
        elif code == 15:
            routes = value.afi_safi_specific.withdrawn_routes if value.afi_safi_specific else []
            view["mp_unreach"] = (value.afi, value.safi, [n.prefix for n in routes])
        elif code == 16:
            view["ext"] = [bytes(ec) for ec in value.extended_communities]
        elif code == 17:
            segs = chain(value, S.BGPPAAS4Path)
            view["as4_path"] = [(s.segment_type, list(s.segment_value)) for s in segs]
        elif code == 18:
            view["as4_aggregator"] = (value.aggregator_asn, value.speaker_address)
        elif code == 32:
            segs = [x for s in value.segments for x in chain(s, S.BGPLargeCommunitySegment)]
            view["large"] = [
                (s.global_administrator, s.local_data_part1, s.local_data_part2) for s in segs
            ]
        else:
            raise AssertionError(f"unexpected attribute {code}")
    return view


def _pa(flags: int, code: int, value):
    return S.BGPPathAttr(type_flags=flags, type_code=code, attribute=value)


def _chained(packets):
    out = packets[0]
    for p in packets[1:]:
        out = out / p
    return out


def spec_to_scapy(view: dict, as4: bool) -> bytes:
    attrs = []
    if view["mp_reach"]:
        afi, safi, nhs, prefixes = view["mp_reach"]
        if len(nhs) == 2:
            nh = {"nh_addr_len": 32, "nh_v6_global": nhs[0], "nh_v6_link_local": nhs[1]}
        else:
            nh = {"nh_addr_len": 16, "nh_v6_addr": nhs[0]}
        value = S.BGPPAMPReachNLRI(
            afi=afi, safi=safi, nlri=[S.BGPNLRI_IPv6(prefix=p) for p in prefixes], **nh
        )
        attrs.append(_pa(0x80, 14, value))
    if view["mp_unreach"]:
        afi, safi, prefixes = view["mp_unreach"]
        routes = S.BGPPAMPUnreachNLRI_IPv6(
            withdrawn_routes=[S.BGPNLRI_IPv6(prefix=p) for p in prefixes]
        )
        attrs.append(
            _pa(0x80, 15, S.BGPPAMPUnreachNLRI(afi=afi, safi=safi, afi_safi_specific=routes))
        )
    if view["origin"] is not None:
        attrs.append(_pa(0x40, 1, S.BGPPAOrigin(origin=view["origin"])))
    if view["as_path"] is not None:
        cls = S.BGPPAAS4BytesPath if as4 else S.BGPPAASPath
        segs = [cls.ASPathSegment(segment_type=t, segment_value=a) for t, a in view["as_path"]]
        attrs.append(_pa(0x40, 2, cls(segments=segs)))
    if view["next_hop"]:
        attrs.append(_pa(0x40, 3, S.BGPPANextHop(next_hop=view["next_hop"])))
    if view["med"] is not None:
        attrs.append(_pa(0x80, 4, S.BGPPAMultiExitDisc(med=view["med"])))
    if view["local_pref"] is not None:
        attrs.append(_pa(0x40, 5, S.BGPPALocalPref(local_pref=view["local_pref"])))
    if view["aggregator"]:
        asn, addr = view["aggregator"]
        cls = S.BGPPAAS4Aggregator if as4 else S.BGPPAAggregator
        attrs.append(_pa(0xC0, 7, cls(aggregator_asn=asn, speaker_address=addr)))
    if view["communities"]:
        value = _chained([S.BGPPACommunity(community=c) for c in view["communities"]])
        flags = 0xD0 if len(view["communities"]) * 4 > 255 else 0xC0
        attrs.append(_pa(flags, 8, value))
    if view["originator_id"]:
        attrs.append(_pa(0x80, 9, S.BGPPAOriginatorID(originator_id=view["originator_id"])))
    if view["cluster_list"]:
        ids = [int(ipaddress.IPv4Address(c)) for c in view["cluster_list"]]
        attrs.append(_pa(0x80, 10, S.BGPPAClusterList(cluster_list=ids)))
    if view["ext"]:
        attrs.append(
            _pa(
                0xC0,
                16,
                S.BGPPAExtComms(extended_communities=[S.BGPPAExtCommunity(e) for e in view["ext"]]),
            )
        )
    if view["large"]:
        segs = [
            S.BGPLargeCommunitySegment(
                global_administrator=a, local_data_part1=b, local_data_part2=c
            )
            for a, b, c in view["large"]
        ]
        attrs.append(_pa(0xC0, 32, S.BGPPALargeCommunity(segments=segs)))
    pkt = S.BGPHeader(type=2) / S.BGPUpdate(
        withdrawn_routes=[S.BGPNLRI_IPv4(prefix=p) for p in view["withdrawn"]],
        path_attr=attrs,
        nlri=[S.BGPNLRI_IPv4(prefix=p) for p in view["nlri"]],
    )
    return bytes(pkt)


# --- UPDATE, both directions ------------------------------------------------------------------


@pytest.mark.parametrize("as4", [True, False], ids=["as4", "as2"])
def test_ours_to_scapy(as4, scapy_as4):
    scapy_as4(as4)
    ctx = IBGP if as4 else IBGP_AS2
    rnd = random.Random(4271 + as4)
    for _ in range(N):
        view = r_spec(rnd, as4)
        wire = spec_to_update(view).encode(ctx)
        got = scapy_to_view(S.BGPHeader(wire), as4)
        assert got == wire_view(view, as4), wire.hex()


@pytest.mark.parametrize("as4", [True, False], ids=["as4", "as2"])
def test_scapy_to_ours(as4, scapy_as4):
    scapy_as4(as4)
    ctx = IBGP if as4 else IBGP_AS2
    rnd = random.Random(7606 + as4)
    for _ in range(N):
        view = r_spec(rnd, as4=True)  # real (four-octet) values: to a two-octet peer...
        wire = spec_to_scapy(wire_view(view, as4), as4)  # ...scapy sends AS_TRANS + AS4_*
        if not as4:
            wire = _add_as4_attrs(wire, wire_view(view, as4))
        m = decode_one(wire, ctx)
        assert m.error is None, (m.error, wire.hex())
        assert update_to_view(m) == view, wire.hex()


def _add_as4_attrs(wire: bytes, view: dict) -> bytes:
    """Append AS4_PATH / AS4_AGGREGATOR built by scapy (its builder does not derive them)."""
    extra = []
    if view["as4_path"]:
        segs = [S.BGPPAAS4Path(segment_type=t, segment_value=a) for t, a in view["as4_path"]]
        extra.append(_pa(0xC0, 17, _chained(segs)))
    if view["as4_aggregator"]:
        asn, addr = view["as4_aggregator"]
        extra.append(_pa(0xC0, 18, S.BGPPAAS4Aggregator(aggregator_asn=asn, speaker_address=addr)))
    if not extra:
        return wire
    pkt = S.BGPHeader(wire)
    upd = pkt[S.BGPUpdate]
    rebuilt = S.BGPHeader(type=2) / S.BGPUpdate(
        withdrawn_routes=upd.withdrawn_routes, path_attr=list(upd.path_attr) + extra, nlri=upd.nlri
    )
    return bytes(rebuilt)


def test_add_path_ours_to_scapy():
    """Scapy recognises ADD-PATH NLRI when the path identifiers are small."""
    ctx = Context(add_path_tx=frozenset({IPV4_UNICAST}), add_path_rx=frozenset({IPV4_UNICAST}))
    rnd = random.Random(7911)
    for _ in range(50):
        items = [
            (rnd.randint(1, 2**20), pfx.from_str(r_prefix4(rnd))) for _ in range(rnd.randint(2, 8))
        ]
        attrs = AttrSet(origin=0, as_path=((AS_SEQUENCE, (65000,)),), next_hop=ip("10.0.0.1"))
        wire = Update(attrs=attrs, nlri=items).encode(ctx)
        upd = S.BGPHeader(wire)[S.BGPUpdate]
        got = [(n.nlri_path_id, n.prefix) for n in upd.nlri]
        assert got == [(pid, pfx.to_str(p, 1)) for pid, p in items]
        # and back: scapy's ADD-PATH NLRI decode with ours
        rebuilt = S.BGPHeader(type=2) / S.BGPUpdate(
            path_attr=upd.path_attr,
            nlri=[S.BGPNLRI_IPv4_AP(nlri_path_id=pid, prefix=p) for pid, p in got],
        )
        assert decode_one(bytes(rebuilt), ctx).nlri == items


# --- OPEN, NOTIFICATION, ROUTE-REFRESH, KEEPALIVE ------------------------------------------------


def _cap_view_ours(c):
    if isinstance(c, Multiprotocol):
        return ("mp", c.afi, c.safi)
    if isinstance(c, FourOctetAS):
        return ("as4", c.asn)
    if isinstance(c, GracefulRestart):
        flags = (8 if c.restarting else 0) | (4 if c.notification else 0)
        fams = [(a, s, 0x80 if f else 0) for a, s, f in c.families]
        return ("gr", flags, c.restart_time, fams)
    raw = encode_capability(c)
    return ("raw", raw[0], raw[2:])


def _cap_view_scapy(c):
    if isinstance(c, S.BGPCapMultiprotocol):
        return ("mp", c.afi, c.safi)
    if isinstance(c, S.BGPCapFourBytesASN):
        return ("as4", c.asn)
    if isinstance(c, S.BGPCapGracefulRestart):
        return (
            "gr",
            c.restart_flags,
            c.restart_time,
            [(e.afi, e.safi, e.flags) for e in _gr_entries(c)],
        )
    raw = bytes(c)
    return ("raw", raw[0], raw[2 : 2 + raw[1]])


def _gr_entries(c):
    tuple_cls = S.BGPCapGracefulRestart.GRTuple
    return [e for first in c.entries for e in chain(first, tuple_cls)]


def _scapy_caps(param):
    """Scapy dissects the first capability of a parameter and leaves the rest raw (and a
    graceful restart capability is not bounded by its length), so each capability TLV is
    handed to it separately."""
    raw = bytes(param)[2:]
    out = []
    while raw:
        out.append(S.BGPCapability(raw[: 2 + raw[1]]))
        raw = raw[2 + raw[1] :]
    return out


def r_caps(rnd, asn: int):
    caps = []
    for _ in range(rnd.randint(0, 6)):
        kind = rnd.randint(0, 4)
        if kind == 0:
            caps.append(Multiprotocol(rnd.choice((1, 2)), rnd.choice((1, 2, 4, 128))))
        elif kind == 1:
            caps.append(RouteRefreshCap())
        elif kind == 2:
            fams = tuple(
                (rnd.choice((1, 2)), 1, rnd.random() < 0.5) for _ in range(rnd.randint(0, 3))
            )
            caps.append(
                GracefulRestart(rnd.randint(0, 4095), rnd.random() < 0.5, rnd.random() < 0.5, fams)
            )
        elif kind == 3:
            caps.append(
                UnknownCapability(rnd.choice((128, 200, 239)), rnd.randbytes(rnd.randint(0, 20)))
            )
        else:
            caps.append(FourOctetAS(asn))
    if asn > 0xFFFF and not any(isinstance(c, FourOctetAS) for c in caps):
        caps.append(FourOctetAS(asn))
    return tuple(caps)


def test_open_both_ways():
    rnd = random.Random(4760)
    for _ in range(N):
        asn = rnd.randint(1, 2**32 - 1) if rnd.random() < 0.5 else rnd.randint(1, 65535)
        o = Open(
            asn=asn,
            hold_time=rnd.choice((0, 3, 90, 65535)),
            router_id=r_ip4(rnd),
            capabilities=r_caps(rnd, asn),
        )
        # ours -> scapy
        p = S.BGPHeader(o.encode())[S.BGPOpen]
        assert (p.version, p.hold_time, p.bgp_id) == (4, o.hold_time, o.router_id)
        assert p.my_as == (asn if asn <= 0xFFFF else AS_TRANS)
        caps = [c for param in p.opt_params for c in _scapy_caps(param)]
        assert [_cap_view_scapy(c) for c in caps] == [_cap_view_ours(c) for c in o.capabilities]
        # scapy -> ours, one capability per optional parameter (as scapy builds them)
        params = [
            S.BGPOptParam(param_type=2, param_value=S.BGPCapability(encode_capability(c)))
            for c in o.capabilities
        ]
        built = S.BGPHeader(type=1) / S.BGPOpen(
            version=4, my_as=p.my_as, hold_time=o.hold_time, bgp_id=o.router_id, opt_params=params
        )
        assert decode_one(bytes(built), Context()) == o


def test_open_scapy_capability_classes():
    built = S.BGPHeader(type=1) / S.BGPOpen(
        my_as=AS_TRANS,
        hold_time=90,
        bgp_id="192.0.2.1",
        opt_params=[
            S.BGPOptParam(param_value=S.BGPCapMultiprotocol(afi=2, safi=1)),
            S.BGPOptParam(param_value=S.BGPCapFourBytesASN(asn=4200000000)),
            S.BGPOptParam(
                param_value=S.BGPCapGracefulRestart(
                    restart_flags=8,
                    restart_time=300,
                    entries=[S.BGPCapGracefulRestart.GRTuple(afi=1, safi=1, flags=0x80)],
                )
            ),
            S.BGPOptParam(param_value=S.BGPCapGeneric(code=2)),
        ],
    )
    o = decode_one(bytes(built), Context())
    assert o == Open(
        asn=4200000000,
        hold_time=90,
        router_id="192.0.2.1",
        capabilities=(
            Multiprotocol(2, 1),
            FourOctetAS(4200000000),
            GracefulRestart(300, True, False, ((1, 1, True),)),
            RouteRefreshCap(),
        ),
    )


def test_notification_both_ways():
    rnd = random.Random(9003)
    for _ in range(N):
        n = Notification(rnd.randint(1, 7), rnd.randint(0, 11), rnd.randbytes(rnd.randint(0, 40)))
        p = S.BGPHeader(n.encode())[S.BGPNotification]
        assert (p.error_code, p.error_subcode, p.data or b"") == (n.code, n.subcode, n.data)
        built = S.BGPHeader(type=3) / S.BGPNotification(
            error_code=n.code, error_subcode=n.subcode, data=n.data
        )
        assert decode_one(bytes(built), Context()) == n


def test_route_refresh_both_ways():
    for afi, safi, subtype in [(1, 1, 0), (2, 1, 0), (1, 1, 1), (2, 1, 2), (1, 2, 0)]:
        r = RouteRefresh(afi, safi, subtype)
        p = S.BGPHeader(r.encode())[S.BGPRouteRefresh]
        assert (p.afi, p.safi, p.subtype) == (afi, safi, subtype)
        built = S.BGPHeader(type=5) / S.BGPRouteRefresh(afi=afi, safi=safi, subtype=subtype)
        assert decode_one(bytes(built), Context()) == r


def test_keepalive_both_ways():
    assert bytes(S.BGPKeepAlive()) == Keepalive().encode()
    assert isinstance(S.BGPHeader(Keepalive().encode()), S.BGPKeepAlive)
