"""The daemon: builds everything from the config, forwards session events to the route
engine and carries out what it returns.

The route logic is in :class:`bgpd.rde.Rde` (sans-I/O); this is its asyncio binding. Each
session report goes to the engine once (:meth:`Speaker.updates_received` and friends), the
actions it returns are carried out (:meth:`Speaker.execute`), one ``call_soon`` drains the
export groups when the engine wants it, and one ``call_at`` handle is kept armed at the
engine's next deadline (every routing timer: graceful restart, deferral, the FIB's wait,
maximum-prefix restarts, slow peers).
"""

import asyncio
import ipaddress
import os
import time
from typing import TYPE_CHECKING

import structlog

from bgpd.api.server import ControlServer
from bgpd.policy import RouteInfo, chain
from bgpd.rde import Rde, actions
from bgpd.rde.graceful import PeerDown
from bgpd.rib import DecisionConfig
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import CEASE_CONFIG_CHANGE, IPV4_UNICAST, IPV6_UNICAST

from . import control, reload, status
from .bfd import BfdSessions
from .monitoring import Monitor
from .neighbors import Neighbor, NeighborTable
from .restart import RestartDecision
from .services import Services

if TYPE_CHECKING:
    from bgpd.api.metrics import MetricsServer
    from bgpd.kernel import Kernel

DRAIN_BUDGET = 20000  # prefixes packed per export pass before yielding to the event loop

log = structlog.get_logger("bgpd")


def cluster_id_of(config) -> bytes | None:
    """A reflector: an explicit cluster_id, or the router ID once any neighbor (or template
    of a dynamic range) is a reflection client."""
    cid = config.cluster_id
    if cid is None and (
        any(n.rr_client for n in config.neighbors)
        or any(config.templates[d.template].neighbor.rr_client for d in config.dynamic_neighbors)
    ):
        cid = config.router_id
    return ipaddress.IPv4Address(str(cid)).packed if cid else None


class _HostRoutes:
    """The kernel's way into the engine (a ``bgpd.kernel.RouteSink``): host routes go to
    the engine, and a committed batch wakes the daemon up to export it."""

    def __init__(self, speaker: "Speaker", families: frozenset | None = None) -> None:
        self.speaker = speaker
        rde = speaker.rde
        self.families = frozenset(rde.rib.loc) if families is None else families
        self.announce = rde.announce
        self.withdraw = rde.withdraw

    def commit(self) -> None:
        if self.speaker.bird is not None:  # next hops BIRD's way may resolve otherwise now
            self.speaker.bird.host_changed()
        self.speaker.rde.commit()
        self.speaker.kick()


class Speaker:
    """A running bgpd; the handler of every session (``bgpd.session.peer.SessionHandler``)."""

    def __init__(
        self, config, config_path: str | None = None, loop=None, restart=False, bird=None
    ) -> None:
        """``bird``: a :class:`~.birdmode.BirdSetup` when running on a BIRD configuration
        (``config`` is then its translation)."""
        self.config = config
        self.config_path = config_path
        self.bird = bird
        self.loop = loop or asyncio.get_event_loop()
        self.started = time.monotonic()
        self.stopping = asyncio.Event()
        self.closing = False  # stop() has begun
        self.rde = Rde(
            router_id=ipaddress.IPv4Address(str(config.router_id)).packed,
            asn=config.asn,
            cluster_id=cluster_id_of(config),
            decision=self.decision_config(config),
            policies=config.policies,
            graceful=config.graceful_restart,
        )
        self.monitor = Monitor(self)  # MRT and BMP: every session's tap while configured
        self.neighbors = NeighborTable(self)
        self.bfd = BfdSessions(self)
        self.listeners: list = []
        self.control: ControlServer | None = None
        self.metrics: MetricsServer | None = None
        self.kernel: Kernel | None = None
        self.restart = RestartDecision(config, requested=restart)
        self.reloads = {"ok": 0, "error": 0, "last": None, "last_error": None}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._drain_handle: asyncio.Handle | None = None
        self.services = Services(self)  # health-checked announcements (services.py)

    @staticmethod
    def decision_config(config) -> DecisionConfig:
        return DecisionConfig(
            always_compare_med=config.always_compare_med,
            multipath=config.multipath,
            multipath_relax=config.multipath_relax,
        )

    @staticmethod
    def networks_of(config) -> dict:
        nets: dict = {IPV4_UNICAST: [], IPV6_UNICAST: []}
        for n in config.networks:
            net = ipaddress.ip_network(str(n))
            nets[IPV4_UNICAST if net.version == 4 else IPV6_UNICAST].append(pfx.from_network(net))
        return nets

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        rde = self.rde
        restart, reason, may_adopt = self.restart.decide()  # before any OPEN is built
        if restart is not None:
            rde.set_start(restart, reason)
        self.monitor.start()  # before any session: every message is logged
        for ncfg in cfg.neighbors:
            self.neighbors.add(ncfg)
        self.neighbors.set_dynamic(cfg)
        rde.originate(self.networks_of(cfg))
        await self.start_kernel()  # before any session can change the RIB
        if may_adopt:
            reason = RestartDecision.by_kernel(self.kernel)
            if reason is not None and rde.set_start(True, reason):
                self.neighbors.update_opens()
        if rde.gr.ours.start is not None:
            log.info("graceful restart: start", mode=rde.gr.ours.start, reason=rde.gr.ours.reason)
        now = time.monotonic()
        if self.kernel is not None and self.kernel.fib is not None:
            self.execute(rde.wait_for_fib(self.kernel.settings.sweep_timeout, now))
        self.execute(rde.begin_restart(now))
        self.listeners = self.neighbors.start_listeners()
        self.services.start(cfg.services)
        if cfg.control_socket:
            self.control = ControlServer(str(cfg.control_socket), control.dispatcher(self))
            await self.control.start()
        await self.start_metrics()
        for n in self.neighbors.values():
            if not n.cfg.shutdown and not self.bfd.holds(n):
                n.session.start()
        log.info(
            "bgpd started",
            router_id=str(cfg.router_id),
            asn=cfg.asn,
            neighbors=len(self.neighbors),
            pid=os.getpid(),
        )

    async def stop(
        self,
        message: str = "bgpd is shutting down",
        *,
        marker: bool = True,
        graceful: bool | None = None,
    ) -> None:
        """Stop everything. A graceful stop (``graceful`` None: whenever graceful restart is
        on; False: never, as BIRD's shutdown; True: when it is on): sessions end without a
        NOTIFICATION and, when ``marker`` (not after a failed start), the restart marker is
        left for the next start (which is then a restart if it comes within restart_time).
        Otherwise every session gets Cease/Administrative Shutdown (6/2) with ``message``
        (RFC 9003; empty: no data) and no marker is left."""
        await self.services.close()  # no check result may change routes from here on
        # the sessions that end from here on take nothing out of the RIB: the routes go with
        # the process (withdrawing a full table only to exit costs time and memory)
        self.closing = True
        graceful = self.rde.gr.enabled and graceful is not False
        if graceful and marker:
            self.restart.leave()
        elif not marker:
            self.restart.restore()
        if self.kernel is not None:  # first, so that closing sessions removes nothing
            await self.kernel.close()
            self.kernel = None
        for n in self.neighbors.values():
            if graceful and n.session.established and n.peer.helper.cap is not None:
                # Going down for a restart: no NOTIFICATION, so that the neighbor keeps our
                # routes (as stale) and forwarding continues (RFC 4724 §4.1).
                n.session.abort()
            else:
                n.session.close(subcode=2, message=message)
        self.bfd.close()  # AdminDown: the peers' BGP does not react to it (RFC 5882)
        for h in (self._timer, self._drain_handle):
            if h is not None:
                h.cancel()
        self._timer = self._drain_handle = None
        await asyncio.sleep(0.05)  # give NOTIFICATIONs a moment to leave
        for lst in self.listeners:
            lst.close()
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            await self.metrics.close()
        await self.monitor.close()  # after the sessions: their last messages are logged
        log.info("bgpd stopped")

    async def start_metrics(self) -> None:
        """The metrics and health endpoint, as the config says (again after a reload)."""
        if self.metrics is not None:
            await self.metrics.close()
            self.metrics = None
        m = self.config.metrics
        if m is not None:
            # imported here: prometheus_client (and the ssl it imports) cost 3.5 MiB of RSS,
            # for nothing when no metrics endpoint is configured
            from bgpd.api.metrics import MetricsServer

            snap, health = (lambda: status.snapshot(self)), (lambda: status.health_check(self))
            self.metrics = MetricsServer(m.address, m.port, snap, health)
            await self.metrics.start()

    async def start_kernel(self) -> None:
        """Host routes (kernel, connected, static) into the engine; best routes into the FIB."""
        from bgpd.kernel.settings import KernelSettings  # bgpd.kernel only when configured

        settings = KernelSettings.from_config(self.config)
        if settings is None:
            return
        from bgpd.kernel import Kernel

        kcfg = self.config.kernel
        export = None
        if self.bird is not None:
            from .birdmode import BirdKernelExport

            export = BirdKernelExport(
                self.bird,
                self.bird.extras.kernel_export,
                lambda name: self.kernel.state.ifindex(name) if self.kernel else None,
            )
        elif kcfg is not None and kcfg.import_policy:
            pol = chain([self.rde.policies[x] for x in kcfg.import_policy])

            def export(fam, prefix, cands, route, pol=pol):
                # kernel.import: a best route must pass these policies to be installed.
                src = cands[0].source
                attrs = cands[0].attrs_for(fam, prefix)
                if attrs is None:
                    return None
                iface = src.interface_of(fam, prefix) if hasattr(src, "interface_of") else None
                info = RouteInfo(src.kind, src.name if src.is_bgp else None, iface, src.local_as)
                return route if pol.evaluate(attrs, prefix, fam, info) is not None else None

        locs = self.kernel_locs()
        self.kernel = Kernel(
            locs,
            settings,
            routes=_HostRoutes(self, frozenset(locs)),
            export=export,
            local_as=self.config.asn,
        )
        if self.bird is not None:
            self.bird.attach(self.kernel.state, self.rde)
        await self.kernel.start()

    def kernel_locs(self) -> dict:
        """The Loc-RIBs the kernel side serves: all of them, but only the file's family on
        a BIRD file. BIRD's kernel protocol is per family, and calico-node runs ``bird``
        and ``bird6`` side by side, both writing protocol 12 into the same table: each must
        learn, install and sweep its own family only, or each removes the other's routes
        as strays."""
        locs = self.rde.rib.loc
        if self.bird is None:
            return locs
        fam = IPV6_UNICAST if self.bird.extras.family == "ipv6" else IPV4_UNICAST
        return {fam: locs[fam]}

    # --- neighbors and reload -----------------------------------------------------------------

    def add_neighbor(self, ncfg) -> Neighbor:
        n = self.neighbors.add(ncfg)
        for lst in self.listeners:
            self.neighbors.set_listener_keys(lst)
        if not ncfg.shutdown and not self.bfd.holds(n):
            n.session.start()
        return n

    def reload(self) -> dict:
        result = reload.reload(self)
        if result["ok"]:  # services are not the reload's: added, removed, changed here
            result["services"] = self.services.apply(self.config.services)
        return result

    def command(self, name: str, **args):
        """Run a control command (``bgpd.speaker.control.COMMANDS``) in-process."""
        return control.dispatcher(self)(name, args)

    def rebuild(self) -> None:
        """Identity or listeners changed: every session starts again on the new config."""
        new = self.config
        for n in list(self.neighbors.values()):
            self.neighbors.remove(n, CEASE_CONFIG_CHANGE, "router configuration changed")
        for lst in self.listeners:
            lst.close()
        self.rde.reset_identity(
            router_id=ipaddress.IPv4Address(str(new.router_id)).packed,
            asn=new.asn,
            cluster_id=cluster_id_of(new),
        )
        self.rde.reconfigure(policies=new.policies)
        self.monitor.apply(("mrt", "bmp"))  # BMP starts over with a new identity
        for ncfg in new.neighbors:
            self.neighbors.add(ncfg)
        self.neighbors.set_dynamic(new)
        self.rde.originate(self.networks_of(new))
        self.listeners = self.neighbors.start_listeners()
        for n in self.neighbors.values():
            if not n.cfg.shutdown and not self.bfd.holds(n):
                n.session.start()

    # --- the session handler: forward to the engine -------------------------------------------

    def session_established(self, session) -> None:
        n: Neighbor = session.owner
        n.state_since = time.monotonic()
        neg = session.fsm.negotiated
        self.monitor.established(n)
        local = session.local_address()
        hops = self.neighbors.next_hops(n, neg, local)
        self.execute(self.rde.peer_up(n.peer, neg, local, time.monotonic(), hops))

    def session_down(self, session, event) -> None:
        n: Neighbor = session.owner
        n.state_since = time.monotonic()
        self.monitor.down(n, event)
        if self.closing:
            return  # the daemon stops: see stop()
        down = PeerDown(
            was_established=event.was_established,
            notification=event.notification_sent or event.notification_received,
            deliberate=not session.enabled or session.closed,
        )
        self.execute(self.rde.peer_down(n.peer, down, time.monotonic()))

    def updates_received(self, session, updates) -> None:
        self.execute(self.rde.receive(session.owner.peer, updates, time.monotonic()))

    def route_refresh_received(self, session, rr) -> None:
        self.execute(self.rde.route_refresh(session.owner.peer, rr, time.monotonic()))

    def session_writable(self, session) -> None:
        self.rde.writable(session.owner.peer)
        self.kick()

    # --- carrying out the engine's actions ------------------------------------------------------

    def execute(self, todo) -> None:
        """Carry out the engine's actions, then drain and re-arm the timer as it wants."""
        for a in todo:
            n = self.neighbors.get(a.peer.address) if hasattr(a, "peer") else None
            if hasattr(a, "peer") and (n is None or n.peer is not a.peer):
                continue  # a peer that is gone
            t = type(a)
            if t is actions.PauseReading:
                n.session.pause_reading()
            elif t is actions.ResumeReading:
                n.session.resume_reading()
            elif t is actions.SendMessages:
                n.session.send(list(a.messages))
            elif t is actions.StopSession:
                n.session.stop(subcode=a.subcode)
                n.session.last_error = a.reason
            elif t is actions.StartSession:
                n.session.start()
            elif t is actions.RemovePeer:
                if a.reason:
                    n.session.last_error = a.reason
                # not from inside the session's own event handling
                self.loop.call_soon(self._remove, n, a.subcode, a.reason)
            elif t is actions.RestartDone:
                self.neighbors.update_opens()
            elif t is actions.FibConverged and self.kernel is not None:
                self.kernel.converged(a.reason)
        self.kick()

    def _remove(self, n: Neighbor, subcode: int, reason: str) -> None:
        if self.neighbors.get(n.address) is n:
            self.neighbors.remove(n, subcode, reason)

    def kick(self) -> None:
        """Drain soon if the engine has output; keep the timer at its next deadline."""
        if self.rde.wants_drain and self._drain_handle is None:
            self._drain_handle = self.loop.call_soon(self._drain)
        when = self.rde.next_deadline()
        if when != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(when, self._on_timer) if when is not None else None
            self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.execute(self.rde.handle_timer(time.monotonic()))

    def _drain(self) -> None:
        self._drain_handle = None
        out = self.rde.drain(DRAIN_BUDGET, time.monotonic())
        for peer, msgs in out.messages.items():
            peer.link.send(msgs)
        self.execute(out.actions)
