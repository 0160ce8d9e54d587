"""Drive the route engine with plain values and a fake clock: no sockets, no event loop.

:class:`Harness` builds an :class:`~bgpd.rde.Rde` from a config dict, attaches each
neighbor as a peer whose link is a :class:`FakeLink`, and gives each a :class:`View`
(tests/rib/rib_helpers.py) that applies the UPDATEs the engine drains for it.
"""

from rib_helpers import IPV4, IPV6, View

from bgpd.config import parse
from bgpd.fsm.negotiate import Negotiated
from bgpd.rde import Rde
from bgpd.rib import DecisionConfig, Route
from bgpd.wire import Context, Open, decode_update, end_of_rib, pack_announce, pack_withdraw
from bgpd.wire.capabilities import GracefulRestart

LOCAL_ADDRESS = "192.0.2.254"


class FakeLink:
    """A session as the engine reads it (writability only)."""

    def __init__(self) -> None:
        self.writable = True
        self.unwritable_since = None


def negotiated(
    peer_asn: int,
    router_id: str,
    *,
    local_as: int = 65000,
    families=(IPV4, IPV6),
    gr: GracefulRestart | None = None,
    enhanced_route_refresh: bool = False,
    add_path_rx=(),
    add_path_tx=(),
) -> Negotiated:
    ctx = Context(
        ibgp=peer_asn == local_as,
        add_path_rx=frozenset(add_path_rx),
        add_path_tx=frozenset(add_path_tx),
    )
    return Negotiated(
        context=ctx,
        families=frozenset(families),
        hold_time=90,
        keepalive=30,
        local_open=Open(local_as, 90, "10.0.0.1"),
        peer_open=Open(peer_asn, 90, router_id),
        peer_asn=peer_asn,
        peer_router_id=router_id,
        four_octet_as=True,
        route_refresh=True,
        enhanced_route_refresh=enhanced_route_refresh,
        graceful_restart=gr,
        long_lived_gr=None,
        fqdn=None,
    )


def gr_cap(restart_time=120, restarting=False, notification=False, forwarding=True):
    return GracefulRestart(
        restart_time=restart_time,
        restarting=restarting,
        notification=notification,
        families=((1, 1, forwarding), (2, 1, forwarding)),
    )


class Harness:
    def __init__(self, neighbors, **top) -> None:
        self.config = parse({"router_id": "10.0.0.1", "asn": 65000, "neighbors": neighbors, **top})
        c = self.config
        cluster = c.cluster_id or (c.router_id if any(n.rr_client for n in c.neighbors) else None)
        self.rde = Rde(
            router_id=bytes(map(int, str(c.router_id).split("."))),
            asn=c.asn,
            cluster_id=bytes(map(int, str(cluster).split("."))) if cluster else None,
            decision=DecisionConfig(multipath=c.multipath),
            policies=c.policies,
            graceful=c.graceful_restart,
        )
        self.links = {}
        self.peers = {}
        for n in c.neighbors:
            link = self.links[str(n.address)] = FakeLink()
            self.peers[str(n.address)] = self.rde.add_peer(n, link=link)
        self.views: dict = {}
        self.now = 1000.0
        self.actions: list = []

    def ctx(self, address: str) -> Context:
        return self.peers[address].negotiated.context

    def up(self, address: str, router_id: str | None = None, next_hops=None, **kw) -> list:
        peer = self.peers[address]
        neg = negotiated(peer.cfg.asn, router_id or address, **kw)
        self.views[address] = View(
            Context(ibgp=neg.context.ibgp, add_path_rx=neg.context.add_path_tx)
        )
        out = self.rde.peer_up(peer, neg, LOCAL_ADDRESS, self.now, next_hops)
        self.actions += out
        return out

    def down(self, address: str, **kw) -> list:
        from bgpd.rde import PeerDown

        out = self.rde.peer_down(self.peers[address], PeerDown(**kw), self.now)
        self.actions += out
        return out

    def send(self, address: str, msgs) -> list:
        """The peer sends these encoded messages (UPDATEs)."""
        ctx = self.ctx(address)
        updates = [decode_update(m[19:], ctx) for m in msgs]
        out = self.rde.receive(self.peers[address], updates, self.now)
        self.actions += out
        return out

    def announce(self, address: str, fam, attrs, prefixes) -> list:
        return self.send(address, pack_announce(fam, attrs, prefixes, self.ctx(address)))

    def withdraw(self, address: str, fam, prefixes) -> list:
        return self.send(address, pack_withdraw(fam, prefixes, self.ctx(address)))

    def eor(self, address: str, fam=IPV4) -> list:
        return self.send(address, [end_of_rib(fam)])

    def drain(self):
        out = self.rde.drain(10**7, self.now)
        for peer, msgs in out.messages.items():
            self.views[peer.address].apply(msgs)
        self.actions += out.actions
        return out

    def tick(self, seconds: float) -> list:
        self.now += seconds
        out = []
        d = self.rde.next_deadline()
        while d is not None and d <= self.now:
            out += self.rde.handle_timer(self.now)
            d = self.rde.next_deadline()
        self.actions += out
        return out

    def routes(self, fam=IPV4) -> dict:
        """The Loc-RIB, a single-candidate entry (a Route) shown as its candidate."""
        return {
            p: e.cand if type(e) is Route else e for p, e in self.rde.rib.loc[fam].table.items()
        }
