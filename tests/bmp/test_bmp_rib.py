"""BMP fed by today's RIB: RibTables for the resync, LocRibListener on every LocRib, over a
real ``bgpd.rib.Rib``; the collector's tables must equal the RIB's."""

import asyncio

from bmp_model import rebuild

from bgpd.bmp import BmpPeer, BmpService, StationConfig, codec
from bgpd.bmp.rib import LocRibListener, RibTables, rib_stats
from bgpd.rib import Rib, Source
from bgpd.rib.table import best_of
from bgpd.wire import decode_message
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.messages import Open
from bgpd.wire.packer import pack_announce, pack_withdraw

OPEN = Open(asn=65000, hold_time=90, router_id="192.0.2.254").encode()
BOTH = frozenset({IPV4_UNICAST, IPV6_UNICAST})


def apply(rib, src, update) -> None:
    """An UPDATE into the RIB: withdrawals first, then announcements (what the daemon does)."""
    for fam, keys in update.unreach():
        rib.loc[fam].withdraw(src, keys)
    for fam, a, keys in update.reach():
        rib.loc[fam].announce(src, keys, a)


class Daemon:
    """What the speaker does with an UPDATE read from a neighbor, BMP included."""

    def __init__(self, bmp: BmpService, rib: Rib) -> None:
        self.bmp = bmp
        self.rib = rib
        self.sources: dict = {}

    def up(self, key, n, addpath=frozenset()):
        src = Source(key, asn=65000, local_as=65000, router_id=n, addpath=addpath)
        self.sources[key] = src
        self.bmp.peer_up(
            BmpPeer(
                key,
                f"192.0.2.{n}",
                65000,
                f"192.0.2.{n}",
                "192.0.2.254",
                179,
                4000 + n,
                OPEN,
                OPEN,
                add_path_rx=addpath,
            )
        )
        return src

    def read(self, key, raws):
        """UPDATEs arrive: to BMP as received (pre-policy), then into the RIB; one commit."""
        src = self.sources[key]
        self.bmp.updates_received(key, raws)
        ctx = Context(ibgp=True, add_path_rx=src.addpath)
        for raw in raws:
            apply(self.rib, src, decode_message(raw[18], raw[19:], ctx))
        self.rib.commit()  # the LocRibListener reports the best-path changes

    def expected(self) -> dict:
        out = {("loc",): {}}
        for fam, loc in self.rib.loc.items():
            for p, entry in loc.table.items():
                out[("loc",)][(fam, p)] = best_of(entry).attrs_for(fam, p)
        for src in self.sources.values():
            out[(f"192.0.2.{src.router_id}",)] = {
                (f, k): a for f, t in src.adj_in.items() for k, a in t.items()
            }
        return out


def a(asn, lp, fam):
    nh = (
        bytes((192, 0, 2, asn % 256))
        if fam == IPV4_UNICAST
        else pfx.addr_from_str(f"2001:db8::{asn % 256:x}")
    )
    return intern(AttrSet(origin=0, as_path=((2, (asn,)),), next_hop=nh, local_pref=lp))


def updates(fam, items, attrs, addpath=False, withdraw=False):
    ctx = Context(ibgp=True, add_path_tx=frozenset({fam}) if addpath else frozenset())
    if withdraw:
        return pack_withdraw(fam, items, ctx)
    return pack_announce(fam, attrs, items, ctx)


async def test_rib_adapters_feed_a_collector(collector):
    rib = Rib()
    bmp = BmpService(
        [
            StationConfig(
                address=collector.address, port=collector.port, retry=0.05, stats_interval=1
            )
        ],
        router_id="192.0.2.254",
        local_as=65000,
        tables_provider=lambda: RibTables(rib, sources),
        stats_provider=lambda: rib_stats(rib, sources, {"n1": {"rejected": 4}}),
        loc_rib_lookup=lambda fam, keys: RibTables(rib, sources).best_many(fam, keys),
    )
    d = Daemon(bmp, rib)
    sources = d.sources
    listener = LocRibListener(bmp)
    for loc in rib.loc.values():
        loc.listeners.append(listener)
    d.up("n1", 1)
    d.up("n2", 2, BOTH)
    ps4 = [pfx.from_str(f"10.2.{i}.0/24") for i in range(40)]
    ps6 = [pfx.from_str(f"2001:db8:{i:x}::/48") for i in range(20)]
    for fam, ps in ((IPV4_UNICAST, ps4), (IPV6_UNICAST, ps6)):
        d.read("n1", updates(fam, ps[:30], a(65001, 200, fam)))
        d.read("n2", updates(fam, [(1, p) for p in ps[10:]], a(65002, 100, fam), True))
    await collector.start()  # the station connects now: resync from the RIB
    bmp.start()
    st = bmp.stations[0]
    await collector.wait_for(lambda: st.resyncs == 1, 5)
    await asyncio.sleep(0.05)
    assert rebuild(collector.last.msgs, {"192.0.2.2"}) == d.expected()
    # live: n1 withdraws some (n2 takes over the best path), n2 adds a second path
    d.read("n1", updates(IPV4_UNICAST, ps4[:15], None, withdraw=True))
    d.read(
        "n2", updates(IPV4_UNICAST, [(2, p) for p in ps4[:5]], a(65003, 300, IPV4_UNICAST), True)
    )
    d.read("n2", updates(IPV6_UNICAST, [(1, p) for p in ps6[15:]], None, True, withdraw=True))
    await collector.wait_for(lambda: rebuild(collector.last.msgs, {"192.0.2.2"}) == d.expected(), 5)
    assert len(d.expected()[("loc",)]) == 55  # 40 + 20 prefixes, 5 withdrawn by both
    # the live changes went the lazy way, coalesced: the 5 IPv4 prefixes changed twice (n1's
    # withdrawal, n2's second path) before the loop turned were read back once
    assert bmp.loc_rib_drained == 15 + 5
    await collector.wait_for(
        lambda: any(m.type == codec.STATISTICS_REPORT for m in collector.last.msgs), 5
    )
    stats = {
        m.peer_address: m.body for m in collector.last.msgs if m.type == codec.STATISTICS_REPORT
    }
    assert stats["192.0.2.1"][:4] == (4).to_bytes(4, "big")  # adj_rib_in, 2 families, rejected
    assert bytes.fromhex("0000 0004 00000004") in stats["192.0.2.1"]
    assert bytes.fromhex("0008 0008") + (55).to_bytes(8, "big") in stats["0.0.0.0"]
    assert bmp.errors == 0
    await bmp.stop()
