"""The daemon: wires config, listeners, sessions, routes and the control socket together."""

import asyncio
import contextlib
import dataclasses
import ipaddress
import itertools
import json
import logging
import os
import signal
import sys
import time
import weakref

import structlog

from bgpd.api import health
from bgpd.api.metrics import MetricsServer
from bgpd.api.server import CommandError, ControlServer
from bgpd.config import ConfigError
from bgpd.config import diff as config_diff
from bgpd.config import load as load_config
from bgpd.fsm import SessionSettings, State
from bgpd.kernel import Kernel, KernelSettings
from bgpd.policy import RouteInfo, chain, compile_policies
from bgpd.reflector import Target, export_attrs, import_ok
from bgpd.rib import DecisionConfig, Dest, Rib, Source, best_of, router_id_int
from bgpd.rib.export import SLOW_AFTER
from bgpd.session.listener import Listener
from bgpd.session.peer import PeerSession, Transport
from bgpd.session.tcp import ttl_for
from bgpd.wire import AttrSet, RouteRefresh, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import SAME
from bgpd.wire.capabilities import GracefulRestart as GracefulRestartCap
from bgpd.wire.capabilities import capability_name
from bgpd.wire.constants import (
    CEASE_CONFIG_CHANGE,
    CEASE_CONNECTION_REJECTED,
    CEASE_MAX_PREFIXES,
    CEASE_PEER_DECONFIGURED,
    FAMILY_BY_NAME,
    FAMILY_NAMES,
    IPV4_UNICAST,
    IPV6_UNICAST,
    ORIGIN_IGP,
    ORIGIN_NAMES,
    RR_BORR,
    RR_EORR,
    SEGMENT_NAMES,
)

DRAIN_BUDGET = 20000  # prefixes packed per export pass before yielding to the event loop
# Reading from peers pauses while the sendable export backlog is above HIGH, resumes below LOW.
BACKLOG_HIGH = 100_000
BACKLOG_LOW = 20_000

log = structlog.get_logger("bgpd")


def configure_logging(level: str = "info", json_logs: bool | None = None) -> None:
    """structlog: key-value on a terminal, JSON lines otherwise."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    renderer = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _mapped_v6(addr: str) -> bytes:
    """An IPv6 next hop for a session running over IPv4: the v4-mapped address."""
    return ipaddress.IPv6Address(f"::ffff:{addr}").packed


class Neighbor:
    """A configured neighbor at run time: its session, its RIB source, its counters."""

    def __init__(
        self,
        speaker: "Speaker",
        cfg,
        index: int,
        dynamic_from: str | None = None,
        asn_mode: "int | str | None" = None,
    ) -> None:
        self.speaker = speaker
        self.cfg = cfg
        self.address = str(cfg.address)
        self.index = index
        self.dynamic_from = dynamic_from  # the dynamic_neighbors range it came from
        self.asn_mode = asn_mode  # any / internal / external for dynamic neighbors
        local_as = speaker.local_as_for(cfg)
        self.source = Source(
            self.address,
            "bgp",
            asn=cfg.asn,
            local_as=local_as,
            address_key=ipaddress.ip_address(self.address).packed,
            rr_client=bool(getattr(cfg, "rr_client", False)),
            index=index,
        )
        self.source.info = self
        self.session = PeerSession(
            speaker.settings_for(cfg, asn_mode), speaker.transport_for(cfg), speaker, speaker.loop
        )
        self.session.neighbor = self
        self.state_since = time.monotonic()
        self.joined = False
        self.prefix_limit_hit = False
        self.peer_gr = None  # the peer's graceful-restart capability, while it matters
        self.gr_timer: asyncio.TimerHandle | None = None  # restart or stale timer (helper)
        self.gr_state: str | None = None  # "restarting" (peer down) or "refreshing" (peer back)
        self.eor: set = set()  # families whose End-of-RIB this session has sent
        # The attribute sets holding an import or export result cached under this neighbor's
        # index (weakly: a set lives as long as routes use it). When the neighbor is removed,
        # those results are dropped from the sets that outlive it (shared with other
        # neighbors), which would otherwise keep one more entry per session that ever was.
        self.cached_on: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.import_keys: list = []  # every import_key it has had (one per policy change)
        self.set_policies()

    def set_policies(self) -> None:
        """(Re)build the import/export chains from the speaker's compiled policies."""
        pol = self.speaker.policies
        cfg = self.cfg
        self.import_key = ("imp", self.index, self.speaker.generation)
        self.import_keys.append(self.import_key)
        self.import_policy = (
            chain([pol[x] for x in cfg.import_policy]) if cfg.import_policy else None
        )
        self.export_policy = (
            chain([pol[x] for x in cfg.export_policy]) if cfg.export_policy else None
        )
        self.route_info = RouteInfo("bgp", self.address, None, self.source.local_as)

    @property
    def ibgp(self) -> bool:
        return self.source.ibgp

    @property
    def writable(self) -> bool:
        return self.session.writable

    @property
    def unwritable_since(self) -> float | None:
        return self.session.unwritable_since

    def received_count(self) -> int:
        return sum(len(t) for t in self.source.adj_in.values())


class Speaker:
    """Everything a running bgpd holds; the session handler for every peer."""

    def __init__(
        self, config, config_path: str | None = None, loop=None, restart: bool = False
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.loop = loop or asyncio.get_event_loop()
        self.started = time.monotonic()
        self.neighbors: dict[str, Neighbor] = {}
        self.listeners: list[Listener] = []
        self.control: ControlServer | None = None
        self.metrics: MetricsServer | None = None
        self.kernel: Kernel | None = None  # kernel: host routes and the FIB (bgpd/kernel)
        self.stopping = asyncio.Event()
        self.networks = self._networks(config)
        self.router_id = ipaddress.IPv4Address(str(config.router_id)).packed
        self.cluster_id = _cluster_id(config)
        self.policies = compile_policies(config.policies)
        self.rib = Rib(
            DecisionConfig(
                always_compare_med=bool(getattr(config, "always_compare_med", False)),
                multipath=int(getattr(config, "multipath", 1) or 1),
                multipath_relax=bool(getattr(config, "multipath_relax", False)),
            )
        )
        self.local = Source("local", "local", local_as=config.asn, index=0)
        self._drain_handle: asyncio.Handle | None = None
        self._targets: dict = {}
        self._paused: set = set()  # sessions whose reading waits for the export backlog
        self._slow_check: asyncio.TimerHandle | None = None
        # Our own restart (RFC 4724 §4.1): R bit set, route selection and FIB cleanup deferred
        # until every neighbor sent End-of-RIB or the selection-deferral timer fires. Only a
        # start whose forwarding state survived is one (decided in start(), _gr_decide):
        # ``restart`` (bgpd run --graceful-restart), the marker a graceful stop left, or
        # kernel routes of the previous run adopted.
        self.gr_requested = restart
        self.gr_restarting = False
        self.gr_start: str | None = None  # "restart" or "cold" (None: graceful restart off)
        self.gr_start_reason: str | None = None
        self._gr_marker_taken: tuple[str, dict] | None = None  # (path, data) start consumed
        self.gr_waiting: set = set()  # neighbors whose End-of-RIB the restart still waits for
        self.gr_deferral_end: float | None = None
        self._gr_timer: asyncio.TimerHandle | None = None
        # Restarting neighbors not waited for (they wait for us), whose End-of-RIB the kernel
        # sweep still waits for: sweeping before their routes are back would flap the FIB.
        self._gr_fib_owed: set = set()
        self._index = itertools.count(1)  # RIB source indexes, never reused
        self.generation = 0  # bumped by every reload; part of the policy cache keys
        self.reloads = {"ok": 0, "error": 0, "last": None, "last_error": None}
        self._dynamic: list = []  # (network, DynamicNeighbors, Template, [addresses])
        self.dynamic_refused = 0
        self._group_policy: dict = {}  # export key -> export policy (or None)

    # --- configuration to runtime objects -------------------------------------------------

    @staticmethod
    def _networks(config) -> dict:
        nets: dict = {IPV4_UNICAST: [], IPV6_UNICAST: []}
        for n in config.networks:
            net = ipaddress.ip_network(str(n))
            fam = IPV4_UNICAST if net.version == 4 else IPV6_UNICAST
            nets[fam].append(pfx.from_network(net))
        return nets

    def local_as_for(self, cfg) -> int:
        return getattr(cfg, "local_as", None) or self.config.asn

    def settings_for(self, cfg, asn_mode=None) -> SessionSettings:
        fams = tuple(FAMILY_BY_NAME[f] for f in cfg.families)
        add_path = {}
        for fam_name in cfg.families:
            mode = cfg.add_path.mode(fam_name)
            if mode:
                add_path[FAMILY_BY_NAME[fam_name]] = mode
        kwargs = dict(
            local_as=self.local_as_for(cfg),
            peer_as=None if asn_mode in ("any", "external") else cfg.asn,
            router_id=str(self.config.router_id),
            hold_time=cfg.hold_time,
            connect_retry=cfg.connect_retry,
            passive=cfg.passive,
            delay_open=getattr(cfg, "delay_open", 0) or 0,
            families=fams,
            route_refresh=getattr(cfg, "route_refresh", True),
            extended_message=getattr(cfg, "extended_message", True),
            four_octet_as=getattr(cfg, "four_octet_as", True),
            add_path=add_path,
        )
        if cfg.keepalive is not None:
            kwargs["keepalive"] = cfg.keepalive
        gr = self.config.graceful_restart
        if gr is not None and gr.enabled:
            # R bit while our own restart is in progress; forwarding preserved per family when
            # the kernel keeps our routes across the restart (or there is no FIB to lose).
            kernel = self.config.kernel
            forwarding = kernel is None or not kernel.install or kernel.persist
            kwargs["graceful_restart"] = GracefulRestartCap(
                restart_time=gr.restart_time,
                restarting=self.gr_restarting,
                notification=gr.notification,
                families=tuple((a, sf, forwarding) for a, sf in fams),
            )
        return SessionSettings(**kwargs)

    def _default_source(self, cfg) -> str | None:
        """Without ``source_address``, connect from our listen address of the same family
        (when there is exactly one), so that the peer sees the address it has configured."""
        same = [
            str(x.address)
            for x in self.config.listen
            if _same_family(str(x.address), str(cfg.address))
        ]
        return same[0] if len(set(same)) == 1 else None

    def transport_for(self, cfg) -> Transport:
        ebgp = cfg.asn != self.local_as_for(cfg)
        ttl, min_ttl = ttl_for(ebgp, cfg.ttl_security, cfg.multihop)
        local = str(cfg.source_address) if cfg.source_address else self._default_source(cfg)
        return Transport(
            remote_address=str(cfg.address),
            remote_port=cfg.port,
            local_address=local,
            password=cfg.password,
            ttl=ttl,
            min_ttl=min_ttl,
            connect_timeout=min(float(cfg.connect_retry), 30.0),
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        may_adopt = self._gr_decide()  # before any OPEN is built (the R bit)
        for ncfg in cfg.neighbors:
            self.neighbors[str(ncfg.address)] = Neighbor(self, ncfg, next(self._index))
        self._set_dynamic(cfg)
        self._originate()
        await self._start_kernel()  # kernel: before any session can change the RIB
        if may_adopt:
            self._gr_decide_by_kernel()
        if self.gr_start is not None:
            log.info("graceful restart: start", mode=self.gr_start, reason=self.gr_start_reason)
        if self.gr_restarting:
            self.gr_waiting = {a for a, n in self.neighbors.items() if not n.cfg.shutdown}
            delay = float(cfg.graceful_restart.selection_deferral)
            self.gr_deferral_end = time.monotonic() + delay
            self._gr_timer = self.loop.call_later(delay, self._gr_end_restart, "deferral timer")
            if not self.gr_waiting:
                self.loop.call_soon(self._gr_end_restart, "no neighbors to wait for")
        self._start_listeners()
        if cfg.control_socket:
            self.control = ControlServer(str(cfg.control_socket), self.dispatch)
            await self.control.start()
        mcfg = getattr(cfg, "metrics", None)
        if mcfg is not None:
            self.metrics = MetricsServer(mcfg.address, mcfg.port, self.snapshot, self.cmd_health)
            await self.metrics.start()
        for n in self.neighbors.values():
            if not getattr(n.cfg, "shutdown", False):
                n.session.start()
        log.info(
            "bgpd started",
            router_id=str(cfg.router_id),
            asn=cfg.asn,
            neighbors=len(self.neighbors),
            pid=os.getpid(),
        )

    async def stop(self, message: str = "bgpd is shutting down", *, marker: bool = True) -> None:
        """Stop everything. With graceful restart on, a graceful stop: sessions end without a
        NOTIFICATION and, when ``marker`` (not after a failed start), the restart marker is
        left for the next start (which is then a restart if it comes within restart_time)."""
        gr = self.config.graceful_restart
        graceful = gr is not None and gr.enabled
        if graceful and marker:
            self._gr_leave_marker()
        elif not marker:
            self._gr_restore_marker()
        if self.kernel is not None:  # kernel: first, so that closing sessions removes nothing
            await self.kernel.close()
            self.kernel = None
        for n in self.neighbors.values():
            if graceful and n.session.established and n.peer_gr is not None:
                # Going down for a restart: no NOTIFICATION, so that the neighbor keeps our
                # routes (as stale) and forwarding continues (RFC 4724 §4.1).
                n.session.abort()
            else:
                n.session.close(subcode=2, message=message)
        if self._gr_timer is not None:
            self._gr_timer.cancel()
        if self._slow_check is not None:
            self._slow_check.cancel()
        for n in self.neighbors.values():
            if n.gr_timer is not None:
                n.gr_timer.cancel()
        # Give NOTIFICATIONs a moment to leave.
        await asyncio.sleep(0.05)
        for lst in self.listeners:
            lst.close()
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            await self.metrics.close()
        log.info("bgpd stopped")

    # --- kernel (bgpd/kernel, docs/kernel.md) ---------------------------------------------

    async def _start_kernel(self) -> None:
        """Host routes (kernel, connected, static) into the RIB; best routes into the FIB."""
        settings = KernelSettings.from_config(self.config)
        if settings is None:
            return
        expected = [str(n.address) for n in self.config.neighbors if not n.shutdown]
        accept = None
        names = self.config.kernel.import_policy if self.config.kernel is not None else ()
        if names:
            pol = chain([self.policies[x] for x in names])

            def accept(fam, prefix, cand, pol=pol):
                # kernel.import: a best route must pass these policies to be installed.
                src = cand.source
                attrs = cand.attrs_for(fam, prefix)
                if attrs is None:
                    return False
                iface = src.interface_of(fam, prefix) if hasattr(src, "interface_of") else None
                info = RouteInfo(src.kind, src.name if src.is_bgp else None, iface, src.local_as)
                return pol.evaluate(attrs, prefix, fam, info) is not None

        self.kernel = Kernel(
            self.rib.loc,
            settings,
            accept=accept,
            commit=self._kernel_commit,
            local_as=self.config.asn,
            neighbors=expected,
        )
        await self.kernel.start()

    def _kernel_commit(self) -> None:
        self.rib.commit()
        self._schedule_drain()

    def _kernel_eor(self, n: "Neighbor", updates) -> None:
        """End-of-RIB markers, while the FIB waits for the initial convergence."""
        for u in updates:
            fam = u.eor()
            if fam is not None:
                self.kernel.end_of_rib(n.address, fam, n.session.fsm.negotiated.families)

    def _start_listeners(self) -> None:
        cfg = self.config
        gtsm = any(n.ttl_security for n in cfg.neighbors)
        for lcfg in cfg.listen:
            lst = Listener(str(lcfg.address), lcfg.port, self._lookup, self.loop)
            for n in cfg.neighbors:
                if n.password and _same_family(str(n.address), str(lcfg.address)):
                    lst.md5[str(n.address)] = n.password
            for net, _d, tpl, _members in self._dynamic:
                pw = tpl.neighbor.password
                if pw and _same_family(str(net.network_address), str(lcfg.address)):
                    lst.md5_ranges[str(net)] = pw
            lst.start()
            if gtsm:
                lst.set_ttl(255)
            self.listeners.append(lst)

    def _lookup(self, address: str):
        n = self.neighbors.get(address)
        if n is not None:
            return n.session
        return self._dynamic_neighbor(address)

    # --- dynamic neighbors ----------------------------------------------------------------

    def _set_dynamic(self, cfg) -> None:
        old = {str(net): members for net, _d, _t, members in self._dynamic}
        self._dynamic = []
        for d in cfg.dynamic_neighbors:
            net = ipaddress.ip_network(d.range)
            self._dynamic.append((net, d, cfg.templates[d.template], old.get(str(net), [])))

    def _dynamic_neighbor(self, address: str):
        """A connection from inside a dynamic range: make a passive neighbor from its template.

        The limit is checked before anything is allocated; refusals are counted, not logged
        per connection.
        """
        if not self._dynamic:
            return None
        ip = ipaddress.ip_address(address)
        for net, d, tpl, members in self._dynamic:
            if ip.version != net.version or ip not in net:
                continue
            if len(members) >= d.limit:
                self.dynamic_refused += 1
                if self.dynamic_refused in (1, 10, 100) or self.dynamic_refused % 1000 == 0:
                    log.warning(
                        "dynamic neighbor limit reached",
                        range=str(net),
                        limit=d.limit,
                        refused=self.dynamic_refused,
                    )
                return None
            mode = tpl.asn
            asn = mode if isinstance(mode, int) else self.config.asn
            cfg = dataclasses.replace(
                tpl.neighbor, address=address, asn=asn, passive=True, template=tpl.name
            )
            n = Neighbor(self, cfg, next(self._index), dynamic_from=str(net), asn_mode=mode)
            self.neighbors[address] = n
            members.append(address)
            n.session.start()
            log.info("dynamic neighbor", peer=address, range=str(net), template=tpl.name)
            return n.session
        return None

    def _remove_neighbor(self, n: Neighbor, subcode: int = 3, message: str = "") -> None:
        """Close a neighbor's session, withdraw its routes, forget it."""
        n.session.close(subcode=subcode, message=message)
        if n.joined:
            self.rib.exporter.leave(n)
            n.joined = False
        self.rib.flush(n.source)
        n.source.paths.clear()
        self.rib.commit()
        self._forget_cached(n)
        if self.neighbors.get(n.address) is n:
            del self.neighbors[n.address]
        for _net, _d, _t, members in self._dynamic:
            if n.address in members:
                members.remove(n.address)
        self._schedule_drain()

    # --- origination --------------------------------------------------------------------

    def _originate(self) -> None:
        """Put the configured ``networks`` into the Loc-RIB as local routes."""
        attrs = intern(AttrSet(origin=ORIGIN_IGP, as_path=()))
        for fam, prefixes in self.networks.items():
            loc = self.rib.loc[fam]
            keep = set(prefixes)
            loc.withdraw(self.local, [p for p in self.local.adj_in[fam] if p not in keep])
            loc.announce(self.local, prefixes, attrs)
        self.rib.commit()
        self._schedule_drain()

    # --- session handler ----------------------------------------------------------------------

    def session_established(self, session: PeerSession) -> None:
        n: Neighbor = session.neighbor
        n.state_since = time.monotonic()
        neg = session.fsm.negotiated
        src = n.source
        src.router_id = router_id_int(neg.peer_open.router_id)
        src.addpath = frozenset(neg.context.add_path_rx)
        if n.asn_mode in ("any", "external"):
            src.asn = neg.peer_open.asn
            src.ibgp = src.asn == src.local_as
            if n.asn_mode == "external" and src.ibgp:
                session.last_error = "template allows external neighbors only"
                self.loop.call_soon(self._remove_neighbor, n, CEASE_CONNECTION_REJECTED)
                return
        n.eor = set()
        self._gr_established(n, neg)
        key = self._export_key(n, neg)
        g = self.rib.exporter.join(n, key, neg.context, self._export, sorted(neg.families))
        self._mark_group(g, n)
        n.joined = True
        self._schedule_drain()

    def session_down(self, session: PeerSession, event) -> None:
        n: Neighbor = session.neighbor
        n.state_since = time.monotonic()
        if n.dynamic_from is not None:
            # Dynamic neighbors exist only while their session does.
            self.loop.call_soon(self._remove_neighbor, n)
        if n.joined:
            self.rib.exporter.leave(n)
            n.joined = False
        if n.dynamic_from is None and self._gr_retain(n, event):
            self.rib.commit()
            self._schedule_drain()
            return
        if (
            n.gr_state == "restarting"
            and not event.was_established
            and n.session.enabled
            and not n.session.closed
        ):
            # A connection of the restarting neighbor that never came up (the loser of a
            # collision, an OPEN refused): its stale routes wait for the restart timer.
            return
        self._gr_clear(n)
        self.rib.flush(n.source)
        n.source.paths.clear()
        self.rib.commit()
        self._schedule_drain()

    # --- graceful restart (RFC 4724, RFC 8538) ----------------------------------------------

    def _gr_decide(self) -> bool:
        """Is this start a restart (RFC 4724 §4.1: R bit, deferral, adopt-then-sweep)? Only
        when the forwarding state of the previous run survived: ``--graceful-restart`` says
        so (as ``bird -R``, ``gobgpd -r``), or a graceful stop left its marker less than
        restart_time ago; otherwise a cold start. The marker is consumed either way. Returns
        whether kernel routes adopted from a previous run may still make it a restart
        (:meth:`_gr_decide_by_kernel`, once the kernel has started)."""
        gr = self.config.graceful_restart
        path = restart_marker_path(self.config)
        data, problem = take_restart_marker(path)
        if data is not None:
            self._gr_marker_taken = (path, data)
        if gr is None or not gr.enabled:
            if self.gr_requested:
                log.warning("--graceful-restart ignored: graceful_restart is off in the config")
            return False
        if problem is not None:
            log.warning("graceful restart: restart marker ignored", path=path, error=problem)
        if self.gr_requested:
            self._gr_set_start(True, "requested (--graceful-restart)")
            return False
        if data is not None:
            restart, reason = marker_verdict(data, gr.restart_time)
            self._gr_set_start(restart, reason)
            return False  # an expired marker: the peers have dropped our routes already
        kernel = self.config.kernel
        fib = kernel is not None and kernel.install
        reason = "no --graceful-restart, no marker of a graceful stop"
        self._gr_set_start(False, reason + (", no kernel routes of ours" if fib else ""))
        return fib

    def _gr_decide_by_kernel(self) -> None:
        """The kernel adopted routes of ours left by a previous run (``kill -9``, a crash,
        with ``kernel.persist``): forwarding state survived, this start is a restart."""
        fib = self.kernel.fib if self.kernel is not None else None
        adopted = int(fib.stats.get("adopted", 0)) if fib is not None else 0
        if adopted:
            self._gr_set_start(True, f"{adopted} kernel routes of a previous run adopted")

    def _gr_set_start(self, restart: bool, reason: str) -> None:
        changed = restart != self.gr_restarting
        self.gr_restarting = restart
        self.gr_start = "restart" if restart else "cold"
        self.gr_start_reason = reason
        if changed:
            self._gr_update_opens()

    def _gr_update_opens(self) -> None:
        """The OPEN of every next connection follows the restart state (the R bit)."""
        for n in self.neighbors.values():
            n.session.fsm.update_settings(self.settings_for(n.cfg, n.asn_mode))
            n.session.settings = n.session.fsm.settings

    def _gr_leave_marker(self) -> None:
        gr = self.config.graceful_restart
        path = restart_marker_path(self.config)
        try:
            write_restart_marker(path, gr.restart_time)
        except OSError as e:
            log.warning(
                "graceful restart: cannot write the restart marker", path=path, error=str(e)
            )
            return
        self._gr_marker_taken = None
        log.info("graceful restart: restart marker left", path=path)

    def _gr_restore_marker(self) -> None:
        """A start that failed puts back the marker it consumed (same stop time), so that the
        next attempt is still a restart within restart_time."""
        if self._gr_marker_taken is None:
            return
        path, data = self._gr_marker_taken
        self._gr_marker_taken = None
        with contextlib.suppress(OSError):
            _write_json(path, data)

    def _gr_retain(self, n: Neighbor, event) -> bool:
        """Receiving speaker: the session went down; keep the neighbor's routes as stale?"""
        gr = self.config.graceful_restart
        cap = n.peer_gr
        if gr is None or not gr.enabled or cap is None or not event.was_established:
            return False
        if not n.session.enabled or n.session.closed:
            return False  # we shut it down on purpose: nothing to wait for
        note = event.notification_sent or event.notification_received
        # RFC 8538: with the N bit on both sides every NOTIFICATION but Hard Reset (6/9) is
        # graceful; without it, none is.
        if note is not None and (
            not (gr.notification and cap.notification) or (note.code == 6 and note.subcode == 9)
        ):
            return False
        fams = {(a, sf) for a, sf, _f in cap.families}
        kept = self.rib.mark_stale(n.source, fams)
        others = [f for f in self.rib.loc if f not in fams]
        for f in others:
            self.rib.loc[f].flush(n.source)
        n.gr_state = "restarting"
        if n.gr_timer is not None:
            n.gr_timer.cancel()
        n.gr_timer = self.loop.call_later(float(cap.restart_time), self._gr_expire, n, "restart")
        log.info(
            "graceful restart: keeping routes as stale",
            peer=n.address,
            routes=kept,
            restart_time=cap.restart_time,
        )
        return True

    def _gr_established(self, n: Neighbor, neg) -> None:
        """The session is up again: decide what happens to stale routes; note the peer's cap."""
        gr = self.config.graceful_restart
        cap = neg.graceful_restart if gr is not None and gr.enabled else None
        n.peer_gr = cap
        if self.gr_restarting and n.address in self.gr_waiting and (cap is None or cap.restarting):
            # RFC 4724 §4.1: do not wait for End-of-RIB from peers that do not do graceful
            # restart or are restarting themselves (they wait for ours).
            self.gr_waiting.discard(n.address)
            if cap is not None and cap.restarting:
                self._gr_fib_owed.add(n.address)
            if not self.gr_waiting:
                self.loop.call_soon(self._gr_end_restart, "End-of-RIB from every neighbor")
        if not n.source.stale:
            self._gr_clear(n)
            return
        if n.gr_timer is not None:
            n.gr_timer.cancel()
            n.gr_timer = None
        if cap is None:
            swept = self.rib.sweep_stale(n.source)
            log.info(
                "graceful restart: neighbor returned without it, flushing",
                peer=n.address,
                routes=swept,
            )
            n.gr_state = None
            return
        keep = {(a, sf) for a, sf, f in cap.families if f}
        gone = [f for f in n.source.stale if f not in keep or f not in neg.families]
        if gone:
            swept = self.rib.sweep_stale(n.source, gone)
            log.info(
                "graceful restart: forwarding state not kept, flushing",
                peer=n.address,
                families=[FAMILY_NAMES.get(f, str(f)) for f in gone],
                routes=swept,
            )
        if n.source.stale:
            n.gr_state = "refreshing"
            n.gr_timer = self.loop.call_later(
                float(gr.stale_routes_time), self._gr_expire, n, "stale routes"
            )
        else:
            n.gr_state = None

    def _gr_expire(self, n: Neighbor, which: str) -> None:
        n.gr_timer = None
        swept = self.rib.sweep_stale(n.source)
        n.gr_state = None
        log.info(
            "graceful restart: timer expired, flushing stale routes",
            peer=n.address,
            timer=which,
            routes=swept,
        )
        if not n.session.established:
            self.rib.flush(n.source)
            n.source.paths.clear()
        self.rib.commit()
        self._schedule_drain()
        if n.dynamic_from is not None and not n.session.established:
            self._remove_neighbor(n)

    def _gr_clear(self, n: Neighbor) -> None:
        if n.gr_timer is not None:
            n.gr_timer.cancel()
            n.gr_timer = None
        n.gr_state = None
        n.source.stale.clear()

    def _gr_eor(self, n: Neighbor, fam) -> None:
        """End-of-RIB from ``n`` for ``fam``: sweep its stale routes; maybe end our restart."""
        n.eor.add(fam)
        if fam in n.source.stale:
            swept = self.rib.sweep_stale(n.source, [fam])
            log.info(
                "graceful restart: End-of-RIB, stale routes swept",
                peer=n.address,
                family=FAMILY_NAMES.get(fam, str(fam)),
                routes=swept,
            )
            if not n.source.stale:
                if n.gr_timer is not None:
                    n.gr_timer.cancel()
                    n.gr_timer = None
                n.gr_state = None
        if self.gr_restarting and n.address in self.gr_waiting:
            neg = n.session.fsm.negotiated
            if neg is not None and n.eor >= set(neg.families):
                self.gr_waiting.discard(n.address)
                if not self.gr_waiting:
                    self._gr_end_restart("End-of-RIB from every neighbor")
        if n.address in self._gr_fib_owed:
            neg = n.session.fsm.negotiated
            if neg is not None and n.eor >= set(neg.families):
                self._gr_fib_owed.discard(n.address)
                if not self._gr_fib_owed and not self.gr_restarting and self.kernel is not None:
                    self.kernel.converged("graceful restart: End-of-RIB from every neighbor")

    def _gr_end_restart(self, reason: str) -> None:
        """Our restart is over: select, install, send our routes and End-of-RIB, sweep."""
        if not self.gr_restarting:
            return
        self.gr_restarting = False
        self.gr_waiting.clear()
        self.gr_deferral_end = None
        if self._gr_timer is not None:
            self._gr_timer.cancel()
            self._gr_timer = None
        log.info("graceful restart: restart complete", reason=reason)
        self._gr_update_opens()
        if self.kernel is not None and not self._gr_fib_owed:
            self.kernel.converged(f"graceful restart: {reason}")
        self._schedule_drain()

    @property
    def gr_in_progress(self) -> bool:
        """Our restart, or a neighbor's, is still being waited for (readiness waits too)."""
        return self.gr_restarting or any(n.gr_state for n in self.neighbors.values())

    def gr_status(self) -> dict:
        now = time.monotonic()
        return {
            "enabled": bool(self.config.graceful_restart and self.config.graceful_restart.enabled),
            "start": self.gr_start,
            "start_reason": self.gr_start_reason,
            "restarting": self.gr_restarting,
            "waiting_for_eor": sorted(self.gr_waiting),
            "deferral_remaining": (
                max(0.0, self.gr_deferral_end - now) if self.gr_deferral_end else None
            ),
            "neighbors": {
                n.address: {
                    "state": n.gr_state,
                    "stale_routes": sum(len(v) for v in n.source.stale.values()),
                }
                for n in self.neighbors.values()
                if n.gr_state
            },
        }

    def updates_received(self, session: PeerSession, updates) -> None:
        n: Neighbor = session.neighbor
        src = n.source
        loc = self.rib.loc
        imp = self._import
        for u in updates:
            for fam, keys in u.unreach():
                t = loc.get(fam)
                if t is not None:
                    t.withdraw(src, keys)
            for fam, attrs, keys in u.reach():
                t = loc.get(fam)
                if t is None:
                    continue
                pol = n.import_policy
                if pol is not None and not pol.attr_only:
                    self._import_per_prefix(n, t, attrs, fam, keys)
                    continue
                accepted = imp(n, attrs, fam)
                if accepted is None:
                    t.withdraw(src, keys)  # filtered: drop what we may have had
                else:
                    t.announce(src, keys, accepted)
        if self.kernel is not None and self.kernel.waiting_for_eor:  # kernel: FIB sweep
            self._kernel_eor(n, updates)
        for u in updates:
            fam = u.eor()
            if fam is not None:
                self._gr_eor(n, fam)
        self._check_max_prefixes(n)
        self.rib.commit()
        self._schedule_drain()
        if self.rib.exporter.backlog() > BACKLOG_HIGH and not session.reading_paused:
            # Export first: reading on would only grow the backlog (and memory).
            session.pause_reading()
            self._paused.add(session)

    def route_refresh_received(self, session: PeerSession, rr) -> None:
        n: Neighbor = session.neighbor
        fam = (rr.afi, rr.safi)
        neg = session.fsm.negotiated
        if rr.subtype != 0 or fam not in neg.families or not n.joined:
            return
        # Re-send the Adj-RIB-Out: rejoin with the whole table pending (RFC 2918), framed by
        # BoRR/EoRR when enhanced route refresh is in use (RFC 7313).
        trailer = []
        if neg.enhanced_route_refresh:
            session.send([RouteRefresh(rr.afi, rr.safi, RR_BORR).encode()])
            trailer = [RouteRefresh(rr.afi, rr.safi, RR_EORR).encode()]
        g = self.rib.exporter.rejoin(
            n, self._export_key(n, neg), neg.context, self._export, sorted(neg.families), trailer
        )
        self._mark_group(g, n)
        self._schedule_drain()

    def session_writable(self, session: PeerSession) -> None:
        self._schedule_drain()

    # --- import and export ------------------------------------------------------------------------

    def _import(self, n: Neighbor, attrs: AttrSet, fam):
        """Loop prevention (and import policy), cached per attribute set."""
        cache = attrs.cache
        key = n.import_key
        try:
            r = cache[key]
            return attrs if r is SAME else r
        except KeyError:
            pass
        why = import_ok(
            attrs,
            n.source,
            n.source.local_as,
            self.router_id,
            self.cluster_id,
            int(getattr(n.cfg, "allow_own_as", 0) or 0),
        )
        result = None if why else attrs
        pol = n.import_policy
        if result is not None and pol is not None and pol.attr_only:
            result = pol.evaluate(attrs, b"", fam, n.route_info)
        cache[key] = SAME if result is attrs else result
        n.cached_on[id(attrs)] = attrs
        return result

    def _import_per_prefix(self, n: Neighbor, t, attrs: AttrSet, fam, keys) -> None:
        """An import policy that looks at the prefix: evaluate each one, then apply in groups."""
        base = self._import(n, attrs, fam)  # loop checks (cached), no policy: see below
        if base is None:
            t.withdraw(n.source, keys)
            return
        pol = n.import_policy
        info = n.route_info
        groups: dict = {}
        rejected = []
        for key in keys:
            p = key[1] if type(key) is tuple else key
            r = pol.evaluate(attrs, p, fam, info)
            if r is None:
                rejected.append(key)
            else:
                groups.setdefault(r, []).append(key)
        if rejected:
            t.withdraw(n.source, rejected)
        for r, ks in groups.items():
            t.announce(n.source, ks, r)

    def _export_key(self, n: Neighbor, neg) -> tuple:
        local = n.session.local_address()
        ctx = neg.context
        key = (
            n.ibgp,
            n.source.rr_client,
            n.source.local_as,
            local,
            getattr(n.cfg, "next_hop_self", None),
            ctx.as4,
            tuple(sorted(ctx.add_path_tx)),
            ctx.extended_message,
            tuple(sorted(neg.families)),
            tuple(n.cfg.export_policy),
        )
        if key not in self._targets:
            self._group_policy[key] = n.export_policy
            self._targets[key] = {
                fam: Target(
                    ibgp=n.ibgp,
                    rr_client=n.source.rr_client,
                    local_as=n.source.local_as,
                    next_hop=_next_hop_for(local, fam),
                    next_hop_self=getattr(n.cfg, "next_hop_self", None),
                )
                for fam in (IPV4_UNICAST, IPV6_UNICAST)
            }
        return key

    def _export(self, group, src: Source, attrs: AttrSet, prefix: bytes, fam):
        """The set ``group`` receives for ``attrs`` from ``src``; cached per (set, group, src)."""
        cache = attrs.cache
        key = (group.key, fam, src.index)
        try:
            r = cache[key]
            return attrs if r is SAME else r
        except KeyError:
            pass
        target = self._targets[group.key][fam]
        result = export_attrs(src, attrs, target, self.cluster_id)
        pol = self._group_policy.get(group.key)
        if result is not None and pol is not None:
            iface = src.interface_of(fam, prefix) if hasattr(src, "interface_of") else None
            info = RouteInfo(
                src.kind, src.name if src.is_bgp else None, iface, target.local_as, target.next_hop
            )
            if not pol.attr_only:
                return pol.evaluate(result, prefix, fam, info)  # depends on the prefix: no cache
            result = pol.evaluate(result, prefix, fam, info)
        cache[key] = SAME if result is attrs else result
        holder = getattr(src.info, "cached_on", None)
        if holder is not None:
            holder[id(attrs)] = attrs
        return result

    def _forget_cached(self, n: Neighbor) -> None:
        """Drop the import and export results cached for ``n`` (being removed, its index is
        never used again) from the attribute sets that are still alive."""
        keys = list(n.import_keys)
        keys += [(gkey, fam, n.index) for gkey in self._targets for fam in self.rib.loc]
        for attrs in list(n.cached_on.values()):
            cache = attrs.cache
            for k in keys:
                cache.pop(k, None)
        n.cached_on.clear()

    def _schedule_drain(self) -> None:
        if self._drain_handle is None:
            self._drain_handle = self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Pack output for writable groups, a bounded batch at a time, yielding in between."""
        self._drain_handle = None
        if self.gr_restarting:
            return  # route selection is deferred until our restart completes (RFC 4724 §4.1)
        out, more = self.rib.exporter.drain(budget=DRAIN_BUDGET, now=time.monotonic())
        for member, msgs in out.items():
            member.session.send(msgs)
        if self._paused and self.rib.exporter.backlog() < BACKLOG_LOW:
            paused, self._paused = self._paused, set()
            for session in paused:
                session.resume_reading()
        if more and out:
            self._schedule_drain()
        elif more and self._slow_check is None:
            # Output waits for a member that takes none: look again once it may count as slow
            # (it is then moved out of its export group, see Exporter.drain).
            self._slow_check = self.loop.call_later(SLOW_AFTER + 0.1, self._slow_recheck)

    def _slow_recheck(self) -> None:
        self._slow_check = None
        self._schedule_drain()

    def _check_max_prefixes(self, n: Neighbor) -> None:
        mp = getattr(n.cfg, "max_prefixes", None)
        if not mp:
            return
        limit = mp.limit
        count = n.received_count()
        if count <= limit:
            n.prefix_limit_hit = False
            return
        if n.prefix_limit_hit:
            return
        n.prefix_limit_hit = True
        log.warning("maximum prefixes exceeded", peer=n.address, limit=limit, received=count)
        if mp.action == "stop":
            n.session.stop(subcode=CEASE_MAX_PREFIXES)
            n.session.last_error = f"maximum prefix limit {limit} exceeded ({count} received)"
            if mp.restart_after:
                self.loop.call_later(float(mp.restart_after), n.session.start)

    # --- metrics and health -----------------------------------------------------------------

    def snapshot(self, prefixes: bool = True) -> dict:
        """What metrics and health checks read, at the time they ask (the shape is documented
        in bgpd/api/metrics.py). ``prefixes=False`` leaves out the per-neighbor prefix counts,
        which take a pass over the Loc-RIB per export group."""
        advertised = self._advertised_counts() if prefixes else {}
        neighbors = []
        for n in self.neighbors.values():
            s = n.session
            stats = s.fsm.stats
            entry = {
                "address": n.address,
                "asn": n.cfg.asn,
                "state": _state_name(s.state),
                "enabled": s.enabled,
                "dynamic": n.dynamic_from is not None,
                "flaps": stats.flaps,
                "updates": {"in": stats.updates_in, "out": stats.updates_out},
                "messages": {"in": _counts(stats, "in"), "out": _counts(stats, "out")},
            }
            if prefixes:
                received = n.received_count()
                entry["prefixes"] = {
                    "received": received,
                    "accepted": received,
                    "advertised": advertised.get(n, 0),
                }
            neighbors.append(entry)
        # The kernel FIB writer (bgpd.kernel.fib.FibWriter), when bgpd installs routes: as
        # speaker.fib, or as the fib of the kernel service (speaker.kernel.fib).
        fib = getattr(self, "fib", None)
        if fib is None or not hasattr(fib, "count"):
            fib = getattr(fib or getattr(self, "kernel", None), "fib", None)
        fib_stats = None
        if fib is not None:
            stats = getattr(fib, "stats", None) or {}
            fib_stats = {"routes": fib.count(), "sync_errors": stats.get("failed", 0)}
        r = self.reloads
        return {
            "router_id": str(self.config.router_id),
            "asn": self.config.asn,
            "started": self.started,
            "stopping": self.stopping.is_set(),
            "gr_in_progress": bool(getattr(self, "gr_in_progress", False)),
            "neighbors": neighbors,
            "rib": {FAMILY_NAMES[f]: len(self.rib.loc[f]) for f in (IPV4_UNICAST, IPV6_UNICAST)},
            "fib": fib_stats,
            "reloads": {
                "ok": r["ok"],
                "error": r["error"],
                "last_timestamp": r["last"],  # of the last successful one
                "last_result": "error" if r["last_error"] else "ok" if r["ok"] else None,
            },
            "dynamic_refused": self.dynamic_refused,
        }

    def _advertised_counts(self) -> dict:
        """Prefixes advertised to each Established neighbor, by one pass over the Loc-RIB per
        export group: its members get the same routes, less their own (split horizon)."""
        groups: dict = {}
        for n in self.neighbors.values():
            g = n.source.group
            if g is not None and n.session.established:
                groups.setdefault(id(g), (g, []))[1].append(n)
        out = {}
        for g, members in groups.values():
            total = 0
            own: dict = {}
            for fam in g.families:
                for p, entry in self.rib.loc[fam].table.items():
                    best = best_of(entry)
                    if self._export(g, best.source, best.attrs_for(fam, p), p, fam) is not None:
                        total += 1
                        own[best.source] = own.get(best.source, 0) + 1
            for n in members:
                out[n] = total - own.get(n.source, 0)
        return out

    def cmd_health(self) -> dict:
        """Liveness and readiness (bgpd/api/health.py); also served on /livez and /readyz."""
        result = health.check(self.snapshot(prefixes=False), time.monotonic()).as_dict()
        plain = result["ready_reason"]
        if self.gr_restarting and plain == "not ready: graceful restart in progress":
            # Not ready because of our own restart: say why it is one and what it waits for.
            detail = f"{plain}: ours ({self.gr_start_reason})"
            if self.gr_waiting:
                detail += f", waiting for End-of-RIB from {', '.join(sorted(self.gr_waiting))}"
            if self.gr_deferral_end is not None:
                left = max(0.0, self.gr_deferral_end - time.monotonic())
                detail += f", {left:.0f} s of selection deferral left"
            result["ready_reason"] = detail
            if result["reason"] == plain:
                result["reason"] = detail
        return result

    # --- control API ------------------------------------------------------------------------------

    def dispatch(self, command: str, args: dict):
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            raise CommandError(f"unknown command {command!r}")
        return handler(**(args or {}))

    def cmd_ping(self) -> dict:
        return {"pong": True, "pid": os.getpid()}

    def _neighbor(self, address: str) -> Neighbor:
        n = self.neighbors.get(str(address))
        if n is None:
            raise CommandError(f"no neighbor {address}")
        return n

    def neighbor_info(self, n: Neighbor, advertised: dict | None = None) -> dict:
        """One neighbor for ``show neighbors``; ``advertised`` from :meth:`_advertised_counts`."""
        if advertised is None:
            advertised = self._advertised_counts()
        s = n.session
        fsm = s.fsm
        neg = fsm.negotiated if s.established else None
        stats = fsm.stats
        now = time.monotonic()
        caps = []
        fams = []
        hold = keepalive = None
        router_id = None
        if neg is not None:
            caps = sorted({capability_name(c.code) for c in neg.peer_open.capabilities})
            fams = sorted(FAMILY_NAMES.get(f, str(f)) for f in neg.families)
            hold = neg.hold_time
            keepalive = neg.keepalive
            router_id = neg.peer_open.router_id
        est = getattr(stats, "established_at", None)
        return {
            "address": n.address,
            "asn": n.cfg.asn,
            "state": _state_name(s.state),
            "router_id": router_id,
            "local_address": s.local_address(),
            "uptime": (now - est) if (s.established and est is not None) else None,
            "since": now - n.state_since,
            "hold_time": hold,
            "keepalive": keepalive,
            "capabilities": caps,
            "families": fams,
            "last_error": s.last_error or fsm.last_error or None,
            "messages": {"in": _counts(stats, "in"), "out": _counts(stats, "out")},
            "prefixes": {
                "received": n.received_count(),
                "accepted": n.received_count(),
                "advertised": advertised.get(n, 0),
            },
            "description": getattr(n.cfg, "description", None),
            "dynamic_from": n.dynamic_from,
            "graceful_restart": {
                "peer_capable": n.peer_gr is not None,
                "state": n.gr_state,
                "stale_routes": sum(len(v) for v in n.source.stale.values()),
            },
        }

    def cmd_show_neighbors(self, address: str | None = None) -> dict:
        ns = [self._neighbor(address)] if address else list(self.neighbors.values())
        advertised = self._advertised_counts()  # one Loc-RIB pass per export group
        return {"neighbors": [self.neighbor_info(n, advertised) for n in ns]}

    def cmd_show_summary(self) -> dict:
        routes = {"ipv4": len(self.rib.loc[IPV4_UNICAST]), "ipv6": len(self.rib.loc[IPV6_UNICAST])}
        return {
            "router_id": str(self.config.router_id),
            "asn": self.config.asn,
            "uptime": time.monotonic() - self.started,
            "neighbors": {
                "total": len(self.neighbors),
                "established": sum(1 for n in self.neighbors.values() if n.session.established),
            },
            "routes": routes,
            "graceful_restart": self.gr_status(),
        }

    def cmd_show_routes(
        self,
        prefix: str | None = None,
        family: str | None = None,
        neighbor: str | None = None,
        received: bool = False,
        advertised: bool = False,
        limit: int | None = 10000,
    ) -> dict:
        fams = [FAMILY_BY_NAME[family]] if family else [IPV4_UNICAST, IPV6_UNICAST]
        want = None
        if prefix:
            net = ipaddress.ip_network(prefix, strict=False)
            want = pfx.from_network(net)
            fams = [IPV4_UNICAST if net.version == 4 else IPV6_UNICAST]
        out = []
        n = self._neighbor(neighbor) if neighbor else None
        for fam in fams:
            fname = FAMILY_NAMES[fam]
            if n is not None and received:
                items = sorted(n.source.adj_in[fam].items(), key=lambda kv: _sort_key(kv[0]))
                for key, attrs in items:
                    p = key[1] if isinstance(key, tuple) else key
                    if want is not None and p != want:
                        continue
                    path = _path_json(attrs, n.address, "bgp")
                    if isinstance(key, tuple):
                        path["path_id"] = key[0]
                    out.append({"prefix": pfx.to_str(p, fam[0]), "family": fname, "paths": [path]})
                continue
            loc = self.rib.loc[fam]
            keys = [want] if want is not None else sorted(loc.table)
            for p in keys:
                r = loc.route(p)
                if r is None:
                    continue
                best, multipath, cands = r
                if n is not None and advertised:
                    g = n.source.group
                    if g is None or best.source is n.source:
                        continue
                    exp = self._export(g, best.source, best.attrs_for(fam, p), p, fam)
                    if exp is None:
                        continue
                    paths = [_path_json(exp, None, "bgp", best=True)]
                else:
                    paths = []
                    for c, attrs, lost in cands:
                        src = c.source
                        path = _path_json(attrs, src.name if src.is_bgp else None, src.kind)
                        path["best"] = c is best
                        path["multipath"] = c in multipath and len(multipath) > 1
                        path["lost_at"] = lost
                        stale = src.stale.get(fam)
                        path["stale"] = bool(stale) and (p if not c.pid else (c.pid, p)) in stale
                        if c.pid:
                            path["path_id"] = c.pid
                        paths.append(path)
                    paths.sort(key=lambda x: not x["best"])
                entry = {"prefix": pfx.to_str(p, fam[0]), "family": fname, "paths": paths}
                if self.kernel is not None and not (n is not None and advertised):
                    entry["kernel"] = self.kernel.status(fam, p)
                out.append(entry)
                if limit and len(out) >= limit:
                    break
        return {"routes": out}

    def cmd_neighbor_reset(self, address: str, message: str = "") -> dict:
        self._neighbor(address).session.reset(message)
        return {"address": address, "action": "reset"}

    def cmd_neighbor_shutdown(self, address: str, message: str = "") -> dict:
        self._neighbor(address).session.stop(subcode=2, message=message)
        return {"address": address, "action": "shutdown"}

    def cmd_neighbor_enable(self, address: str, message: str = "") -> dict:
        s = self._neighbor(address).session
        if not s.enabled:
            s.start()
        return {"address": address, "action": "enable"}

    def cmd_neighbor_refresh(self, address: str, message: str = "", direction: str = "in") -> dict:
        n = self._neighbor(address)
        if not n.session.established:
            raise CommandError(f"neighbor {address} is not Established")
        fams = sorted(n.session.fsm.negotiated.families)
        for fam in fams:
            if direction in ("in", "both"):
                n.session.send_route_refresh(fam[0], fam[1])
            if direction in ("out", "both"):
                self.route_refresh_received(n.session, RouteRefresh(fam[0], fam[1], 0))
        return {"address": address, "action": "refresh", "direction": direction}

    def cmd_reload(self) -> dict:
        result = self.reload()
        if not result["ok"]:
            raise CommandError(result["error"])
        return result

    # --- live reload ------------------------------------------------------------------------

    def reload(self) -> dict:
        """Re-read the config file and apply the difference (SIGHUP, ``bgpd reload``).

        An invalid file changes nothing: the running config stays, and the error names the
        file, the key and the reason. Only sessions whose session parameters changed are
        reset; policy and network changes are applied to the running sessions.
        """
        if not self.config_path:
            return {"ok": False, "error": "bgpd was started without a config file to re-read"}
        try:
            new = load_config(self.config_path)
        except ConfigError as e:
            self.reloads["error"] += 1
            self.reloads["last_error"] = str(e)
            log.error("reload failed, keeping the running configuration", error=str(e))
            return {"ok": False, "error": str(e)}
        changes = self.apply_config(new)
        self.reloads["ok"] += 1
        self.reloads["last"] = time.time()
        self.reloads["last_error"] = None
        log.info("reloaded", **{k: v for k, v in changes.items() if v})
        return {"ok": True, **changes}

    def apply_config(self, new) -> dict:
        d = config_diff(self.config, new)
        old = self.config
        self.config = new
        summary: dict = {"added": [], "removed": [], "reset": [], "updated": []}
        if d.reset_all or "cluster_id" in d.globals_changed or "listen" in d.globals_changed:
            # Identity or listeners changed: rebuild every session on the new config.
            self._rebuild_all(old, new)
            summary["reset"] = sorted(self.neighbors)
            return summary
        policies_changed = "policies" in d.globals_changed
        if policies_changed:
            self.policies = compile_policies(new.policies)
        self.generation += 1
        if any(
            k in d.globals_changed for k in ("multipath", "multipath_relax", "always_compare_med")
        ):
            cfg = self.rib.cfg
            cfg.multipath = new.multipath
            cfg.multipath_relax = new.multipath_relax
            cfg.always_compare_med = new.always_compare_med
            self._reselect_all()
        if "dynamic_neighbors" in d.globals_changed or "templates" in d.globals_changed:
            self._set_dynamic(new)
            ranges = {str(net) for net, *_ in self._dynamic}
            for n in list(self.neighbors.values()):
                if n.dynamic_from is not None and n.dynamic_from not in ranges:
                    self._remove_neighbor(n, CEASE_PEER_DECONFIGURED)
        for ncfg in d.removed:
            n = self.neighbors.get(str(ncfg.address))
            if n is not None:
                self._remove_neighbor(
                    n, CEASE_PEER_DECONFIGURED, "neighbor removed from the configuration"
                )
                summary["removed"].append(n.address)
        for ch in d.changed:
            n = self.neighbors.get(str(ch.address))
            if n is None:
                continue
            if ch.session:
                self._remove_neighbor(n, CEASE_CONFIG_CHANGE, "session parameters changed")
                self._add_neighbor(ch.new)
                summary["reset"].append(n.address)
            else:
                self._update_neighbor(n, ch.new, ch.keys)
                summary["updated"].append(n.address)
        for ncfg in d.added:
            self._add_neighbor(ncfg)
            summary["added"].append(str(ncfg.address))
        if policies_changed:
            changed = {c.address for c in d.changed}
            for n in list(self.neighbors.values()):
                if n.address not in changed and (n.cfg.import_policy or n.cfg.export_policy):
                    self._update_neighbor(n, n.cfg, ("import_policy", "export_policy"))
                    summary["updated"].append(n.address)
        if d.networks_changed:
            self.networks = self._networks(new)
            self._originate()
        for lst in self.listeners:
            self._set_listener_keys(lst)
        self.rib.commit()
        self._schedule_drain()
        return summary

    def _add_neighbor(self, ncfg) -> None:
        n = Neighbor(self, ncfg, next(self._index))
        self.neighbors[n.address] = n
        for lst in self.listeners:
            self._set_listener_keys(lst)
        if not ncfg.shutdown:
            n.session.start()

    def _update_neighbor(self, n: Neighbor, new, keys) -> None:
        """Apply non-session changes to a running neighbor, without a reset."""
        old = n.cfg
        n.cfg = new
        n.source.rr_client = bool(new.rr_client)
        n.set_policies()
        if "shutdown" in keys:
            if new.shutdown:
                n.session.stop(message="shut down by configuration")
            elif not n.session.enabled:
                n.session.start()
        if "connect_retry" in keys or "delay_open" in keys:
            n.session.settings = self.settings_for(new, n.asn_mode)
        if not n.session.established:
            return
        if old.import_policy != new.import_policy or "import_policy" in keys:
            self._refresh_in(n)
        if (
            old.export_policy != new.export_policy
            or "export_policy" in keys
            or "rr_client" in keys
            or "next_hop_self" in keys
        ):
            self._resend(n)

    def _refresh_in(self, n: Neighbor) -> None:
        """Re-evaluate imports: ask for the routes again (RFC 2918), or reset when we can't."""
        neg = n.session.fsm.negotiated
        if neg is not None and neg.route_refresh:
            for fam in sorted(neg.families):
                n.session.send_route_refresh(fam[0], fam[1])
        else:
            log.warning(
                "import policy changed and the neighbor has no route refresh: resetting",
                peer=n.address,
            )
            n.session.reset("import policy changed")

    def _resend(self, n: Neighbor) -> None:
        """Re-evaluate exports: rejoin with the whole table pending, withdrawing what the
        new policy filters."""
        neg = n.session.fsm.negotiated
        g = self.rib.exporter.rejoin(
            n,
            self._export_key(n, neg),
            neg.context,
            self._export,
            sorted(neg.families),
            trailer=[],
            resync=True,
        )
        self._mark_group(g, n)

    @staticmethod
    def _mark_group(g, n: Neighbor) -> None:
        """Tell the group whether its export result depends on the prefix (a prefix-list
        export policy), which rules out reusing one result for a run of prefixes."""
        pol = n.export_policy
        g.prefix_dependent = pol is not None and not pol.attr_only

    def _reselect_all(self) -> None:
        for loc in self.rib.loc.values():
            for p, entry in loc.table.items():
                if type(entry) is Dest:
                    loc.retouch(p)

    def _rebuild_all(self, old, new) -> None:
        for n in list(self.neighbors.values()):
            self._remove_neighbor(n, CEASE_CONFIG_CHANGE, "router configuration changed")
        for lst in self.listeners:
            lst.close()
        self.listeners = []
        self.router_id = ipaddress.IPv4Address(str(new.router_id)).packed
        self.cluster_id = _cluster_id(new)
        self.policies = compile_policies(new.policies)
        self.generation += 1
        self._targets.clear()
        self._group_policy.clear()
        self.local.local_as = new.asn
        self.networks = self._networks(new)
        for ncfg in new.neighbors:
            self.neighbors[str(ncfg.address)] = Neighbor(self, ncfg, next(self._index))
        self._set_dynamic(new)
        self._originate()
        self._start_listeners()
        for n in self.neighbors.values():
            if not n.cfg.shutdown:
                n.session.start()

    def _set_listener_keys(self, lst: Listener) -> None:
        for n in self.neighbors.values():
            if n.dynamic_from is None and _same_family(n.address, lst.address):
                current = lst.md5.get(n.address)
                if current != n.cfg.password:
                    lst.set_md5(n.address, n.cfg.password)


# --- graceful restart: the marker of a graceful stop ------------------------------------------

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def restart_marker_path(config) -> str:
    """Where a graceful stop leaves its marker: ``graceful_restart.restart_marker``, else
    beside the control socket, named after it (``/run/bgpd/bgpd.sock``:
    ``/run/bgpd/bgpd.restart``), so that two daemons never share one."""
    gr = config.graceful_restart
    if gr is not None and gr.restart_marker:
        return str(gr.restart_marker)
    sock = str(config.control_socket)
    return (sock[: -len(".sock")] if sock.endswith(".sock") else sock) + ".restart"


def _boot_id() -> str | None:
    """This boot of the host (Linux); a marker from another boot means a reboot between."""
    try:
        with open(BOOT_ID_PATH) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _boottime() -> float | None:
    """Seconds since boot, suspend included: comparable between processes of one boot and
    immune to changes of the wall clock."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:
        return None


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_restart_marker(path: str, restart_time: int) -> None:
    """Leave the marker of a graceful stop: when (wall clock, and seconds since this boot),
    who, and the restart time the neighbors were told (how long they keep our routes)."""
    _write_json(
        path,
        {
            "version": 1,
            "pid": os.getpid(),
            "stopped_at": time.time(),
            "boot_id": _boot_id(),
            "boottime": _boottime(),
            "restart_time": restart_time,
        },
    )


def take_restart_marker(path: str) -> tuple[dict | None, str | None]:
    """Read and remove the marker: ``(data, None)``, ``(None, None)`` when there is none, or
    ``(None, problem)`` when it cannot be read (it is removed all the same)."""
    data = problem = None
    try:
        with open(path) as f:
            data = json.loads(f.read())
        problem = _marker_problem(data)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        problem = str(e)
    if problem is not None:
        data = None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("graceful restart: cannot remove the restart marker", path=path, error=str(e))
    return data, problem


def _marker_problem(data) -> str | None:
    """What is wrong with a marker's content, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    number = (int, float)
    if not isinstance(data.get("stopped_at"), number) or isinstance(data["stopped_at"], bool):
        return "no stopped_at time"
    for k, types in (("boottime", number), ("boot_id", str), ("restart_time", int)):
        if data.get(k) is not None and not isinstance(data[k], types):
            return f"bad {k}"
    return None


def marker_verdict(marker: dict, restart_time: int) -> tuple[bool, str]:
    """Whether the marker of a graceful stop makes this start a restart, and why (not): the
    stop must be of this boot and less than its restart time ago (after that, neighbors
    have dropped our routes: nothing is left to restart gracefully)."""
    limit = marker.get("restart_time") or restart_time
    boot, then_boot = _boot_id(), marker.get("boot_id")
    if boot and then_boot and boot != then_boot:
        return False, "the host rebooted since the graceful stop"
    now = _boottime()
    if boot and then_boot and now is not None and marker.get("boottime") is not None:
        age = now - marker["boottime"]
    else:
        age = time.time() - marker["stopped_at"]
    age = max(0.0, age)
    if age > limit:
        return False, f"graceful stop {age:.0f} s ago, more than restart_time ({limit} s)"
    return True, f"graceful stop {age:.1f} s ago (pid {marker.get('pid')})"


def _cluster_id(config) -> bytes | None:
    """A reflector: an explicit cluster_id, or the router ID once any neighbor is a client."""
    cid = config.cluster_id
    if cid is None and _has_rr_clients(config):
        cid = config.router_id
    return ipaddress.IPv4Address(str(cid)).packed if cid else None


def _has_rr_clients(config) -> bool:
    """Any configured neighbor, or template of a dynamic range, is a reflection client."""
    if any(n.rr_client for n in config.neighbors):
        return True
    return any(config.templates[d.template].neighbor.rr_client for d in config.dynamic_neighbors)


def _same_family(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


def _state_name(state: State) -> str:
    names = {
        "IDLE": "Idle",
        "CONNECT": "Connect",
        "ACTIVE": "Active",
        "OPENSENT": "OpenSent",
        "OPENCONFIRM": "OpenConfirm",
        "ESTABLISHED": "Established",
    }
    return names.get(state.name, state.name.title())


def _counts(stats, direction: str) -> dict:
    src = getattr(stats, f"messages_{direction}", None) or {}
    out = {k: 0 for k in ("open", "update", "notification", "keepalive", "route_refresh")}
    for k, v in dict(src).items():
        key = str(k).lower().replace("-", "_")
        out[key] = out.get(key, 0) + v
    out["total"] = sum(v for k, v in out.items() if k != "total")
    return out


def _as_path_str(path) -> str:
    parts = []
    for seg_type, asns in path or ():
        if SEGMENT_NAMES.get(seg_type) == "sequence":
            parts.extend(str(a) for a in asns)
        elif SEGMENT_NAMES.get(seg_type) == "set":
            parts.append("{" + ",".join(str(a) for a in asns) + "}")
        else:
            parts.append("(" + " ".join(str(a) for a in asns) + ")")
    return " ".join(parts)


def _nh_str(nh: bytes | None) -> str | None:
    if nh is None:
        return None
    if len(nh) == 32:
        return pfx.addr_to_str(nh[:16])
    return pfx.addr_to_str(nh)


def _sort_key(key):
    return key if isinstance(key, bytes) else (key[1], key[0])


def _next_hop_for(local: str | None, fam) -> bytes | None:
    """Our next hop toward a neighbor for a family: the session's local address."""
    if local is None:
        return None
    if fam == IPV4_UNICAST:
        return None if ":" in local else pfx.addr_from_str(local)
    return pfx.addr_from_str(local) if ":" in local else _mapped_v6(local)


def _path_json(attrs: AttrSet, source: str | None, kind: str = "bgp", best: bool = False) -> dict:
    return {
        "best": best,
        "multipath": False,
        "from": source,
        "source": kind,
        "next_hop": _nh_str(attrs.next_hop),
        "as_path": _as_path_str(attrs.as_path),
        "origin": ORIGIN_NAMES[attrs.origin] if attrs.origin is not None else None,
        "med": attrs.med,
        "local_pref": attrs.local_pref,
        "communities": [f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities],
        "large_communities": [f"{a}:{b}:{c}" for a, b, c in attrs.large_communities],
        "originator_id": pfx.addr_to_str(attrs.originator_id) if attrs.originator_id else None,
        "cluster_list": [pfx.addr_to_str(c) for c in attrs.cluster_list],
        "lost_at": None,
    }


async def _main(
    config, config_path, ready: asyncio.Event | None = None, restart: bool = False
) -> int:
    loop = asyncio.get_running_loop()
    speaker = Speaker(config, config_path, loop, restart=restart)
    try:
        await speaker.start()
    except OSError as e:
        log.error("cannot start", error=str(e))
        await speaker.stop(marker=False)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, speaker.stopping.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, speaker.reload)
    if ready is not None:
        ready.set()
    _sd_notify("READY=1")
    await speaker.stopping.wait()
    _sd_notify("STOPPING=1")
    await speaker.stop()
    return 0


def _sd_notify(message: str) -> None:
    """systemd's notify protocol over $NOTIFY_SOCKET, without a dependency."""
    import socket

    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify failed", error=str(e))


def run(
    config, config_path: str | None = None, log_level: str = "info", restart: bool = False
) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status. ``restart``: this start
    is a graceful restart whatever the restart marker and the kernel say (``-R``)."""
    configure_logging(log_level)
    return asyncio.run(_main(config, config_path, restart=restart))
