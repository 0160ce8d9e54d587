"""BMP messages, byte for byte against the layouts of RFC 7854, RFC 9069 and RFC 8671.

Expected bytes are written field by field from the RFC figures (annotated hex), never
produced by the encoder under test.
"""

import pytest

from bgpd.bmp import codec
from bgpd.bmp.codec import FLAG_L, FLAG_O, PeerHeader
from bgpd.bmp.monitor import BmpPeer, LocalRib
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.messages import KEEPALIVE_BYTES, Notification, Open


def h(text: str) -> bytes:
    return bytes.fromhex(
        "".join(line.split("#", 1)[0] for line in text.splitlines()).replace(" ", "")
    )


T = 1_700_000_000.25  # 6553F100 seconds, 0003D090 microseconds
HDR = PeerHeader(0, "192.0.2.1", 65001, "192.0.2.1")
PER_PEER = h(
    """
    00                                  # Peer Type: Global Instance
    00                                  # Peer Flags: IPv4, pre-policy, 4-octet AS, Adj-RIB-In
    0000000000000000                    # Peer Distinguisher
    000000000000000000000000 C0000201   # Peer Address 192.0.2.1 (IPv4 in the last 4 octets)
    0000FDE9                            # Peer AS 65001
    C0000201                            # Peer BGP ID
    6553F100 0003D090                   # Timestamp seconds, microseconds
    """
)
# An UPDATE: no withdrawals, ORIGIN IGP, AS_PATH 65001, NEXT_HOP 192.0.2.1, NLRI 10.0.1.0/24
UPDATE = h(
    """
    FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF 002F 02
    0000 0014
    40 01 01 00   40 02 06 02 01 0000FDE9   40 03 04 C0000201
    18 0A0001
    """
)


def test_per_peer_header():
    assert len(PER_PEER) == 42
    assert HDR.encode(T) == PER_PEER


def test_per_peer_header_flags():
    v6 = PeerHeader(0, "2001:db8::1", 4200000001, "10.0.0.1", as4=False)
    assert v6.encode(T) == h(
        """
        00 A0                                   # V (IPv6) | A (2-octet AS_PATH)
        0000000000000000
        20010DB8000000000000000000000001        # Peer Address
        FA56EA01 0A000001 6553F100 0003D090
        """
    )
    assert HDR.encode(T, FLAG_O | FLAG_L)[1] == 0x50  # RFC 8671 post-policy Adj-RIB-Out
    rd = PeerHeader(1, "192.0.2.1", 65001, "192.0.2.1", distinguisher=h("0001FDE900000064"))
    assert rd.encode(T)[:10] == h("01 00 0001FDE900000064")


def test_route_monitoring():
    msg = codec.route_monitoring(HDR, T, UPDATE)
    assert msg == h("03 0000005F 00") + PER_PEER + UPDATE  # version 3, 6+42+47 octets, type 0
    # a body is given its BGP header
    assert codec.route_monitoring(HDR, T, UPDATE[19:]) == msg
    assert codec.route_monitoring_many(HDR, T, [UPDATE, UPDATE]) == msg + msg


def test_initiation():
    assert codec.initiation("rr1", "bgpd 0.1") == h(
        """
        03 00000019 04              # version, length 6+(4+8)+(4+3), Initiation
        0001 0008 62677064 20302E31 # sysDescr "bgpd 0.1"
        0002 0003 727231            # sysName "rr1"
        """
    )
    assert codec.initiation("a", "b", ["hi"]).endswith(h("0000 0002 6869"))  # String TLV


def test_termination():
    assert codec.termination() == h("03 0000000C 05 0001 0002 0000")  # reason: admin closed
    assert codec.termination(codec.TERM_OUT_OF_RESOURCES, "full") == h(
        "03 00000014 05  0000 0004 66756C6C  0001 0002 0002"
    )


SENT_OPEN = Open(asn=65000, hold_time=90, router_id="192.0.2.254").encode()
RCVD_OPEN = Open(asn=65001, hold_time=180, router_id="192.0.2.1").encode()


def test_peer_up():
    msg = codec.peer_up(HDR, T, "192.0.2.254", 179, 40001, SENT_OPEN, RCVD_OPEN)
    body = (
        PER_PEER
        + h("000000000000000000000000 C00002FE")  # Local Address 192.0.2.254
        + h("00B3 9C41")  # Local Port 179, Remote Port 40001
        + SENT_OPEN
        + RCVD_OPEN
    )
    assert msg == h("03") + (6 + len(body)).to_bytes(4, "big") + h("03") + body
    # OPEN bodies get their header; information TLVs follow the OPENs
    info = codec.peer_up(HDR, T, "192.0.2.254", 179, 40001, SENT_OPEN[19:], RCVD_OPEN, [(0, "x")])
    assert info[6:-5] == msg[6:] and info.endswith(h("0000 0001 78"))
    assert int.from_bytes(info[1:5], "big") == len(info)


def test_bmp_peer_builds_its_peer_up_from_the_session():
    peer = BmpPeer(
        "k", "192.0.2.1", 65001, "192.0.2.1", "192.0.2.254", 179, 40001, SENT_OPEN, RCVD_OPEN
    )
    assert peer.up_message(T) == codec.peer_up(
        HDR, T, "192.0.2.254", 179, 40001, SENT_OPEN, RCVD_OPEN
    )


@pytest.mark.parametrize(
    "reason, data",
    [
        (codec.DOWN_LOCAL_NOTIFICATION, Notification(6, 2, b"").encode()),
        (codec.DOWN_LOCAL_NO_NOTIFICATION, h("0002")),  # FSM event 2, ManualStop
        (codec.DOWN_REMOTE_NOTIFICATION, Notification(4, 0, b"").encode()),
        (codec.DOWN_REMOTE_NO_DATA, b""),
        (codec.DOWN_DECONFIGURED, b""),
    ],
)
def test_peer_down(reason, data):
    msg = codec.peer_down(HDR, T, reason, data)
    assert (
        msg
        == h("03")
        + (6 + 42 + 1 + len(data)).to_bytes(4, "big")
        + h("02")
        + PER_PEER
        + bytes((reason,))
        + data
    )


def test_statistics_report():
    msg = codec.statistics_report(
        HDR,
        T,
        {
            "rejected": 3,
            "adj_rib_in": 10,
            "adj_rib_in_family": {IPV6_UNICAST: 4, IPV4_UNICAST: 6},
            "loc_rib": 9,
        },
    )
    assert msg == h("03 00000072 01") + PER_PEER + h(
        """
        00000005                          # Stats Count: 5 TLVs
        0000 0004 00000003                # type 0: prefixes rejected (32-bit counter)
        0007 0008 000000000000000A        # type 7: routes in Adj-RIBs-In (64-bit gauge)
        0009 000B 0001 01 0000000000000006 # type 9: per-AFI/SAFI Adj-RIB-In, IPv4 unicast
        0009 000B 0002 01 0000000000000004 #         IPv6 unicast
        0008 0008 0000000000000009        # type 8: routes in Loc-RIB
        """
    )
    with pytest.raises(ValueError, match="unknown BMP statistic"):
        codec.statistics_report(HDR, T, {"nonsense": 1})


def test_loc_rib_instance_peer_up_and_down():
    local = LocalRib(4200000000, "192.0.2.254", (IPV4_UNICAST, IPV6_UNICAST))
    fabricated = h(
        """
        FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF 0031 01   # OPEN, 49 octets
        04 5BA0 0000 C00002FE                      # version 4, AS_TRANS, hold 0, BGP ID
        14 02 12                                   # 20 octets of parameters: capabilities
        01 04 0001 00 01                           # multiprotocol IPv4 unicast
        01 04 0002 00 01                           # multiprotocol IPv6 unicast
        41 04 FA56EA00                             # four-octet AS 4200000000
        """
    )
    assert local.open_message == fabricated
    hdr = h(
        """
        03 00                              # Peer Type 3: Loc-RIB Instance, F flag clear
        0000000000000000                   # Peer Distinguisher: the global instance
        00000000000000000000000000000000   # Peer Address: zero-filled
        FA56EA00 C00002FE                  # our AS and router ID
        6553F100 0003D090
        """
    )
    up = local.up_message(T)
    body = hdr + bytes(16) + h("0000 0000") + fabricated + fabricated + h("0003 0006 676C6F62616C")
    assert up == h("03") + (6 + len(body)).to_bytes(4, "big") + h("03") + body  # TLV 3 "global"
    down = local.down_message(T)
    assert down == h("03 0000003B 02") + hdr + h("06 0003 0006 676C6F62616C")  # reason 6 + TLV
    filtered = LocalRib(65000, "192.0.2.254", (IPV4_UNICAST,), filtered=True)
    assert filtered.up_message(T)[7] == 0x80  # the F flag


def test_split():
    msgs = [
        codec.initiation("a", "b"),
        codec.route_monitoring(HDR, T, KEEPALIVE_BYTES),
        codec.termination(),
    ]
    assert codec.split(b"".join(msgs)) == msgs
