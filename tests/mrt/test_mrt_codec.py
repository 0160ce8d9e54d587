"""MRT records, byte for byte against the layouts of RFC 6396 and RFC 8050.

Expected bytes are written field by field from the RFC figures (annotated hex, ``#``
comments), never produced by the encoder under test.
"""

import pytest

from bgpd.mrt.codec import (
    MrtPeer,
    header,
    header_et,
    peer_index_table,
    rib_attrs,
    rib_record,
    update_family,
)
from bgpd.mrt.dump import DumpPeer, TableSnapshot, encode_table
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.messages import KEEPALIVE_BYTES
from bgpd.wire.packer import pack_announce, pack_withdraw


def h(text: str) -> bytes:
    """Annotated hex -> bytes: ``#`` comments and whitespace are dropped."""
    return bytes.fromhex(
        "".join(line.split("#", 1)[0] for line in text.splitlines()).replace(" ", "")
    )


T = 1_700_000_000.25  # 0x6553F100 seconds, 250000 microseconds (0x0003D090)

PEER4 = MrtPeer(65001, 4200000000, "192.0.2.1", "192.0.2.254")


def test_common_header():
    # RFC 6396 §2: Timestamp (4), Type (2), Subtype (2), Length (4)
    assert header(T, 13, 1, 0x20) == h("6553F100 000D 0001 00000020")


def test_extended_header_counts_the_microseconds():
    # RFC 6396 §3: the Microsecond Timestamp follows the header and is counted in Length
    assert header_et(T, 17, 4, 10) == h("6553F100 0011 0004 0000000E 0003D090")


def test_microseconds_round_and_never_reach_a_second():
    assert header_et(1.9999999, 17, 4, 0)[-4:] == (999_999).to_bytes(4, "big")
    assert header_et(1_700_000_001.3, 17, 4, 0)[-4:] == (300_000).to_bytes(4, "big")


def test_bgp4mp_message_as4_keepalive():
    rec = PEER4.message(KEEPALIVE_BYTES, T)
    assert rec == h(
        """
        6553F100 0011 0004 0000002B   # BGP4MP_ET / BGP4MP_MESSAGE_AS4, length 4+20+19
        0003D090                      # microseconds
        0000FDE9                      # Peer AS 65001
        FA56EA00                      # Local AS 4200000000
        0000                          # Interface Index
        0001                          # Address Family: IPv4
        C0000201                      # Peer IP 192.0.2.1
        C00002FE                      # Local IP 192.0.2.254
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF 0013 04   # the KEEPALIVE
        """
    )


def test_sent_message_uses_the_local_subtype_with_the_same_fields():
    rec = PEER4.message(KEEPALIVE_BYTES, T, sent=True)
    assert rec[6:8] == h("0007")  # BGP4MP_MESSAGE_AS4_LOCAL
    assert rec[16:] == PEER4.message(KEEPALIVE_BYTES, T)[16:]  # Peer = neighbor, Local = us


def test_state_change_as4():
    rec = PEER4.state_change("OpenConfirm", "Established", T)
    assert rec == h(
        """
        6553F100 0011 0005 0000001C   # BGP4MP_ET / BGP4MP_STATE_CHANGE_AS4, length 4+20+4
        0003D090
        0000FDE9 FA56EA00 0000 0001 C0000201 C00002FE
        0005 0006                     # Old State OpenConfirm, New State Established
        """
    )
    assert PEER4.state_change(1, 2, T)[-4:] == h("0001 0002")


def test_ipv6_session():
    peer = MrtPeer(65001, 65000, "2001:db8::1", "2001:db8::fe")
    rec = peer.message(KEEPALIVE_BYTES, T)
    assert rec[16:28] == h("0000FDE9 0000FDE8 0000 0002")  # AS, AS, ifindex, AFI IPv6
    assert rec[28:60] == h("20010DB8000000000000000000000001 20010DB80000000000000000000000FE")
    assert rec[8:12] == (4 + 12 + 32 + 19).to_bytes(4, "big")


def test_ipv4_peer_on_an_ipv6_socket_is_written_as_mapped_addresses():
    peer = MrtPeer(65001, 65000, "192.0.2.1", "::ffff:192.0.2.254")
    assert peer.address == h("00000000000000000000FFFF C0000201")


ATTRS = intern(
    AttrSet(
        origin=0,
        as_path=((2, (65001, 4200000001)),),
        next_hop=bytes((192, 0, 2, 1)),
        med=5,
        local_pref=100,
        communities=((65001 << 16) | 7,),
    )
)
ATTRS_BLOCK = h(
    """
    40 01 01 00                          # ORIGIN IGP
    40 02 0A 02 02 0000FDE9 FA56EA01     # AS_PATH, AS_SEQUENCE of 2 four-octet ASNs
    40 03 04 C0000201                    # NEXT_HOP 192.0.2.1
    80 04 04 00000005                    # MULTI_EXIT_DISC 5
    40 05 04 00000064                    # LOCAL_PREF 100
    C0 08 04 FDE90007                    # COMMUNITIES 65001:7
    """
)


def test_update_of_a_two_octet_session_uses_the_two_octet_subtype():
    peer = MrtPeer(4200000001, 65000, "192.0.2.1", "192.0.2.254", as4=False)
    (upd,) = pack_announce(IPV4_UNICAST, ATTRS, [pfx.from_str("10.0.0.0/8")], Context(as4=False))
    rec = peer.message(upd, T)
    # BGP4MP_MESSAGE (1): 2-octet Peer AS (AS_TRANS 23456 = 5BA0) and Local AS
    assert rec[4:8] == h("0011 0001")
    assert rec[16:28] == h("5BA0 FDE8 0000 0001 C0000201")
    assert rec[-len(upd) :] == upd
    # its OPEN and KEEPALIVE carry no AS_PATH: four-octet fields
    assert peer.message(KEEPALIVE_BYTES, T)[4:8] == h("0011 0004")
    assert peer.message(upd, T, sent=True)[4:8] == h("0011 0006")  # BGP4MP_MESSAGE_LOCAL


@pytest.mark.parametrize(
    "rx, tx, family, sent, subtype",
    [
        ({IPV4_UNICAST}, set(), IPV4_UNICAST, False, 9),  # BGP4MP_MESSAGE_AS4_ADDPATH
        ({IPV4_UNICAST}, set(), IPV4_UNICAST, True, 7),  # sent without path ids: _LOCAL
        (set(), {IPV4_UNICAST}, IPV4_UNICAST, True, 11),  # BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH
        ({IPV4_UNICAST}, set(), IPV6_UNICAST, False, 4),  # the other family has no path ids
        ({IPV6_UNICAST}, set(), IPV6_UNICAST, False, 9),
        ({IPV4_UNICAST, IPV6_UNICAST}, set(), IPV6_UNICAST, False, 9),
    ],
)
def test_addpath_subtypes_follow_the_family_of_the_update(rx, tx, family, sent, subtype):
    peer = MrtPeer(65001, 65000, "192.0.2.1", "192.0.2.254", add_path_rx=rx, add_path_tx=tx)
    addpath = family in (tx if sent else rx)
    ctx = Context(add_path_tx=frozenset({family}) if addpath else frozenset())
    key = pfx.from_str("10.0.0.0/24" if family == IPV4_UNICAST else "2001:db8::/32")
    nh = bytes((192, 0, 2, 1)) if family == IPV4_UNICAST else pfx.addr_from_str("2001:db8::1")
    items = [(1, key)] if addpath else [key]
    (upd,) = pack_announce(family, ATTRS.replace(next_hop=nh), items, ctx)
    assert update_family(upd) == family
    rec = peer.message(upd, T, sent=sent)
    assert int.from_bytes(rec[6:8], "big") == subtype
    # withdrawals too (MP_UNREACH_NLRI / the withdrawn routes field)
    (wd,) = pack_withdraw(family, items, ctx)
    assert update_family(wd) == family
    assert int.from_bytes(peer.message(wd, T, sent=sent)[6:8], "big") == subtype


def test_peer_index_table():
    rec = peer_index_table(
        "192.0.2.254",
        "v",
        [("192.0.2.254", "0.0.0.0", 65000), ("10.0.0.2", "2001:db8::2", 4200000002)],
        T,
    )
    assert rec == h(
        """
        6553F100 000D 0001 0000002D       # TABLE_DUMP_V2 / PEER_INDEX_TABLE, length 45
        C00002FE                          # Collector BGP ID
        0001 76                           # View Name Length 1, "v"
        0002                              # Peer Count
        00 C00002FE 00000000 FDE8         # type 0 (IPv4, AS2): BGP ID, IP, AS 65000
        03 0A000002                       # type 3 (IPv6, AS4): BGP ID 10.0.0.2
           20010DB8000000000000000000000002 FA56EA02     # IP 2001:db8::2, AS 4200000002
        """
    )


def test_rib_ipv4_unicast():
    rec = rib_record(7, IPV4_UNICAST, pfx.from_str("10.0.1.0/24"), [(1, T, None, ATTRS)], T, False)
    n = len(ATTRS_BLOCK)
    assert (
        rec
        == h("6553F100 000D 0002")
        + (4 + 4 + 2 + 8 + n).to_bytes(4, "big")
        + h(
            """
        00000007            # Sequence Number
        18 0A0001           # Prefix Length 24, Prefix 10.0.1
        0001                # Entry Count
        0001 6553F100       # Peer Index 1, Originated Time
        """
        )
        + n.to_bytes(2, "big")
        + ATTRS_BLOCK
    )


def test_rib_ipv4_unicast_addpath():
    rec = rib_record(0, IPV4_UNICAST, pfx.from_str("10.0.1.0/24"), [(2, T, 9, ATTRS)], T, True)
    assert rec[4:8] == h("000D 0008")  # RIB_IPV4_UNICAST_ADDPATH (RFC 8050)
    # RFC 8050 §4: the Path Identifier sits between Originated Time and Attribute Length
    assert rec[20:34] == h("0001 0002 6553F100 00000009") + len(ATTRS_BLOCK).to_bytes(2, "big")


def test_rib_ipv6_unicast_abbreviates_mp_reach():
    attrs = ATTRS.replace(next_hop=pfx.addr_from_str("2001:db8::1"))
    block = rib_attrs(attrs, IPV6_UNICAST)
    # RFC 6396 §4.3.4: MP_REACH_NLRI with only the next hop length and next hop
    assert block.startswith(h("80 0E 11 10 20010DB8000000000000000000000001"))
    assert h("40 03 04") not in block  # no NEXT_HOP attribute
    rec = rib_record(
        1, IPV6_UNICAST, pfx.from_str("2001:db8::/32"), [(0, T, None, attrs)], T, False
    )
    assert rec[4:8] == h("000D 0004")
    assert rec[12:23] == h("00000001 20 20010DB8 0001")  # seq, /32, 2001:db8, one entry
    rec_ap = rib_record(1, IPV6_UNICAST, pfx.from_str("2001:db8::/32"), [(0, T, 5, attrs)], T, True)
    assert rec_ap[4:8] == h("000D 000A")  # RIB_IPV6_UNICAST_ADDPATH


def test_rib_attrs_of_an_ipv4_route_with_an_ipv6_next_hop_use_mp_reach():
    attrs = ATTRS.replace(next_hop=pfx.addr_from_str("2001:db8::1"))
    assert rib_attrs(attrs, IPV4_UNICAST).startswith(h("80 0E 11 10"))


def test_rib_attrs_use_four_octet_as_numbers_and_are_cached():
    assert rib_attrs(ATTRS, IPV4_UNICAST) == ATTRS_BLOCK
    assert rib_attrs(ATTRS, IPV4_UNICAST) is rib_attrs(ATTRS, IPV4_UNICAST)


def test_table_dump_layout():
    other = ATTRS.replace(local_pref=50)
    snap = TableSnapshot(
        router_id="192.0.2.254",
        local_as=65000,
        peers=[
            DumpPeer("192.0.2.1", "192.0.2.1", 65001),
            DumpPeer("192.0.2.2", "192.0.2.2", 65002),
        ],
        routes=[
            (
                IPV4_UNICAST,
                pfx.from_str("10.0.1.0/24"),
                ATTRS,
                [(0, ATTRS, None), (1, other, None)],
            ),
            (IPV4_UNICAST, pfx.from_str("10.0.2.0/24"), ATTRS, [(0, ATTRS, None), (1, other, 4)]),
            (IPV4_UNICAST, pfx.from_str("10.0.3.0/24"), None, []),  # nothing: no record
        ],
        timestamp=T,
    )
    data = encode_table(snap)
    expected = (
        peer_index_table(
            "192.0.2.254",
            "",
            [
                ("192.0.2.254", "0.0.0.0", 65000),
                ("192.0.2.1", "192.0.2.1", 65001),
                ("192.0.2.2", "192.0.2.2", 65002),
            ],
            T,
        )
        + rib_record(
            0,
            IPV4_UNICAST,
            pfx.from_str("10.0.1.0/24"),
            [(0, T, None, ATTRS), (1, T, None, ATTRS), (2, T, None, other)],
            T,
            False,
        )
        + rib_record(
            1,
            IPV4_UNICAST,
            pfx.from_str("10.0.2.0/24"),
            [(0, T, None, ATTRS), (1, T, None, ATTRS)],
            T,
            False,
        )
        + rib_record(2, IPV4_UNICAST, pfx.from_str("10.0.2.0/24"), [(2, T, 4, other)], T, True)
    )
    assert data == expected
    assert snap.stats == {"records": 4, "prefixes": 2, "entries": 6}


def test_table_dump_without_the_loc_rib_peer():
    snap = TableSnapshot(
        router_id="192.0.2.254",
        local_as=65000,
        peers=[DumpPeer("192.0.2.1", "192.0.2.1", 65001)],
        routes=[(IPV4_UNICAST, pfx.from_str("10.0.1.0/24"), ATTRS, [(0, ATTRS, None)])],
        timestamp=T,
        loc_rib=False,
    )
    data = encode_table(snap)
    assert data.count(h("C0000201")) >= 1
    assert snap.stats["entries"] == 1
    # peer index 0 is the first neighbor
    rec = data[len(peer_index_table("192.0.2.254", "", [("192.0.2.1", "192.0.2.1", 65001)], T)) :]
    assert rec[12 + 4 + 4 + 2 : 12 + 4 + 4 + 4] == h("0000")


def test_a_malformed_update_is_logged_as_it_arrived():
    peer = MrtPeer(65001, 65000, "192.0.2.1", "192.0.2.254", add_path_rx={IPV4_UNICAST})
    bad = h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF 0017 02  00FF 0000")  # withdrawn length overruns
    assert update_family(bad) == IPV4_UNICAST
    rec = peer.message(bad, T)
    assert rec.endswith(bad) and rec[6:8] == h("0009")
