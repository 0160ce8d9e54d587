"""``bgpd dump table`` from today's RIB: snapshot_from_rib over a real ``bgpd.rib.Rib``,
written and read back by bgpdump and mrtparse."""

from mrt_readers import bgpdump, expected_row, mrtparse

from bgpd.mrt import dump_table
from bgpd.mrt.rib import DumpPeer, snapshot_from_rib
from bgpd.rib import Rib, Source
from bgpd.wire import decode_message
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.packer import pack_announce


def apply(rib, src, update) -> None:
    """An UPDATE into the RIB: withdrawals first, then announcements (what the daemon does)."""
    for fam, keys in update.unreach():
        rib.loc[fam].withdraw(src, keys)
    for fam, a, keys in update.reach():
        rib.loc[fam].announce(src, keys, a)


def attrs(asn, lp, nh):
    return intern(
        AttrSet(origin=0, as_path=((2, (asn, 4200000000 + asn)),), next_hop=nh, local_pref=lp)
    )


NH4 = {1: bytes((192, 0, 2, 1)), 2: bytes((192, 0, 2, 2))}
NH6 = {1: pfx.addr_from_str("2001:db8::1"), 2: pfx.addr_from_str("2001:db8::2")}


def feed(rib, src, fam, items, a, addpath):
    ctx_tx = Context(ibgp=True, add_path_tx=frozenset({fam}) if addpath else frozenset())
    ctx_rx = Context(ibgp=True, add_path_rx=ctx_tx.add_path_tx)
    for raw in pack_announce(fam, a, items, ctx_tx):
        apply(rib, src, decode_message(raw[18], raw[19:], ctx_rx))


async def test_dump_of_a_real_rib(tmp_path, need_bgpdump, need_mrtparse):
    rib = Rib()
    s1 = Source("n1", asn=65000, local_as=65000, router_id=1)
    s2 = Source(
        "n2",
        asn=65000,
        local_as=65000,
        router_id=2,
        addpath=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
    )
    ps4 = [pfx.from_str(f"10.1.{i}.0/24") for i in range(30)]
    ps6 = [pfx.from_str(f"2001:db8:{i:x}::/48") for i in range(20)]
    a1 = {IPV4_UNICAST: attrs(65001, 200, NH4[1]), IPV6_UNICAST: attrs(65001, 200, NH6[1])}
    a2 = {IPV4_UNICAST: attrs(65002, 100, NH4[2]), IPV6_UNICAST: attrs(65002, 100, NH6[2])}
    b2 = {f: a.replace(local_pref=50) for f, a in a2.items()}
    for fam, ps in ((IPV4_UNICAST, ps4), (IPV6_UNICAST, ps6)):
        feed(rib, s1, fam, ps[:20], a1[fam], False)  # n1 wins where it has a path (LOCAL_PREF)
        feed(rib, s2, fam, [(1, p) for p in ps[10:]], a2[fam], True)
        feed(rib, s2, fam, [(2, p) for p in ps[15:]], b2[fam], True)  # a second path
    rib.commit()

    peers = [
        (s1, DumpPeer("192.0.2.1", "192.0.2.1", 65000)),
        (s2, DumpPeer("192.0.2.2", "2001:db8::2", 65000)),
    ]
    snap = snapshot_from_rib(rib, peers, router_id="192.0.2.254", local_as=65000, now=1_700_000_000)
    path = str(tmp_path / "rib.mrt")
    stats = await dump_table(path, snap, slice_prefixes=7)

    expected = []
    for fam, ps in ((IPV4_UNICAST, ps4), (IPV6_UNICAST, ps6)):
        for i, p in enumerate(ps):
            best = a1[fam] if i < 20 else a2[fam]
            expected.append(expected_row("rib", False, "0.0.0.0", 65000, fam, p, best))
            if i < 20:
                expected.append(expected_row("rib", False, "192.0.2.1", 65000, fam, p, a1[fam]))
            if i >= 10:
                expected.append(
                    expected_row("rib", False, "2001:db8::2", 65000, fam, (1, p), a2[fam])
                )
            if i >= 15:
                expected.append(
                    expected_row("rib", False, "2001:db8::2", 65000, fam, (2, p), b2[fam])
                )
    assert stats["prefixes"] == 50 and stats["entries"] == len(expected)
    assert sorted(bgpdump(path)) == sorted(expected)
    assert sorted(mrtparse(path)) == sorted(expected)


def test_a_prefix_withdrawn_during_the_dump_is_skipped():
    rib = Rib()
    s1 = Source("n1", asn=65000, local_as=65000, router_id=1)
    ps = [pfx.from_str(f"10.1.{i}.0/24") for i in range(3)]
    feed(rib, s1, IPV4_UNICAST, ps, attrs(65001, 100, NH4[1]), False)
    rib.commit()
    snap = snapshot_from_rib(
        rib,
        [(s1, DumpPeer("192.0.2.1", "192.0.2.1", 65000))],
        router_id="192.0.2.254",
        local_as=65000,
        now=1.0,
    )
    it = iter(snap.routes)
    assert next(it)[1] == ps[0]
    rib.loc[IPV4_UNICAST].withdraw(s1, [ps[1]])
    rib.commit()
    assert [r[1] for r in it] == [ps[2]]
