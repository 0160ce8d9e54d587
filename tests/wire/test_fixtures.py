"""Codec fixtures: (annotated hex, expected object) pairs, tested both ways.

Every fixture is decoded (bytes -> Framer -> decode_message == expected) and encoded
(expected.encode(ctx) == bytes), in the shape of holo-bgp's tests/packet. Fixtures that are
not canonical for our encoder (a peer may choose another valid encoding) are decode-only and
say so. Hex is written one field per line; ``#`` starts a comment.
"""

from dataclasses import dataclass, field

import pytest

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
    end_of_rib,
)
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import tlv
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
    AS_TRANS,
    IPV4_UNICAST,
    IPV6_UNICAST,
    NO_EXPORT,
)


def h(text: str) -> bytes:
    """Annotated hex -> bytes: ``#`` comments and whitespace are dropped."""
    return bytes.fromhex(
        "".join(line.split("#", 1)[0] for line in text.splitlines()).replace(" ", "")
    )


def P(text: str) -> bytes:
    return pfx.from_str(text)


def ip(text: str) -> bytes:
    return pfx.addr_from_str(text)


MARKER = "ffffffffffffffffffffffffffffffff  # marker\n"
CTX = Context()
IBGP = Context(ibgp=True)
AS2 = Context(as4=False)
AP4 = Context(add_path_rx=frozenset({IPV4_UNICAST}), add_path_tx=frozenset({IPV4_UNICAST}))
AP6 = Context(add_path_rx=frozenset({IPV6_UNICAST}), add_path_tx=frozenset({IPV6_UNICAST}))
ENH = Context(extended_next_hop=frozenset({IPV4_UNICAST}))  # RFC 8950 negotiated


@dataclass
class Fixture:
    name: str
    wire: bytes
    expected: object
    ctx: Context = field(default_factory=Context)
    both_ways: bool = True


def _open(caps, asn=65000, hold=180, rid="10.0.0.1"):
    return Open(asn=asn, hold_time=hold, router_id=rid, capabilities=tuple(caps))


FIXTURES = [
    # --- KEEPALIVE ------------------------------------------------------------------------
    Fixture(
        "keepalive",
        h(MARKER + "0013  # length 19\n04  # type KEEPALIVE"),
        Keepalive(),
    ),
    # --- OPEN, one per capability ---------------------------------------------------------
    Fixture(
        "open-multiprotocol",
        h(
            MARKER
            + """
            002b        # length 43
            01          # type OPEN
            04          # version 4
            fde8        # my AS 65000
            00b4        # hold time 180
            0a000001    # BGP identifier 10.0.0.1
            0e          # optional parameters length 14
            02 0c       # parameter: capabilities, length 12
            01 04 0001 00 01   # multiprotocol: AFI 1 (IPv4), reserved, SAFI 1 (unicast)
            01 04 0002 00 01   # multiprotocol: AFI 2 (IPv6), reserved, SAFI 1 (unicast)
            """
        ),
        _open([Multiprotocol(1, 1), Multiprotocol(2, 1)]),
    ),
    Fixture(
        "open-route-refresh",
        h(
            MARKER
            + """
            0021 01 04 fde8 00b4 0a000001   # header (33, OPEN), v4, AS 65000, hold 180, id
            04          # optional parameters length 4
            02 02       # capabilities, length 2
            02 00       # route refresh (RFC 2918), no value
            """
        ),
        _open([RouteRefreshCap()]),
    ),
    Fixture(
        "open-extended-next-hop",
        h(
            MARKER
            + """
            0027 01 04 fde8 00b4 0a000001   # header (39, OPEN), v4, AS 65000, hold 180, id
            0a          # optional parameters length 10
            02 08       # capabilities, length 8
            05 06       # extended next hop (RFC 8950), length 6
            0001 0001 0002   # NLRI AFI 1, NLRI SAFI 1, next-hop AFI 2
            """
        ),
        _open([ExtendedNextHop(((1, 1, 2),))]),
    ),
    Fixture(
        "open-extended-message",
        h(
            MARKER
            + """
            0021 01 04 fde8 00b4 0a000001   # header (33, OPEN), v4, AS 65000, hold 180, id
            04 02 02    # optional parameters length 4; capabilities, length 2
            06 00       # extended message (RFC 8654)
            """
        ),
        _open([ExtendedMessage()]),
    ),
    Fixture(
        "open-graceful-restart",
        h(
            MARKER
            + """
            002b 01 04 fde8 00b4 0a000001   # header (43, OPEN), v4, AS 65000, hold 180, id
            0e 02 0c    # optional parameters length 14; capabilities, length 12
            40 0a       # graceful restart (RFC 4724), length 10
            c078        # R bit (0x8000) + N bit (0x4000, RFC 8538), restart time 120
            0001 01 80  # IPv4 unicast, forwarding state preserved
            0002 01 00  # IPv6 unicast, forwarding state not preserved
            """
        ),
        _open(
            [
                GracefulRestart(
                    restart_time=120,
                    restarting=True,
                    notification=True,
                    families=((1, 1, True), (2, 1, False)),
                )
            ]
        ),
    ),
    Fixture(
        "open-graceful-restart-helper",
        h(
            MARKER
            + """
            0023 01 04 fde8 00b4 0a000001   # header (35, OPEN), v4, AS 65000, hold 180, id
            06 02 04    # optional parameters length 6; capabilities, length 4
            40 02       # graceful restart, length 2: no family (helper only)
            005a        # no flags, restart time 90
            """
        ),
        _open([GracefulRestart(restart_time=90)]),
    ),
    Fixture(
        "open-four-octet-as",
        h(
            MARKER
            + """
            0025        # length 37
            01 04       # OPEN, version 4
            5ba0        # my AS: AS_TRANS (23456)
            00b4 0a000001   # hold 180, id 10.0.0.1
            08 02 06    # optional parameters length 8; capabilities, length 6
            41 04       # four-octet AS (RFC 6793), length 4
            fa56ea00    # AS 4200000000
            """
        ),
        Open(
            asn=4200000000,
            hold_time=180,
            router_id="10.0.0.1",
            capabilities=(FourOctetAS(4200000000),),
        ),
    ),
    Fixture(
        "open-add-path",
        h(
            MARKER
            + """
            0029 01 04 fde8 00b4 0a000001   # header (41, OPEN), v4, AS 65000, hold 180, id
            0c 02 0a    # optional parameters length 12; capabilities, length 10
            45 08       # ADD-PATH (RFC 7911), length 8
            0001 01 03  # IPv4 unicast, send and receive
            0002 01 01  # IPv6 unicast, receive
            """
        ),
        _open([AddPath(((1, 1, 3), (2, 1, 1)))]),
    ),
    Fixture(
        "open-enhanced-route-refresh",
        h(
            MARKER
            + """
            0021 01 04 fde8 00b4 0a000001   # header (33, OPEN), v4, AS 65000, hold 180, id
            04 02 02    # optional parameters length 4; capabilities, length 2
            46 00       # enhanced route refresh (RFC 7313)
            """
        ),
        _open([EnhancedRouteRefresh()]),
    ),
    Fixture(
        "open-long-lived-gr",
        h(
            MARKER
            + """
            0028 01 04 fde8 00b4 0a000001   # header (40, OPEN), v4, AS 65000, hold 180, id
            0b 02 09    # optional parameters length 11; capabilities, length 9
            47 07       # long-lived graceful restart (RFC 9494), length 7
            0001 01     # IPv4 unicast
            80          # flags: F (forwarding state preserved)
            000e10      # long-lived stale time 3600 s
            """
        ),
        _open([LongLivedGR(((1, 1, 0x80, 3600),))]),
    ),
    Fixture(
        "open-fqdn",
        h(
            MARKER
            + """
            0030 01 04 fde8 00b4 0a000001   # header (48, OPEN), v4, AS 65000, hold 180, id
            13 02 11    # optional parameters length 19; capabilities, length 17
            49 0f       # FQDN (draft-walton-bgp-hostname-capability), length 15
            02 7231     # hostname length 2, "r1"
            0b 6578616d706c652e6e6574   # domain length 11, "example.net"
            """
        ),
        _open([FQDN("r1", "example.net")]),
    ),
    Fixture(
        "open-unknown-capability",
        h(
            MARKER
            + """
            0023 01 04 fde8 00b4 0a000001   # header (35, OPEN), v4, AS 65000, hold 180, id
            06 02 04    # optional parameters length 6; capabilities, length 4
            ef 02 0102  # capability 239 (experimental), length 2, kept raw
            """
        ),
        _open([UnknownCapability(239, b"\x01\x02")]),
    ),
    Fixture(
        "open-no-capabilities",
        h(MARKER + "001d 01 04 fde8 00b4 0a000001  # header (29, OPEN), v4, AS, hold, id\n00"),
        _open([]),
    ),
    Fixture(
        # RFC 9072: 254 octets of capabilities do not fit a one-octet parameter length.
        "open-extended-optional-parameters",
        h(
            MARKER
            + """
            0121        # length 289
            01 04 fde8 00b4 0a000001   # OPEN, version 4, AS 65000, hold 180, id
            ff          # non-extended optional parameters length: 255 (RFC 9072 marker)
            ff          # non-extended parameter type: 255 (extended)
            0101        # extended optional parameters length 257
            02 00fe     # parameter: capabilities, two-octet length 254
            02 00       # route refresh
            ef fa       # capability 239, length 250
            """
            + "ab" * 250
        ),
        _open([RouteRefreshCap(), UnknownCapability(239, b"\xab" * 250)]),
    ),
    Fixture(
        # Several optional parameters of one capability each (as some peers send): decode only,
        # our encoder puts every capability in one parameter.
        "open-one-parameter-per-capability",
        h(
            MARKER
            + """
            0025 01 04 fde8 00b4 0a000001   # header (37, OPEN), v4, AS 65000, hold 180, id
            08          # optional parameters length 8
            02 02 02 00 # capabilities, length 2: route refresh
            02 02 80 00 # capabilities, length 2: Cisco route refresh (128), unknown to us
            """
        ),
        _open([RouteRefreshCap(), UnknownCapability(128, b"")]),
        both_ways=False,
    ),
    Fixture(
        # RFC 9072 form although the capabilities would fit: accepted, decode only.
        "open-extended-optional-parameters-short",
        h(
            MARKER
            + """
            0025 01 04 fde8 00b4 0a000001   # header (37, OPEN), v4, AS 65000, hold 180, id
            ff ff 0005  # extended optional parameters, length 5
            02 0002     # capabilities, two-octet length 2
            02 00       # route refresh
            """
        ),
        _open([RouteRefreshCap()]),
        both_ways=False,
    ),
    # --- UPDATE: IPv4 --------------------------------------------------------------------
    Fixture(
        "update-ipv4-announce",
        h(
            MARKER
            + """
            0041 02     # length 65, UPDATE
            0000        # withdrawn routes length 0
            0023        # total path attribute length 35
            40 01 01 00 # ORIGIN (well-known, transitive), length 1: IGP
            40 02 0e    # AS_PATH, length 14
            02 03 0000fde8 0000fde9 0000fdea   # AS_SEQUENCE of 3: 65000 65001 65002
            40 03 04 0a000001   # NEXT_HOP 10.0.0.1
            80 04 04 00000064   # MULTI_EXIT_DISC (optional), 100
            18 c0a801   # NLRI 192.168.1.0/24
            10 0a01     # NLRI 10.1.0.0/16
            """
        ),
        Update(
            attrs=AttrSet(
                origin=0,
                as_path=((AS_SEQUENCE, (65000, 65001, 65002)),),
                next_hop=ip("10.0.0.1"),
                med=100,
            ),
            nlri=[P("192.168.1.0/24"), P("10.1.0.0/16")],
        ),
    ),
    Fixture(
        "update-ipv4-withdraw",
        h(
            MARKER
            + """
            001e 02     # length 30, UPDATE
            0007        # withdrawn routes length 7
            18 c0a801   # 192.168.1.0/24
            10 0a01     # 10.1.0.0/16
            0000        # total path attribute length 0
            """
        ),
        Update(withdrawn=[P("192.168.1.0/24"), P("10.1.0.0/16")]),
    ),
    Fixture(
        "update-ipv4-default-route-and-host",
        h(
            MARKER
            + """
            0032 02 0000 0015   # length 50, UPDATE, no withdrawn, attributes 21
            40 01 01 02 # ORIGIN incomplete
            40 02 00    # AS_PATH empty (iBGP-originated)
            40 03 04 0a000001   # NEXT_HOP 10.0.0.1
            40 05 04 00000064   # LOCAL_PREF 100
            00          # NLRI 0.0.0.0/0
            20 c0000201 # NLRI 192.0.2.1/32
            """
        ),
        Update(
            attrs=AttrSet(origin=2, as_path=(), next_hop=ip("10.0.0.1"), local_pref=100),
            nlri=[P("0.0.0.0/0"), P("192.0.2.1/32")],
        ),
        ctx=IBGP,
    ),
    Fixture(
        "update-ipv4-add-path",
        h(
            MARKER
            + """
            003b 02 0000 0014   # length 59, UPDATE, no withdrawn, attributes 20
            40 01 01 00 # ORIGIN IGP
            40 02 06 02 01 0000fde8   # AS_PATH: AS_SEQUENCE 65000
            40 03 04 0a000001   # NEXT_HOP 10.0.0.1
            00000001 18 c0a801   # path id 1, 192.168.1.0/24
            00000002 18 c0a801   # path id 2, 192.168.1.0/24
            """
        ),
        Update(
            attrs=AttrSet(origin=0, as_path=((AS_SEQUENCE, (65000,)),), next_hop=ip("10.0.0.1")),
            nlri=[(1, P("192.168.1.0/24")), (2, P("192.168.1.0/24"))],
        ),
        ctx=AP4,
    ),
    Fixture(
        "update-ipv4-add-path-withdraw",
        h(
            MARKER
            + """
            001f 02     # length 31, UPDATE
            0008        # withdrawn routes length 8
            00000007 18 c0a801   # path id 7, 192.168.1.0/24
            0000        # no attributes
            """
        ),
        Update(withdrawn=[(7, P("192.168.1.0/24"))]),
        ctx=AP4,
    ),
    # --- UPDATE: IPv6 (RFC 4760) ------------------------------------------------------------
    Fixture(
        "update-ipv6-mp-reach-global-and-link-local",
        h(
            MARKER
            + """
            005c 02     # length 92, UPDATE
            0000        # withdrawn routes length 0
            0045        # total path attribute length 69
            80 0e 35    # MP_REACH_NLRI (optional), length 53
            0002 01     # AFI 2 (IPv6), SAFI 1 (unicast)
            20          # next hop length 32: global + link-local (RFC 2545)
            20010db8000000000000000000000001   # 2001:db8::1
            fe800000000000000000000000000001   # fe80::1
            00          # reserved
            30 20010db80001       # 2001:db8:1::/48
            40 20010db800020000   # 2001:db8:2::/64
            40 01 01 00 # ORIGIN IGP
            40 02 06 02 01 0000fde8   # AS_PATH: AS_SEQUENCE 65000
            """
        ),
        Update(
            attrs=AttrSet(origin=0, as_path=((AS_SEQUENCE, (65000,)),)),
            mp_reach=MpReach(
                2,
                1,
                ip("2001:db8::1") + ip("fe80::1"),
                [P("2001:db8:1::/48"), P("2001:db8:2::/64")],
            ),
        ),
    ),
    Fixture(
        "update-ipv6-mp-unreach",
        h(
            MARKER
            + """
            0024 02     # length 36, UPDATE
            0000        # withdrawn routes length 0
            000d        # total path attribute length 13
            80 0f 0a    # MP_UNREACH_NLRI, length 10
            0002 01     # IPv6 unicast
            30 20010db80001   # 2001:db8:1::/48
            """
        ),
        Update(mp_unreach=MpUnreach(2, 1, [P("2001:db8:1::/48")])),
    ),
    Fixture(
        "update-ipv6-add-path",
        h(
            MARKER
            + """
            0052 02 0000 003b   # length 82, UPDATE, no withdrawn, attributes 59
            80 0e 2b    # MP_REACH_NLRI, length 43
            0002 01 10  # IPv6 unicast, next hop length 16
            20010db8000000000000000000000001   # 2001:db8::1
            00          # reserved
            00000001 30 20010db80001   # path id 1, 2001:db8:1::/48
            00000002 30 20010db80001   # path id 2, 2001:db8:1::/48
            40 01 01 00 # ORIGIN IGP
            40 02 06 02 01 0000fde8   # AS_PATH: AS_SEQUENCE 65000
            """
        ),
        Update(
            attrs=AttrSet(origin=0, as_path=((AS_SEQUENCE, (65000,)),)),
            mp_reach=MpReach(
                2,
                1,
                ip("2001:db8::1"),
                [(1, P("2001:db8:1::/48")), (2, P("2001:db8:1::/48"))],
            ),
        ),
        ctx=AP6,
    ),
    Fixture(
        "update-ipv6-add-path-unreach",
        h(
            MARKER
            + """
            0028 02 0000 0011   # length 40, UPDATE, no withdrawn, attributes 17
            80 0f 0e 0002 01    # MP_UNREACH_NLRI, length 14, IPv6 unicast
            00000009 30 20010db80001   # path id 9, 2001:db8:1::/48
            """
        ),
        Update(mp_unreach=MpUnreach(2, 1, [(9, P("2001:db8:1::/48"))])),
        ctx=AP6,
    ),
    Fixture(
        "update-ipv4-over-ipv6-next-hop",
        h(
            MARKER
            + """
            0047 02 0000 0030   # length 71, UPDATE, no withdrawn, attributes 48
            80 0e 19    # MP_REACH_NLRI, length 25
            0001 01 10  # IPv4 unicast, next hop length 16 (RFC 8950)
            20010db8000000000000000000000001   # 2001:db8::1
            00          # reserved
            18 c0a801   # 192.168.1.0/24
            40 01 01 00 # ORIGIN IGP
            40 02 06 02 01 0000fde8   # AS_PATH: AS_SEQUENCE 65000
            c0 08 04 fde80064   # COMMUNITIES 65000:100
            """
        ),
        Update(
            attrs=AttrSet(origin=0, as_path=((AS_SEQUENCE, (65000,)),), communities=(0xFDE80064,)),
            mp_reach=MpReach(1, 1, ip("2001:db8::1"), [P("192.168.1.0/24")]),
        ),
        ctx=ENH,
    ),
    # --- End-of-RIB (RFC 4724 §2) ------------------------------------------------------------
    Fixture("eor-ipv4", h(MARKER + "0017 02  # length 23, UPDATE\n0000 0000"), Update()),
    Fixture(
        "eor-ipv6",
        h(
            MARKER
            + """
            001d 02     # length 29, UPDATE
            0000 0006   # no withdrawn routes; attributes 6
            80 0f 03 0002 01   # MP_UNREACH_NLRI, length 3, IPv6 unicast, no NLRI
            """
        ),
        Update(mp_unreach=MpUnreach(2, 1, [])),
    ),
    # --- UPDATE: every path attribute -----------------------------------------------------
    Fixture(
        "update-every-attribute",
        h(
            MARKER
            + """
            009c 02     # length 156, UPDATE
            0000        # withdrawn routes length 0
            0083        # total path attribute length 131
            40 01 01 01 # ORIGIN EGP
            40 02 14    # AS_PATH, length 20 (no confederation segments: RFC 5065 §5)
            02 02 0000fde8 00010000   # AS_SEQUENCE: 65000 65536
            01 02 00000064 000000c8   # AS_SET: {100 200}
            40 03 04 c0000201         # NEXT_HOP 192.0.2.1
            80 04 04 00000000         # MULTI_EXIT_DISC 0
            40 05 04 000000c8         # LOCAL_PREF 200
            40 06 00                  # ATOMIC_AGGREGATE
            c0 07 08 0000fde8 c0000201   # AGGREGATOR: AS 65000, 192.0.2.1 (four-octet)
            c0 08 08 fde80064 ffffff01   # COMMUNITIES: 65000:100, NO_EXPORT
            80 09 04 0a000002         # ORIGINATOR_ID 10.0.0.2
            80 0a 08 0a000003 0a000004   # CLUSTER_LIST: 10.0.0.3 10.0.0.4
            c0 10 10                  # EXTENDED_COMMUNITIES, length 16
            0002fde800000064          # route target 65000:100
            010300000001fde8          # IPv4-address-specific (route origin) 0.0.0.1:65000
            c0 20 0c 0000fde8 00000001 00000002   # LARGE_COMMUNITY 65000:1:2
            e0 f1 03 aabbcc           # unknown optional transitive 241, Partial set, kept
            08 0a       # NLRI 10.0.0.0/8
            """
        ),
        Update(
            attrs=AttrSet(
                origin=1,
                as_path=(
                    (AS_SEQUENCE, (65000, 65536)),
                    (AS_SET, (100, 200)),
                ),
                next_hop=ip("192.0.2.1"),
                med=0,
                local_pref=200,
                atomic_aggregate=True,
                aggregator=(65000, ip("192.0.2.1")),
                communities=(0xFDE80064, NO_EXPORT),
                originator_id=ip("10.0.0.2"),
                cluster_list=(ip("10.0.0.3"), ip("10.0.0.4")),
                ext_communities=(h("0002fde800000064"), h("010300000001fde8")),
                large_communities=((65000, 1, 2),),
                unknown=((0xE0, 0xF1, h("aabbcc")),),
            ),
            nlri=[P("10.0.0.0/8")],
        ),
        ctx=IBGP,
    ),
    Fixture(
        "update-two-octet-as-path-and-aggregator",
        h(
            MARKER
            + """
            003a 02 0000 0021   # length 58, UPDATE, no withdrawn, attributes 33
            40 01 01 00 # ORIGIN IGP
            40 02 0a    # AS_PATH, length 10 (two-octet ASNs: no four-octet capability)
            02 02 fde8 fde9   # AS_SEQUENCE: 65000 65001
            01 01 0064  # AS_SET: {100}
            40 03 04 0a000001   # NEXT_HOP 10.0.0.1
            c0 07 06 fde8 c0000201   # AGGREGATOR: AS 65000 (two octets), 192.0.2.1
            08 0a       # NLRI 10.0.0.0/8
            """
        ),
        Update(
            attrs=AttrSet(
                origin=0,
                as_path=((AS_SEQUENCE, (65000, 65001)), (AS_SET, (100,))),
                next_hop=ip("10.0.0.1"),
                aggregator=(65000, ip("192.0.2.1")),
            ),
            nlri=[P("10.0.0.0/8")],
        ),
        ctx=AS2,
    ),
    Fixture(
        "update-extended-length-communities",
        h(
            MARKER
            + """
            0122 02 0000 010b   # length 290, UPDATE, no withdrawn, attributes 267
            40 01 01 00 # ORIGIN IGP
            40 02 00    # AS_PATH empty
            d0 08 0100  # COMMUNITIES, flags optional+transitive+extended length, length 256
            """
            + "".join(f"fde8{n:04x}" for n in range(64))
            + """
            """
        ),
        Update(
            attrs=AttrSet(
                origin=0, as_path=(), communities=tuple(0xFDE80000 + n for n in range(64))
            )
        ),
    ),
    # --- NOTIFICATION ----------------------------------------------------------------------
    Fixture(
        "notification-shutdown-communication",
        h(
            MARKER
            + """
            0021 03     # length 33, NOTIFICATION
            06 02       # Cease / Administrative Shutdown
            0b 6d61696e74656e616e6365   # RFC 9003: length 11, "maintenance"
            """
        ),
        Notification(6, 2, b"\x0bmaintenance"),
    ),
    Fixture(
        "notification-hold-timer-expired",
        h(MARKER + "0015 03  # length 21, NOTIFICATION\n04 00  # Hold Timer Expired"),
        Notification(4, 0),
    ),
    Fixture(
        "notification-with-data",
        h(
            MARKER
            + """
            0017 03     # length 23, NOTIFICATION
            02 02       # OPEN Message Error / Bad Peer AS
            fde8        # data: the AS we did not expect
            """
        ),
        Notification(2, 2, b"\xfd\xe8"),
    ),
    # --- ROUTE-REFRESH (RFC 2918, RFC 7313) -----------------------------------------------------
    Fixture(
        "route-refresh",
        h(MARKER + "0017 05  # length 23, ROUTE-REFRESH\n0001 00 01  # IPv4, normal, unicast"),
        RouteRefresh(1, 1),
    ),
    Fixture(
        "route-refresh-borr",
        h(MARKER + "0017 05  # length 23, ROUTE-REFRESH\n0002 01 01  # IPv6, BoRR, unicast"),
        RouteRefresh(2, 1, 1),
    ),
    Fixture(
        "route-refresh-eorr",
        h(MARKER + "0017 05  # length 23, ROUTE-REFRESH\n0002 02 01  # IPv6, EoRR, unicast"),
        RouteRefresh(2, 1, 2),
    ),
]


def decode_one(wire: bytes, ctx: Context):
    framer = Framer(max_size=ctx.max_size)
    msgs = framer.feed(wire)
    assert framer.error is None
    assert len(msgs) == 1 and len(framer) == 0
    msg_type, body = msgs[0]
    return decode_message(msg_type, body, ctx)


@pytest.mark.parametrize("fx", FIXTURES, ids=lambda f: f.name)
def test_decode(fx: Fixture):
    msg = decode_one(fx.wire, fx.ctx)
    assert msg == fx.expected
    assert getattr(msg, "error", None) is None


@pytest.mark.parametrize("fx", [f for f in FIXTURES if f.both_ways], ids=lambda f: f.name)
def test_encode(fx: Fixture):
    assert fx.expected.encode(fx.ctx).hex() == fx.wire.hex()


@pytest.mark.parametrize("fx", [f for f in FIXTURES if not f.both_ways], ids=lambda f: f.name)
def test_decode_only_reencodes_canonically(fx: Fixture):
    msg = decode_one(fx.wire, fx.ctx)
    assert decode_one(msg.encode(fx.ctx), fx.ctx) == fx.expected


# --- details the equality above does not cover ------------------------------------------------


def fixture(name: str) -> Fixture:
    return next(f for f in FIXTURES if f.name == name)


def test_open_fields():
    msg = decode_one(fixture("open-four-octet-as").wire, CTX)
    assert msg.my_as_field == AS_TRANS
    assert msg.four_octet_as == 4200000000
    assert msg.asn == 4200000000


def test_mp_reach_attrs_carry_next_hop():
    fx = fixture("update-ipv6-mp-reach-global-and-link-local")
    msg = decode_one(fx.wire, fx.ctx)
    nh = ip("2001:db8::1") + ip("fe80::1")
    assert msg.mp_reach.attrs.next_hop == nh
    assert msg.mp_reach.attrs.as_path == ((AS_SEQUENCE, (65000,)),)
    assert msg.reach() == [
        (IPV6_UNICAST, msg.mp_reach.attrs, [P("2001:db8:1::/48"), P("2001:db8:2::/64")])
    ]


def test_reach_unreach():
    fx = fixture("update-ipv4-announce")
    msg = decode_one(fx.wire, fx.ctx)
    assert msg.reach() == [(IPV4_UNICAST, msg.attrs, [P("192.168.1.0/24"), P("10.1.0.0/16")])]
    assert msg.unreach() == []
    fx = fixture("update-ipv6-mp-unreach")
    msg = decode_one(fx.wire, fx.ctx)
    assert msg.reach() == []
    assert msg.unreach() == [(IPV6_UNICAST, [P("2001:db8:1::/48")])]
    assert msg.eor() is None


def test_end_of_rib():
    for name, family in (("eor-ipv4", IPV4_UNICAST), ("eor-ipv6", IPV6_UNICAST)):
        fx = fixture(name)
        assert decode_one(fx.wire, fx.ctx).eor() == family
        assert end_of_rib(family) == fx.wire
    for fx in FIXTURES:
        if isinstance(fx.expected, Update) and not fx.name.startswith("eor-"):
            assert decode_one(fx.wire, fx.ctx).eor() is None, fx.name


def test_shutdown_communication():
    n = Notification.cease(2, "maintenance")
    assert n == Notification(6, 2, b"\x0bmaintenance")
    assert n.shutdown_message == "maintenance"
    assert Notification(4, 0).shutdown_message is None
    # RFC 9003: up to 255 octets, never a UTF-8 sequence cut in half
    long = Notification.cease(2, "é" * 200)
    assert long.data[0] == 254 and long.shutdown_message == "é" * 127


def test_unknown_transitive_gets_partial_bit():
    wire = h(
        MARKER
        + """
        0028 02 0000 0011   # length 40, UPDATE, no withdrawn, attributes 17
        40 01 01 00         # ORIGIN IGP
        40 02 00            # AS_PATH empty
        c0 f1 03 aabbcc     # unknown optional transitive 241, Partial clear
        80 f2 01 00         # unknown optional non-transitive 242: dropped
        """
    )
    msg = decode_one(wire, CTX)
    assert msg.attrs.unknown == ((0xE0, 0xF1, h("aabbcc")),)
    assert h("e0f103aabbcc") in msg.encode(CTX)
    assert b"\xf2" not in msg.encode(CTX)[23:]


def test_extended_length_flag_on_a_short_attribute():
    """A peer may set the extended-length bit on a short attribute; we decode it the same."""
    wire = h(
        MARKER
        + """
        002e 02 0000 0015   # length 46, UPDATE, no withdrawn, attributes 21
        40 01 01 00         # ORIGIN IGP
        50 02 0006          # AS_PATH, flags with extended length, length 6
        02 01 0000fde8      # AS_SEQUENCE 65000
        40 03 04 0a000001   # NEXT_HOP 10.0.0.1
        08 0a               # 10.0.0.0/8
        """
    )
    msg = decode_one(wire, CTX)
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000,)),)
    assert msg.error is None
    # our encoder uses the extended length only when the value needs it
    assert h("40 02 06 02 01 0000fde8") in msg.encode(CTX)


# --- RFC 6793: four-octet AS numbers and two-octet peers ---------------------------------------


def _as2_update(attr_hex: str) -> Update:
    attrs = h(attr_hex)
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + h("08 0a")
    wire = bytes.fromhex("ff" * 16) + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    msg = decode_one(wire, AS2)
    assert msg.error is None
    return msg


ORIGIN_NH = "40 01 01 00  40 03 04 0a000001"


def test_as4_path_rebuilds_real_path():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 08 02 03 fde8 5ba0 5ba0         # AS_PATH: 65000 AS_TRANS AS_TRANS
        c0 11 0a 02 02 fa56ea00 fa56ea01      # AS4_PATH: 4200000000 4200000001
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000, 4200000000, 4200000001)),)


def test_as4_path_with_set():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 0c    # AS_PATH, length 12
        02 02 fde8 5ba0   # AS_SEQUENCE 65000 AS_TRANS
        01 02 5ba0 0064   # AS_SET {AS_TRANS 100}
        c0 11 10    # AS4_PATH, length 16
        02 01 fa56ea00    # AS_SEQUENCE 4200000000
        01 02 fa56ea01 00000064   # AS_SET {4200000001 100}
        """
    )
    assert msg.attrs.as_path == (
        (AS_SEQUENCE, (65000, 4200000000)),
        (AS_SET, (4200000001, 100)),
    )


@pytest.mark.parametrize("ctx", [CTX, IBGP, AS2], ids=["ebgp", "ibgp", "as2-ebgp"])
@pytest.mark.parametrize("seg", [AS_CONFED_SEQUENCE, AS_CONFED_SET])
def test_confederation_segments_make_as_path_malformed(ctx, seg):
    """RFC 5065 §5 with RFC 7606 §7.2: bgpd is in no confederation, so every neighbor is
    outside ours and AS_CONFED_* segments are a Malformed AS_PATH, treat-as-withdraw (3/11),
    from internal neighbors too. Before: accepted (and counted as length 0)."""
    size = 4 if ctx.as4 else 2
    path = bytes((seg, 1)) + (65001).to_bytes(size, "big")
    path += bytes((AS_SEQUENCE, 1)) + (65000).to_bytes(size, "big")
    attrs = h(ORIGIN_NH) + tlv(0x40, 2, path)
    if ctx.ibgp:
        attrs += h("40 05 04 00000064")
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + h("08 0a")
    wire = bytes.fromhex("ff" * 16) + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    msg = decode_one(wire, ctx)
    assert (msg.error.code, msg.error.subcode, msg.error.action) == (3, 11, Action.WITHDRAW)
    assert "confederation" in msg.error.detail
    assert msg.reach() == [] and msg.unreach() == [((1, 1), [P("10.0.0.0/8")])]


def test_as4_path_longer_than_as_path_is_ignored():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 04 02 01 5ba0               # AS_PATH: AS_TRANS
        c0 11 0a 02 02 fa56ea00 fa56ea01  # AS4_PATH with two ASNs: more than AS_PATH
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (AS_TRANS,)),)


def test_as4_attributes_ignored_when_aggregator_is_not_as_trans():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 06 02 02 fde8 5ba0          # AS_PATH: 65000 AS_TRANS
        c0 07 06 fde9 c0000201            # AGGREGATOR: AS 65001 (not AS_TRANS)
        c0 11 06 02 01 fa56ea00           # AS4_PATH: 4200000000
        c0 12 08 fa56ea01 c0000202        # AS4_AGGREGATOR: 4200000001
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000, AS_TRANS)),)
    assert msg.attrs.aggregator == (65001, ip("192.0.2.1"))


def test_as4_aggregator_replaces_as_trans():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 06 02 02 fde8 5ba0          # AS_PATH: 65000 AS_TRANS
        c0 07 06 5ba0 c0000201            # AGGREGATOR: AS_TRANS
        c0 11 06 02 01 fa56ea00           # AS4_PATH: 4200000000
        c0 12 08 fa56ea01 c0000202        # AS4_AGGREGATOR: 4200000001, 192.0.2.2
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000, 4200000000)),)
    assert msg.attrs.aggregator == (4200000001, ip("192.0.2.2"))


def test_as4_path_without_as4_aggregator_is_used():
    """The AGGREGATOR rule applies only "when both the attributes are received"."""
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 06 02 02 fde8 5ba0          # AS_PATH: 65000 AS_TRANS
        c0 07 06 fde9 c0000201            # AGGREGATOR: AS 65001
        c0 11 06 02 01 fa56ea00           # AS4_PATH: 4200000000
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000, 4200000000)),)


def test_as4_path_confed_segments_are_dropped():
    msg = _as2_update(
        ORIGIN_NH
        + """
        40 02 04 02 01 5ba0               # AS_PATH: AS_TRANS
        c0 11 0c 03 01 0000fde9 02 01 fa56ea00   # AS4_PATH: confed 65001 (invalid), 4200000000
        """
    )
    assert msg.attrs.as_path == ((AS_SEQUENCE, (4200000000,)),)


def test_as4_attributes_from_a_four_octet_peer_are_ignored():
    wire = h(
        MARKER
        + """
        0036 02 0000 001d   # length 54, UPDATE, no withdrawn, attributes 29
        40 01 01 00 40 03 04 0a000001     # ORIGIN, NEXT_HOP
        40 02 06 02 01 0000fde8           # AS_PATH: 65000 (four-octet)
        c0 11 06 02 01 fa56ea00           # AS4_PATH (must not be sent between NEW speakers)
        08 0a
        """
    )
    msg = decode_one(wire, CTX)
    assert msg.attrs.as_path == ((AS_SEQUENCE, (65000,)),)
    assert msg.error is None


def test_encode_to_two_octet_peer():
    attrs = AttrSet(
        origin=0,
        as_path=((AS_CONFED_SEQUENCE, (65001,)), (AS_SEQUENCE, (65000, 4200000000))),
        next_hop=ip("10.0.0.1"),
        aggregator=(4200000001, ip("192.0.2.2")),
    )
    wire = Update(attrs=attrs, nlri=[P("10.0.0.0/8")]).encode(AS2)
    expected = h(
        MARKER
        + """
        0052 02 0000 0039   # length 82, UPDATE, no withdrawn, attributes 57
        40 01 01 00         # ORIGIN IGP
        40 02 0a            # AS_PATH, length 10
        03 01 fde9          # AS_CONFED_SEQUENCE 65001
        02 02 fde8 5ba0     # AS_SEQUENCE 65000 AS_TRANS
        40 03 04 0a000001   # NEXT_HOP
        c0 07 06 5ba0 c0000202      # AGGREGATOR: AS_TRANS
        c0 11 0a 02 02 0000fde8 fa56ea00   # AS4_PATH: no confederation segment
        c0 12 08 fa56ea01 c0000202  # AS4_AGGREGATOR
        08 0a               # 10.0.0.0/8
        """
    )
    assert wire.hex() == expected.hex()
    # bgpd never receives such a path (confederation segments are malformed, RFC 5065 §5)
    err = decode_one(wire, AS2).error
    assert (err.code, err.subcode, err.action) == (3, 11, Action.WITHDRAW)


def test_encode_to_two_octet_peer_mappable_only():
    attrs = AttrSet(
        origin=0,
        as_path=((AS_SEQUENCE, (65000, 65001)),),
        next_hop=ip("10.0.0.1"),
        aggregator=(65000, ip("192.0.2.2")),
    )
    wire = Update(attrs=attrs, nlri=[P("10.0.0.0/8")]).encode(AS2)
    assert b"\xc0\x11" not in wire and b"\xc0\x12" not in wire
    assert decode_one(wire, AS2).attrs == attrs


# --- framing --------------------------------------------------------------------------------


def _default_ctx_fixtures():
    return [f for f in FIXTURES if f.ctx == CTX]


def _stream():
    return b"".join(f.wire for f in _default_ctx_fixtures())


def _frame(msg_type: int, body: bytes) -> bytes:
    return (
        bytes.fromhex("ff" * 16) + (19 + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body
    )


def test_framing_byte_by_byte():
    stream = _stream()
    framer = Framer()
    got = []
    for i in range(len(stream)):
        got += framer.feed(stream[i : i + 1])
    assert framer.error is None and len(framer) == 0
    assert b"".join(_frame(t, b) for t, b in got) == stream


def test_framing_many_messages_per_read():
    stream = _stream()
    framer = Framer()
    whole = framer.feed(stream)
    assert framer.error is None
    assert len(whole) == len(_default_ctx_fixtures())
    # odd-sized reads give the same messages
    framer = Framer()
    got = []
    for i in range(0, len(stream), 37):
        got += framer.feed(stream[i : i + 37])
    assert got == whole


def test_framing_keeps_partial_message():
    wire = FIXTURES[0].wire + FIXTURES[1].wire
    framer = Framer()
    assert framer.feed(wire[:-1]) == [(4, b"")]
    assert len(framer) == len(FIXTURES[1].wire) - 1
    assert len(framer.feed(wire[-1:])) == 1


def _big_update(total: int) -> bytes:
    """A valid UPDATE of exactly ``total`` octets, padded by an unknown transitive attribute."""
    head = h(
        """
        40 01 01 00                 # ORIGIN IGP
        40 02 06 02 01 0000fde8     # AS_PATH 65000
        40 03 04 0a000001           # NEXT_HOP 10.0.0.1
        """
    )
    nlri = b"".join(b"\x20\x0a\x00" + n.to_bytes(2, "big") for n in range(100))  # 100 /32s
    pad = total - 19 - 4 - len(head) - 4 - len(nlri)
    attrs = head + h("f0 f1") + pad.to_bytes(2, "big") + b"\x55" * pad  # Partial + ext length
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri
    return bytes.fromhex("ff" * 16) + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


@pytest.mark.parametrize("size", [4097, 65535])
def test_extended_message_needs_raised_max_size(size):
    wire = _big_update(size)
    assert len(wire) == size
    framer = Framer()
    assert framer.feed(wire) == []
    assert framer.error is not None
    assert (framer.error.code, framer.error.subcode) == (1, 2)
    assert framer.error.data == size.to_bytes(2, "big")

    framer = Framer()
    framer.max_size = 65535
    msgs = framer.feed(wire[:3000]) + framer.feed(wire[3000:])
    assert framer.error is None and len(msgs) == 1
    ctx = Context(extended_message=True)
    msg = decode_message(*msgs[0], ctx)
    assert msg.error is None and len(msg.nlri) == 100
    assert msg.encode(ctx) == wire


def test_4096_fits_without_extended_messages():
    wire = _big_update(4096)
    framer = Framer()
    assert len(framer.feed(wire)) == 1 and framer.error is None


def test_open_and_keepalive_never_exceed_4096():
    framer = Framer(max_size=65535)
    framer.feed(bytes.fromhex("ff" * 16) + (5000).to_bytes(2, "big") + b"\x01")
    assert framer.error is not None and framer.error.subcode == 2
    framer = Framer(max_size=65535)
    framer.feed(bytes.fromhex("ff" * 16) + (20).to_bytes(2, "big") + b"\x04")
    assert framer.error is not None and framer.error.subcode == 2


def test_framer_stops_after_error():
    framer = Framer()
    framer.feed(b"\x00" * 19)
    assert isinstance(framer.error, BGPError)
    assert framer.feed(FIXTURES[0].wire) == []
