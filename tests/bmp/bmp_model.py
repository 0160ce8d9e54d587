"""A small model of the daemon's side for the BMP tests: RIBs as plain dicts, and the calls
the daemon must make into :class:`~bgpd.bmp.BmpService` when they change. Not a mock of the
code under test (the service, its encoder and stations are the real ones): it stands in for
bgpd's RIB, which the lead wires in.
"""

from bgpd.bmp import BmpPeer, BmpService, codec, live_items
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.messages import Notification, Open
from bgpd.wire.packer import pack_announce, pack_withdraw

PID = 7  # the path id of every ADD-PATH route here
OPEN = Open(asn=65000, hold_time=90, router_id="192.0.2.254").encode()


class Model:
    """The daemon's side: RIBs as plain dicts, and the calls the daemon makes."""

    def __init__(self, service: BmpService | None = None) -> None:
        self.service = service
        self.peers: dict[str, BmpPeer] = {}
        self.adj: dict[str, dict] = {}  # peer -> family -> key -> attrs
        self.loc: dict = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}

    # the tables provider
    def adj_rib_in(self, key):
        for fam, table in self.adj.get(key, {}).items():
            for k, v in live_items(table):
                yield fam, k, v

    def loc_rib(self):
        for fam, table in self.loc.items():
            for k, v in live_items(table):
                yield fam, k, v

    def up(self, key, n, addpath=frozenset()):
        p = BmpPeer(
            key,
            f"192.0.2.{n}",
            65000 + n,
            f"192.0.2.{n}",
            "192.0.2.254",
            179,
            40000 + n,
            OPEN,
            OPEN,
            add_path_rx=addpath,
        )
        self.peers[key] = p
        self.adj[key] = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self.service.peer_up(p)
        return p

    def down(self, key):
        self.service.peer_down(key, notification=Notification(6, 2, b""), local=True)
        gone = self.adj.pop(key)
        del self.peers[key]
        self._relocate(
            {(f, k[1] if isinstance(k, tuple) else k) for f, t in gone.items() for k in t}
        )

    def receive(self, key, family, routes):
        """The peer sends UPDATEs: ``[(nlri_key, attrs or None)]``."""
        peer = self.peers[key]
        ctx = peer.context("in")  # as the peer sends them: its AS size, its path ids
        raws = []
        table = self.adj[key][family]
        for k, attrs in routes:
            if attrs is None:
                raws += pack_withdraw(family, [k], ctx)
                table.pop(k, None)
            else:
                raws += pack_announce(family, attrs, [k], ctx)
                table[k] = attrs
        self.service.updates_received(key, raws)
        self._relocate({(family, k[1] if isinstance(k, tuple) else k) for k, _ in routes})

    def _relocate(self, prefixes):
        """The decision: the lowest peer key with the prefix wins (any rule will do)."""
        changes: dict = {}
        for fam, p in prefixes:
            best = None
            for key in sorted(self.adj):
                t = self.adj[key][fam]
                best = t.get(p) or t.get((PID, p))
                if best is not None:
                    break
            old = self.loc[fam].get(p)
            if best is None:
                self.loc[fam].pop(p, None)
            else:
                self.loc[fam][p] = best
            if old is not best:
                changes.setdefault(fam, []).append((p, best))
        for fam, ch in changes.items():
            self.service.loc_rib_changed(fam, ch)

    def expected(self) -> dict:
        out = {("loc",): {(f, k): a for f, t in self.loc.items() for k, a in t.items()}}
        for key, fams in self.adj.items():
            out[(self.peers[key].address,)] = {
                (f, k): a for f, t in fams.items() for k, a in t.items()
            }
        return out


def rebuild(msgs, addpath_peers=()) -> dict:
    """The collector's view: tables per peer from Peer Up/Down and Route Monitoring."""
    tables: dict = {}
    for m in msgs:
        if m.type == codec.PEER_UP:
            tables[("loc",) if m.peer_type == 3 else (m.peer_address,)] = {}
        elif m.type == codec.PEER_DOWN:
            tables.pop((m.peer_address,), None)
        elif m.type == codec.ROUTE_MONITORING:
            who = ("loc",) if m.peer_type == 3 else (m.peer_address,)
            u = m.update(
                frozenset({IPV4_UNICAST, IPV6_UNICAST})
                if m.peer_address in addpath_peers
                else frozenset()
            )
            t = tables[who]
            for fam, keys in u.unreach():
                for k in keys:
                    t.pop((fam, k), None)
            for fam, attrs, keys in u.reach():
                for k in keys:
                    t[(fam, k)] = attrs
    return tables


def attrs_for(rng, fam):
    nh = (
        bytes((192, 0, 2, rng.randrange(1, 250)))
        if fam == IPV4_UNICAST
        else pfx.addr_from_str(f"2001:db8::{rng.randrange(1, 999)}")
    )
    return intern(
        AttrSet(
            origin=0,
            as_path=((2, (rng.randrange(1, 1 << 32),)),),
            next_hop=nh,
            med=rng.randrange(100),
        )
    )


def prefixes(fam, n, base=0):
    if fam == IPV4_UNICAST:
        return [
            pfx.from_str(f"10.{(base + i) >> 8 & 255}.{(base + i) & 255}.0/24") for i in range(n)
        ]
    return [pfx.from_str(f"2001:db8:{base + i:x}::/48") for i in range(n)]
