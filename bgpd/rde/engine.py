"""The route decision engine: routes in from peers and the host, decisions, routes out.

Sans-I/O like ``wire``, ``fsm`` and ``rib``: no sockets, no event loop, no clock (every
call that depends on time takes ``now``). The daemon tells it what happened
(:meth:`Rde.peer_up`, :meth:`Rde.peer_down`, :meth:`Rde.receive`, :meth:`Rde.route_refresh`,
:meth:`Rde.originate`, host routes through :meth:`Rde.announce`/:meth:`Rde.withdraw`/
:meth:`Rde.commit`), carries out the actions each call returns (:mod:`bgpd.rde.actions`),
sends what :meth:`Rde.drain` packs whenever :attr:`Rde.wants_drain`, and keeps one timer at
:meth:`Rde.next_deadline`, calling :meth:`Rde.handle_timer` when it fires.

One UPDATE's path: :meth:`receive` → :class:`~.imports.ImportPipeline` (loop checks, import
policy) → ``rib`` (Adj-RIB-In, Loc-RIB, decision) → export groups (pending state) →
:meth:`drain` → :class:`~.exports.ExportContext` (reflection, next hop, export policy) →
``wire`` (packing) → the daemon sends the bytes.
"""

import itertools

import structlog

from bgpd.policy import compile_policies
from bgpd.rib import DecisionConfig, Dest, Rib, Source, best_route, router_id_int
from bgpd.rib.export import SLOW_AFTER
from bgpd.wire import AttrSet, RouteRefresh, intern
from bgpd.wire.constants import (
    CEASE_CONNECTION_REJECTED,
    CEASE_MAX_PREFIXES,
    IPV4_UNICAST,
    IPV6_UNICAST,
    ORIGIN_IGP,
    RR_BORR,
    RR_EORR,
)

from . import actions as act
from .exports import ExportContexts
from .graceful import GracefulRestart, PeerDown
from .imports import Identity, ImportPipeline
from .origins import API, Origins, RouteSpec
from .peer import DOWN, Link, Peer
from .timers import Timers

log = structlog.get_logger("bgpd.rde")

# Reading from peers pauses while the sendable export backlog is above HIGH, resumes below LOW.
BACKLOG_HIGH = 100_000
BACKLOG_LOW = 20_000

# RIB source indexes name cached import and export results on the interned attribute sets,
# which every engine of the process shares: unique for the process, never reused (0: local).
_indexes = itertools.count(1)


class Rde:
    """See the module docstring. ``graceful``: the ``graceful_restart`` config section (or
    None); ``policies``: the ``policies`` config map (compiled here)."""

    def __init__(
        self,
        *,
        router_id: bytes,
        asn: int,
        cluster_id: bytes | None = None,
        decision: DecisionConfig | None = None,
        policies: dict | None = None,
        graceful=None,
    ) -> None:
        self.identity = Identity(router_id, cluster_id, asn)
        self.rib = Rib(decision or DecisionConfig())
        self.local = Source("local", "local", local_as=asn, index=0)
        self.peers: dict[str, Peer] = {}
        self.policies = compile_policies(policies or {})
        self.generation = 0  # bumped by every reconfiguration; part of the import keys
        self.timers = Timers()
        self.imports = ImportPipeline(self.identity)
        self.exports = ExportContexts(self.identity)
        self.gr = GracefulRestart(self.rib, self.timers, graceful)
        self.paused: set = set()  # peers whose reading waits for the export backlog
        self._drain = False
        self._attrs = intern(AttrSet(origin=ORIGIN_IGP, as_path=()))
        self._networks: dict = {IPV4_UNICAST: [], IPV6_UNICAST: []}
        self.origins = Origins(self.rib, self.timers, asn)  # the route API and services
        self._gone: list = []  # actions from remove_peer, handed out by handle_timer

    # --- peers ------------------------------------------------------------------------------

    def add_peer(
        self,
        cfg,
        *,
        local_as: int | None = None,
        dynamic: bool = False,
        asn_mode=None,
        link: Link = DOWN,
        filters=None,
    ) -> Peer:
        """A new neighbor, with a RIB source index of its own. ``filters``: import and
        export filters of its own instead of the config's policies (``Peer.filters``)."""
        peer = Peer(
            cfg,
            next(_indexes),
            local_as if local_as is not None else self.identity.asn,
            dynamic=dynamic,
            asn_mode=asn_mode,
            link=link,
            filters=filters,
        )
        peer.set_policies(self.policies, self.generation)
        self.peers[peer.address] = peer
        return peer

    def remove_peer(self, peer: Peer) -> None:
        """Forget ``peer``: withdraw its routes, drop what is cached for it."""
        if peer.joined:
            self.rib.exporter.leave(peer)
            peer.joined = False
        self.rib.flush(peer.source)
        peer.source.paths.clear()
        peer.clear_filtered()
        self.rib.commit()
        self.exports.forget(peer, self.rib.loc)
        self.timers.cancel(("gr", peer))
        self.timers.cancel(("limit", peer))
        self.paused.discard(peer)
        if self.peers.get(peer.address) is peer:
            del self.peers[peer.address]
            # a removed neighbor never sends End-of-RIB: neither our restart nor the FIB
            # waits for it (what that ends comes out of handle_timer, due at once)
            self._gone.extend(self.gr.forget(peer.address, "neighbor removed"))
        self._drain = True

    def update_peer(self, peer: Peer, cfg, filters=None) -> None:
        """Apply a configuration change that needs no new session (policies, roles)."""
        peer.cfg = cfg
        if filters is not None:
            peer.filters = filters
        peer.source.rr_client = bool(cfg.rr_client)
        peer.set_policies(self.policies, self.generation)

    def peer_up(
        self, peer: Peer, neg, local_address: str | None, now: float, next_hops=None
    ) -> list:
        """The session is Established. ``neg`` is what was negotiated (``context``,
        ``families``, ``peer_open``, ``graceful_restart``, ``enhanced_route_refresh``: the
        fsm's ``Negotiated``); ``local_address`` our end of the connection; ``next_hops``:
        our next hop per family on it (packed, None: none), when the daemon knows better than
        the local address (another family than the session's, RFC 8950)."""
        out: list = []
        src = peer.source
        src.router_id = router_id_int(neg.peer_open.router_id)
        src.addpath = frozenset(neg.context.add_path_rx)
        if peer.asn_mode in ("any", "external"):
            src.asn = neg.peer_open.asn
            src.ibgp = src.asn == src.local_as
            if peer.asn_mode == "external" and src.ibgp:
                return [
                    act.RemovePeer(
                        peer, CEASE_CONNECTION_REJECTED, "template allows external neighbors only"
                    )
                ]
        peer.negotiated = neg
        peer.local_address = local_address
        peer.next_hops = next_hops
        peer.eor = set()
        peer.clear_filtered()  # the peer sends everything again
        out += self.gr.returned(peer, neg, now)
        self._join(peer, neg)
        self._drain = True
        return out

    def peer_down(self, peer: Peer, down: PeerDown, now: float) -> list:
        """The session left Established or never got there (``down.was_established``)."""
        out: list = self.gr.stopped(peer, down)
        peer.negotiated = None
        if peer.dynamic:
            # Dynamic neighbors exist only while their session does.
            out.append(act.RemovePeer(peer, 3, ""))
        if peer.joined:
            self.rib.exporter.leave(peer)
            peer.joined = False
        self.paused.discard(peer)
        if not peer.dynamic and self.gr.retain(peer, down, now):
            self.rib.commit()
            self._drain = True
            return out
        if peer.helper.state == "restarting" and not down.was_established and not down.deliberate:
            # A connection of the restarting neighbor that never came up (the loser of a
            # collision, an OPEN refused): its stale routes wait for the restart timer.
            return out
        self.gr.clear(peer)
        self.rib.flush(peer.source)
        peer.source.paths.clear()
        peer.clear_filtered()
        self.rib.commit()
        self._drain = True
        return out

    def _join(self, peer: Peer, neg, trailer=None) -> None:
        c = self.exports.for_peer(peer, neg, peer.local_address)
        fams = sorted(neg.families)
        if peer.joined:
            self.rib.exporter.rejoin(peer, c.key, neg.context, c, fams, trailer)
        else:
            self.rib.exporter.join(peer, c.key, neg.context, c, fams, trailer)
        peer.joined = True

    # --- routes in --------------------------------------------------------------------------

    def receive(self, peer: Peer, updates, now: float) -> list:
        """A batch of decoded UPDATEs from ``peer`` (everything one read gave)."""
        out: list = []
        locs = self.rib.loc
        self.imports.apply(peer, locs, updates)
        for u in updates:
            fam = u.eor()
            if fam is not None:
                out += self.gr.end_of_rib(peer, fam)
        out += self._check_max_prefixes(peer, now)
        self.rib.commit()
        self._drain = True
        if peer not in self.paused and self.rib.exporter.backlog_over(BACKLOG_HIGH):
            # Export first: reading on would only grow the backlog (and memory).
            self.paused.add(peer)
            out.append(act.PauseReading(peer))
        return out

    def route_refresh(self, peer: Peer, rr, now: float) -> list:
        """The peer asks for our routes again (RFC 2918; BoRR/EoRR with RFC 7313)."""
        neg = peer.negotiated
        fam = (rr.afi, rr.safi)
        if rr.subtype != 0 or neg is None or fam not in neg.families or not peer.joined:
            return []
        out: list = []
        trailer = []
        if neg.enhanced_route_refresh:
            out.append(act.SendMessages(peer, (RouteRefresh(rr.afi, rr.safi, RR_BORR).encode(),)))
            trailer = [RouteRefresh(rr.afi, rr.safi, RR_EORR).encode()]
        self._join(peer, neg, trailer)
        self._drain = True
        return out

    def resend(self, peer: Peer) -> None:
        """The export rules of ``peer`` changed (policy, reflection role): send its whole
        table again, withdrawing what the new rules filter."""
        neg = peer.negotiated
        if neg is None or not peer.joined:
            return
        c = self.exports.for_peer(peer, neg, peer.local_address)
        self.rib.exporter.rejoin(
            peer, c.key, neg.context, c, sorted(neg.families), trailer=[], resync=True
        )
        self._drain = True

    def _check_max_prefixes(self, peer: Peer, now: float) -> list:
        mp = peer.cfg.max_prefixes
        if not mp:
            return []
        limit = mp.limit
        count = peer.received_count()
        if count <= limit:
            peer.limit_hit = False
            return []
        if peer.limit_hit:
            return []
        peer.limit_hit = True
        log.warning("maximum prefixes exceeded", peer=peer.address, limit=limit, received=count)
        if mp.action != "stop":
            return []
        if mp.restart_after:
            self.timers.set(("limit", peer), now + float(mp.restart_after))
        reason = f"maximum prefix limit {limit} exceeded ({count} received)"
        return [act.StopSession(peer, CEASE_MAX_PREFIXES, reason)]

    # --- local and host routes --------------------------------------------------------------

    def originate(self, networks: dict) -> None:
        """Our ``networks`` (family -> [prefix wire bytes]) as local routes: what is no
        longer listed is withdrawn."""
        self._networks = {f: list(p) for f, p in networks.items()}
        for fam, prefixes in self._networks.items():
            loc = self.rib.loc[fam]
            keep = set(prefixes)
            loc.withdraw(self.local, [p for p in self.local.adj_in[fam] if p not in keep])
            loc.announce(self.local, prefixes, self._attrs)
        self.commit()

    def announce(self, source: Source, fam, prefixes, attrs: AttrSet) -> None:
        """A host source (kernel, connected, static) has ``prefixes``; :meth:`commit` after."""
        loc = self.rib.loc.get(fam)
        if loc is not None:
            loc.announce(source, prefixes, attrs)

    def withdraw(self, source: Source, fam, prefixes) -> None:
        loc = self.rib.loc.get(fam)
        if loc is not None:
            loc.withdraw(source, prefixes)

    def commit(self) -> None:
        """Run the decision over what changed and hand it to the listeners (exports, FIB)."""
        self.rib.commit()
        self._drain = True

    # --- routes added at run time: the route API and health-checked services (origins.py) --

    def route_add(
        self,
        owner: str,
        fam,
        prefix: bytes,
        spec: RouteSpec,
        now: float,
        *,
        lease: float | None = None,
        kind: str = API,
    ) -> str:
        """Announce, change or renew a route of ``owner``; ``added``, ``modified``,
        ``renewed`` or ``unchanged``. A ``lease`` (seconds) withdraws it unless renewed."""
        result = self.origins.add(kind, owner, fam, prefix, spec, now, lease)
        self.commit()
        return result

    def route_del(self, owner: str, fam, prefix: bytes, *, kind: str = API) -> None:
        """Withdraw a route of ``owner`` (``origins.RouteError`` if it has none there)."""
        self.origins.delete(kind, owner, fam, prefix)
        self.commit()

    def route_flush(self, owner: str, *, kind: str = API, keep=()) -> None:
        """Withdraw every route of ``owner`` but the ``(family, prefix)`` in ``keep``."""
        if keep:
            self.origins.keep_only(kind, owner, keep)
        else:
            self.origins.flush(kind, owner)
        self.commit()

    # --- routes out -------------------------------------------------------------------------

    @property
    def wants_drain(self) -> bool:
        """Something may have output to pack: the daemon should call :meth:`drain` soon."""
        return self._drain or self.gr.wants_drain

    def drain(self, budget: int, now: float) -> act.Output:
        """Pack up to ``budget`` prefixes per group for every writable group."""
        self._drain = self.gr.wants_drain = False
        result = act.Output()
        if self.gr.ours.restarting:
            return result  # route selection is deferred until our restart completes (§4.1)
        exporter = self.rib.exporter
        result.messages, result.more = exporter.drain(budget=budget, now=now)
        if self.paused and exporter.backlog() < BACKLOG_LOW:
            result.actions = [act.ResumeReading(p) for p in self.paused]
            self.paused = set()
        if result.more:
            if result.messages:
                self._drain = True
            elif "slow" not in self.timers:
                # Output waits for a member that takes none: look again once it may count as
                # slow (it is then moved out of its export group, see Exporter.drain).
                self.timers.set("slow", now + SLOW_AFTER + 0.1)
        return result

    def writable(self, peer: Peer) -> None:
        """``peer`` can take output again."""
        self._drain = True

    # --- timers -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self._gone:
            return 0.0  # actions from remove_peer wait: at once
        return self.timers.next()

    def handle_timer(self, now: float) -> list:
        out: list = self._gone
        self._gone = []
        for key in self.timers.due(now):
            if key == "slow":
                self._drain = True
            elif key == "deferral":
                out += self.gr.end_restart("deferral timer")
            elif key == "fib":
                out += self.gr.fib_converged(f"{self.gr.fib.timeout:g} s after start")
            elif key[0] == "gr":
                out += self.gr.expire(key[1], now)
            elif key[0] == "limit":
                out.append(act.StartSession(key[1]))
            elif key[0] == "lease" and self.origins.expire(key):
                self.commit()
        return out

    # --- graceful restart (ours) and the FIB's wait -----------------------------------------

    def set_start(self, restart: bool, reason: str) -> bool:
        """Whether this start is a graceful restart (decided by the daemon); True when that
        changed what the OPENs say (the R bit)."""
        return self.gr.set_start(restart, reason)

    def begin_restart(self, now: float) -> list:
        """Defer selection until End-of-RIB from every peer that is not shut down."""
        waiting = [a for a, p in self.peers.items() if not p.cfg.shutdown]
        return self.gr.begin(waiting, now)

    def wait_for_fib(self, timeout: float, now: float) -> list:
        expected = [a for a, p in self.peers.items() if not p.dynamic and not p.cfg.shutdown]
        return self.gr.wait_for_fib(expected, timeout, now)

    @property
    def restarting(self) -> bool:
        return self.gr.ours.restarting

    @property
    def gr_in_progress(self) -> bool:
        return self.gr.in_progress(self.peers.values())

    def gr_status(self, now: float) -> dict:
        return self.gr.status(self.peers.values(), now)

    # --- reconfiguration --------------------------------------------------------------------

    def reconfigure(
        self,
        *,
        decision: DecisionConfig | None = None,
        policies: dict | None = None,
        graceful=None,
    ) -> None:
        """Apply a reload: new decision options (reselect everything), newly compiled
        policies (applied to peers by :meth:`update_peer`), the graceful restart section."""
        self.generation += 1
        if policies is not None:
            self.policies = compile_policies(policies)
        if graceful is not None:
            self.gr.cfg = graceful
        if decision is not None:
            cfg = self.rib.cfg
            cfg.multipath = decision.multipath
            cfg.multipath_relax = decision.multipath_relax
            cfg.always_compare_med = decision.always_compare_med
            for loc in self.rib.loc.values():
                for p, entry in loc.table.items():
                    if type(entry) is Dest:
                        loc.retouch(p)
        self.commit()

    def reset_identity(self, *, router_id: bytes, asn: int, cluster_id: bytes | None) -> None:
        """Who we are changed (every peer is removed first): drop every export context."""
        ident = self.identity
        ident.router_id, ident.asn, ident.cluster_id = router_id, asn, cluster_id
        self.local.local_as = asn
        self.origins.set_asn(asn)
        self.exports.clear()
        self.generation += 1

    # --- read side --------------------------------------------------------------------------

    def export_of(self, peer: Peer, fam, prefix: bytes):
        """What ``peer`` is sent for ``prefix`` (None: nothing), by its export group."""
        g = peer.source.group
        if g is None:
            return None
        r = self.rib.loc[fam].route(prefix)
        if r is None:
            return None
        best = r[0]
        if best.source is peer.source:
            return None
        return g.context(best.source, best.attrs_for(fam, prefix), prefix, fam)

    def advertised_counts(self) -> dict:
        """Prefixes advertised to each Established peer, by one pass over the Loc-RIB per
        export group: its members get the same routes, less their own (split horizon)."""
        groups: dict = {}
        for p in self.peers.values():
            g = p.source.group
            if g is not None and p.negotiated is not None:
                groups.setdefault(id(g), (g, []))[1].append(p)
        out = {}
        for g, members in groups.values():
            total = 0
            own: dict = {}
            for fam in g.families:
                for prefix, entry in self.rib.loc[fam].table.items():
                    best = best_route(entry)
                    if g.context(best.source, best.attrs, prefix, fam) is not None:
                        total += 1
                        own[best.source] = own.get(best.source, 0) + 1
            for p in members:
                out[p] = total - own.get(p.source, 0)
        return out
