"""RFC 7606 over a real session: every attribute, broken three ways, and what the speaker does.

A bgpd Speaker listens on 127.0.0.81; hand-rolled peers (``hostile_peer.RawPeer``) do the OPEN
exchange and then inject bytes. For each case the peer first announces a good route, then an
UPDATE for the same prefix whose one attribute has a malformed length, bad flags or a bad value,
and the test checks the outcome in the speaker:

* treat-as-withdraw: the prefix is gone from ``show routes``, the session stays Established
  and no NOTIFICATION was sent;
* attribute-discard: the route is there (with the malformed UPDATE's other attributes: MED 200
  instead of 100) without the broken attribute, session up;
* session reset: the peer receives a NOTIFICATION with the exact code/subcode, the connection
  is closed, the neighbor leaves Established and its routes are gone;

and in every case a second, eBGP peer (the witness) stays Established with the same
``established_at`` and keeps receiving updates.

Attributes that have no invalid value (MED, LOCAL_PREF, COMMUNITIES, EXTENDED_COMMUNITIES,
LARGE_COMMUNITY, ATOMIC_AGGREGATE) get length and flags cases only. For ORIGINATOR_ID and
CLUSTER_LIST the "bad value" is a loop (our router ID, our cluster ID): not malformed, but
dropped on import (RFC 4456 §8), which looks like a withdrawal to the peer. LOCAL_PREF,
ORIGINATOR_ID and CLUSTER_LIST are tested on an iBGP session (from an eBGP peer they are
discarded whatever their content, RFC 7606 §7.5, §7.9, §7.10: also tested); AS4_PATH and
AS4_AGGREGATOR on a session without the four-octet AS capability (a four-octet peer's are
ignored, RFC 6793 §4.1).
"""

import asyncio
from dataclasses import dataclass

import pytest
from hostile_peer import (
    RawPeer,
    attr,
    ip,
    ports,
    routes,
    speaker_config,
    start_speaker,
    until,
    update,
)

from bgpd.wire import prefix as pfx

SPEAKER = "127.0.0.81"
IBGP, AS2, EBGP, WITNESS, RESET = (
    "127.0.0.82",
    "127.0.0.83",
    "127.0.0.84",
    "127.0.0.85",
    "127.0.0.86",
)
ROUTER_ID, CLUSTER_ID = "10.0.0.81", "10.0.0.99"

WK, OPT, OPT_T = 0x40, 0x80, 0xC0

W, D = "withdraw", "discard"


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


# The good attributes of each kind of session, by type code (MED differs in the second UPDATE).
def base(session: str, med: int) -> dict[int, bytes]:
    if session == EBGP:
        as_path = attr(WK, 2, b"\x02\x01" + u32(65001))
    elif session == AS2:
        as_path = attr(WK, 2, b"\x02\x01" + (23456).to_bytes(2, "big"))  # AS_TRANS
    else:
        as_path = attr(WK, 2, b"")
    out = {
        1: attr(WK, 1, b"\x00"),
        2: as_path,
        3: attr(WK, 3, ip("192.0.2.1")),
        4: attr(OPT, 4, u32(med)),
    }
    if session != EBGP:
        out[5] = attr(WK, 5, u32(100))
    return out


MP_V6_NH = bytes.fromhex("20010db8000000000000000000000001")


def mp_reach(prefix: bytes, nh: bytes = MP_V6_NH, flags: int = OPT) -> bytes:
    return attr(flags, 14, b"\x00\x02\x01" + bytes((len(nh),)) + nh + b"\x00" + prefix)


@dataclass(frozen=True)
class Case:
    name: str
    session: str  # which peer sends it
    good: bytes  # extra attributes of the good route (besides the base ones)
    bad: bytes  # the attribute that replaces / joins them in the second UPDATE
    replaces: int | None  # base type code the bad attribute replaces
    expect: object  # W, D, or (code, subcode) of a session reset
    check: str = ""  # what "without that attribute" means for D: a field of the stored set
    family: str = "ipv4"

    @property
    def id(self) -> str:
        return self.name


AGGR = u32(4200000001) + ip("10.9.9.9")

CASES = [
    # ORIGIN (§7.1)
    Case("ORIGIN-length", IBGP, b"", attr(WK, 1, b"\x00\x00"), 1, W),
    Case("ORIGIN-flags", IBGP, b"", attr(OPT_T, 1, b"\x00"), 1, W),
    Case("ORIGIN-value", IBGP, b"", attr(WK, 1, b"\x05"), 1, W),
    # AS_PATH (§7.2)
    Case("AS_PATH-length", IBGP, b"", attr(WK, 2, b"\x02\x02" + u32(65010)), 2, W),
    Case("AS_PATH-flags", IBGP, b"", attr(OPT_T, 2, b""), 2, W),
    Case("AS_PATH-value", IBGP, b"", attr(WK, 2, b"\x07\x01" + u32(65010)), 2, W),
    # NEXT_HOP (§7.3)
    Case("NEXT_HOP-length", IBGP, b"", attr(WK, 3, ip("192.0.2.1") + b"\x00"), 3, W),
    Case("NEXT_HOP-flags", IBGP, b"", attr(OPT, 3, ip("192.0.2.1")), 3, W),
    Case("NEXT_HOP-value", IBGP, b"", attr(WK, 3, ip("224.0.0.1")), 3, W),
    # MULTI_EXIT_DISC (§7.4): every value is valid
    Case("MED-length", IBGP, b"", attr(OPT, 4, b"\x00\x00\xc8"), 4, W),
    Case("MED-flags", IBGP, b"", attr(WK, 4, u32(200)), 4, W),
    # LOCAL_PREF (§7.5): every value is valid; from an external peer it is discarded
    Case("LOCAL_PREF-length", IBGP, b"", attr(WK, 5, b"\x00\x64"), 5, W),
    Case("LOCAL_PREF-flags", IBGP, b"", attr(OPT, 5, u32(100)), 5, W),
    Case("LOCAL_PREF-ebgp-length", EBGP, b"", attr(WK, 5, b"\x00\x64"), None, D, "local_pref"),
    # ATOMIC_AGGREGATE (§7.6): the length is the whole value
    Case(
        "ATOMIC_AGGREGATE-length",
        IBGP,
        attr(WK, 6, b""),
        attr(WK, 6, b"\x01"),
        None,
        D,
        "atomic_aggregate",
    ),
    Case(
        "ATOMIC_AGGREGATE-flags",
        IBGP,
        attr(WK, 6, b""),
        attr(OPT_T, 6, b""),
        None,
        D,
        "atomic_aggregate",
    ),
    # AGGREGATOR (§7.7)
    Case(
        "AGGREGATOR-length",
        IBGP,
        attr(OPT_T, 7, AGGR),
        attr(OPT_T, 7, AGGR[1:]),
        None,
        D,
        "aggregator",
    ),
    Case("AGGREGATOR-flags", IBGP, attr(OPT_T, 7, AGGR), attr(WK, 7, AGGR), None, D, "aggregator"),
    Case(
        "AGGREGATOR-value",
        IBGP,
        attr(OPT_T, 7, AGGR),
        attr(OPT_T, 7, u32(0) + ip("10.9.9.9")),  # AS 0 (RFC 7607)
        None,
        D,
        "aggregator",
    ),
    # COMMUNITIES (§7.8): every value is valid
    Case(
        "COMMUNITIES-length", IBGP, attr(OPT_T, 8, u32(1)), attr(OPT_T, 8, b"\x00\x01\x00"), None, W
    ),
    Case("COMMUNITIES-empty", IBGP, attr(OPT_T, 8, u32(1)), attr(OPT_T, 8, b""), None, W),
    Case("COMMUNITIES-flags", IBGP, attr(OPT_T, 8, u32(1)), attr(OPT, 8, u32(1)), None, W),
    # ORIGINATOR_ID (§7.9)
    Case("ORIGINATOR_ID-length", IBGP, b"", attr(OPT, 9, ip("10.1.1.1") + b"\x00"), None, W),
    Case("ORIGINATOR_ID-flags", IBGP, b"", attr(OPT_T, 9, ip("10.1.1.1")), None, W),
    Case("ORIGINATOR_ID-value-loop", IBGP, b"", attr(OPT, 9, ip(ROUTER_ID)), None, W),
    Case(
        "ORIGINATOR_ID-ebgp-length",
        EBGP,
        b"",
        attr(OPT, 9, ip("10.1.1.1") + b"\x00"),
        None,
        D,
        "originator_id",
    ),
    # CLUSTER_LIST (§7.10)
    Case("CLUSTER_LIST-length", IBGP, b"", attr(OPT, 10, ip("10.2.2.2") + b"\x00"), None, W),
    Case("CLUSTER_LIST-flags", IBGP, b"", attr(WK, 10, ip("10.2.2.2")), None, W),
    Case("CLUSTER_LIST-value-loop", IBGP, b"", attr(OPT, 10, ip(CLUSTER_ID)), None, W),
    Case(
        "CLUSTER_LIST-ebgp-length",
        EBGP,
        b"",
        attr(OPT, 10, ip("10.2.2.2") + b"\x00"),
        None,
        D,
        "cluster_list",
    ),
    # EXTENDED_COMMUNITIES (§7.14): every value is valid
    Case(
        "EXTENDED_COMMUNITIES-length",
        IBGP,
        b"",
        attr(OPT_T, 16, bytes.fromhex("0002fde800000064")[:7]),
        None,
        W,
    ),
    Case("EXTENDED_COMMUNITIES-flags", IBGP, b"", attr(OPT, 16, bytes(8)), None, W),
    # LARGE_COMMUNITY (RFC 8092 §6): every value is valid
    Case("LARGE_COMMUNITY-length", IBGP, b"", attr(OPT_T, 32, bytes(11)), None, W),
    Case("LARGE_COMMUNITY-flags", IBGP, b"", attr(WK, 32, bytes(12)), None, W),
    # AS4_PATH, AS4_AGGREGATOR (RFC 6793 §6: attribute discard), from a two-octet peer
    Case(
        "AS4_PATH-length",
        AS2,
        attr(OPT_T, 17, b"\x02\x01" + u32(4200000001)),
        attr(OPT_T, 17, b"\x02\x01\x00\x01"),
        None,
        D,
        "as4_path",
    ),
    Case(
        "AS4_PATH-flags",
        AS2,
        attr(OPT_T, 17, b"\x02\x01" + u32(4200000001)),
        attr(OPT, 17, b"\x02\x01" + u32(4200000001)),
        None,
        D,
        "as4_path",
    ),
    Case(
        "AS4_PATH-value",
        AS2,
        attr(OPT_T, 17, b"\x02\x01" + u32(4200000001)),
        attr(OPT_T, 17, b"\x02\x01" + u32(0)),
        None,
        D,
        "as4_path",
    ),
    Case(
        "AS4_AGGREGATOR-length",
        AS2,
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT_T, 18, AGGR),
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT_T, 18, AGGR[:7]),
        None,
        D,
        "as4_aggregator",
    ),
    Case(
        "AS4_AGGREGATOR-flags",
        AS2,
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT_T, 18, AGGR),
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT, 18, AGGR),
        None,
        D,
        "as4_aggregator",
    ),
    Case(
        "AS4_AGGREGATOR-value",
        AS2,
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT_T, 18, AGGR),
        attr(OPT_T, 7, b"\x5b\xa0" + ip("10.9.9.9")) + attr(OPT_T, 18, u32(0) + AGGR[4:]),
        None,
        D,
        "as4_aggregator",
    ),
    # MP_REACH_NLRI, MP_UNREACH_NLRI (§7.11, §5.3, §3(j)): the NLRI cannot be trusted: reset,
    # Optional Attribute Error (3/9) or Attribute Flags Error (3/4).
    Case(
        "MP_REACH_NLRI-length",
        RESET,
        b"",
        attr(OPT, 14, b"\x00\x02\x01\x10"),
        None,
        (3, 9),
        family="ipv6",
    ),
    Case("MP_REACH_NLRI-flags", RESET, b"", b"FLAGS", None, (3, 4), family="ipv6"),
    Case("MP_REACH_NLRI-value", RESET, b"", b"NEXTHOP", None, (3, 9), family="ipv6"),
    Case(
        "MP_UNREACH_NLRI-length",
        RESET,
        b"",
        attr(OPT, 15, b"\x00\x02"),
        None,
        (3, 9),
        family="ipv6",
    ),
    Case("MP_UNREACH_NLRI-flags", RESET, b"", b"UNREACH-FLAGS", None, (3, 4), family="ipv6"),
    Case("MP_UNREACH_NLRI-value", RESET, b"", b"UNREACH-VALUE", None, (3, 9), family="ipv6"),
]


def v6_prefix(i: int) -> bytes:
    return pfx.from_str(f"2001:db8:{i:x}::/48")


def build(case: Case, i: int, good: bool) -> tuple[bytes, str]:
    """The UPDATE (good route or malformed) and the prefix text."""
    attrs = base(case.session, 100 if good else 200)
    if case.family == "ipv6":
        p = v6_prefix(i)
        text = pfx.to_str(p, 2)
        del attrs[3]  # no NEXT_HOP: the next hop is in MP_REACH_NLRI
        block = b"".join(attrs.values())
        if good:
            return update(mp_reach(p) + block), text
        bad = case.bad
        if bad == b"FLAGS":
            bad = mp_reach(p, flags=OPT_T)
        elif bad == b"NEXTHOP":
            bad = mp_reach(p, nh=MP_V6_NH[:5])  # next hop length 5 for IPv6
        elif bad == b"UNREACH-FLAGS":
            bad = attr(OPT_T, 15, b"\x00\x02\x01" + p)
        elif bad == b"UNREACH-VALUE":
            bad = attr(OPT, 15, b"\x00\x02\x01\xc8" + p[1:])  # prefix length 200
        elif case.name.startswith("MP_UNREACH"):
            pass
        else:
            return update(bad + block), text
        return update(bad), text
    p = pfx.from_str(f"10.7.{i}.0/24")
    text = pfx.to_str(p, 1)
    if not good and case.replaces is not None:
        attrs[case.replaces] = case.bad
        return update(b"".join(attrs.values()), p), text
    extra = case.good if good else case.bad
    return update(b"".join(attrs.values()) + extra, p), text


@pytest.fixture
async def rig():
    port = next(ports)
    neighbors = [
        # IPv4 sessions carry IPv6 routes to the witness with this next hop.
        {"address": a, "asn": asn, "port": port, "passive": True, "next_hop_ipv6": "2001:db8::1"}
        for a, asn in ((IBGP, 65000), (AS2, 65000), (EBGP, 65001), (WITNESS, 65002), (RESET, 65000))
    ]
    cfg = speaker_config(SPEAKER, port, neighbors, router_id=ROUTER_ID, cluster_id=CLUSTER_ID)
    speaker = await start_speaker(cfg)
    peers: list[RawPeer] = []

    async def peer(address: str, asn: int, **kw) -> RawPeer:
        rp = RawPeer(address, SPEAKER, port, asn, **kw)
        peers.append(rp)
        await rp.connect()
        assert await until(lambda: speaker.neighbors[address].session.established)
        return rp

    witness = await peer(WITNESS, 65002)
    try:
        yield speaker, peer, witness
    finally:
        for rp in peers:
            await rp.close()
        await speaker.stop()


def stored(speaker, address: str, prefix: str):
    fam = (2, 1) if ":" in prefix else (1, 1)
    key = pfx.from_str(prefix)
    return speaker.neighbors[address].peer.source.adj_in[fam].get(key)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_rfc7606_over_a_session(rig, case: Case):
    speaker, peer, witness = rig
    session = speaker.neighbors[WITNESS].session
    witness_since = session.fsm.stats.established_at
    asn = {IBGP: 65000, AS2: 65000, EBGP: 65001, RESET: 65000}[case.session]
    rp = await peer(case.session, asn, as4=case.session != AS2)
    n = speaker.neighbors[case.session]
    i = CASES.index(case) + 1

    good, prefix = build(case, i, good=True)
    rp.send(good)
    assert await until(lambda: routes(speaker, prefix)), f"good route {prefix} not accepted"
    key = pfx.from_str(prefix)
    # The witness (eBGP) is told about it: it keeps receiving updates.
    assert await until(lambda: key in witness.announced())
    before = stored(speaker, case.session, prefix)

    bad, _ = build(case, i, good=False)
    rp.send(bad)

    if case.expect == W:
        assert await until(lambda: not routes(speaker, prefix)), "not treated as withdrawn"
        assert await until(lambda: key not in witness.announced()), "witness not told"
        assert n.session.established and not rp.eof
        assert rp.notifications() == []
    elif case.expect == D:

        def applied():
            paths = routes(speaker, prefix)
            return paths and paths[0]["med"] == 200

        assert await until(applied), (
            f"route {prefix} not kept with the new MED: {routes(speaker, prefix)}"
        )
        after = stored(speaker, case.session, prefix)
        if case.check == "as4_path":
            # The AS4_PATH was dropped: the path is the two-octet one, AS_TRANS included.
            assert routes(speaker, prefix)[0]["as_path"] == "23456"
            assert before.as_path == ((2, (4200000001,)),), before
            assert after.as_path == ((2, (23456,)),), after
        elif case.check == "as4_aggregator":
            assert before.aggregator == (4200000001, ip("10.9.9.9")), before
            assert after.aggregator == (23456, ip("10.9.9.9")), after
        else:
            assert getattr(after, case.check) in (None, False, ()), after
        assert n.session.established and not rp.eof
        assert rp.notifications() == []
    else:
        code, subcode = case.expect
        assert await until(lambda: rp.notifications()), "no NOTIFICATION"
        notification = rp.notifications()[0]
        assert (notification.code, notification.subcode) == (code, subcode), notification
        assert await until(lambda: rp.eof), "connection not closed after the NOTIFICATION"
        assert await until(lambda: not n.session.established)
        assert await until(lambda: not routes(speaker, prefix)), "routes of the reset session kept"
        assert await until(lambda: key not in witness.announced())

    # The other session is untouched.
    await asyncio.sleep(0)
    assert session.established
    assert session.fsm.stats.established_at == witness_since
    assert not witness.eof and witness.notifications() == []
