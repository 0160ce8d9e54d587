"""Host routes into the Loc-RIB: kernel routes of other programs, connected networks, statics.

:class:`HostRoutes` keeps three :class:`~.routes.HostSource` s in the Loc-RIB, as BIRD's
kernel, direct and static protocols do (preferences 10, 240 and 200, docs/kernel.md):

* ``kernel``: routes of other programs in our table (not ours, not ``proto kernel``) whose
  prefix matches the configured list, with their interface and metric;
* ``connected``: the networks of the addresses on usable interfaces allowed by an ordered
  glob list (``["-cali*", "*"]``: first match wins, ``-`` excludes);
* ``static``: the configured blackhole, unreachable, prohibit, device and ``via`` routes.

It is fed parsed netlink messages (:meth:`HostRoutes.apply`) and keeps the
:class:`~.state.HostState` the FIB writer resolves next hops with; it tells the writer when
that state changes (``resolver_changed``), when another program touches a route carrying our
protocol id, and when to resync. :class:`HostWatcher` is the I/O: a netlink socket subscribed
to the link, address and route groups, read when the event loop says it is readable (no
periodic scans), with a full resync after an overrun (ENOBUFS).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from typing import Protocol

import structlog

from bgpd.rib.filters import InterfaceGlobs, PrefixList
from bgpd.wire import AttrSet, intern
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, ORIGIN_IGP

from .netlink import (
    HOST_GROUPS,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_F_CLONED,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTPROT_KERNEL,
    NetlinkSocket,
    iter_messages,
    parse_addr,
    parse_link,
    parse_route,
)
from .routes import (
    AF_INET,
    AF_INET6,
    AF_OF_AFI,
    FAMILY_OF_AF,
    RTN_BLACKHOLE,
    RTN_PROHIBIT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    FibSettings,
    HostRoute,
    HostSource,
)
from .settings import StaticRoute
from .state import HostState

log = structlog.get_logger("bgpd.kernel")

LEARNED_TYPES = frozenset({RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT})
STATIC_TYPES = {
    "blackhole": RTN_BLACKHOLE,
    "unreachable": RTN_UNREACHABLE,
    "prohibit": RTN_PROHIBIT,
    "unicast": RTN_UNICAST,
}
# Source indexes of the host sources (neighbors count up from 1, ``networks`` is 0): they key
# the export caches, so they must differ from every other source's.
KERNEL_INDEX, CONNECTED_INDEX, STATIC_INDEX = -1, -2, -3
AFI_OF_AF = {AF_INET: AFI_IPV4, AF_INET6: AFI_IPV6}


# --- filters -------------------------------------------------------------------------------------


class PrefixFilter:
    """Which kernel routes are learned: a prefix list (bgpd/rib/filters.py) asked with the
    kernel's address family (``AF_INET``/``AF_INET6``)."""

    def __init__(self, entries) -> None:
        self.plist = PrefixList(entries)

    def __call__(self, af: int, prefix: bytes) -> bool:
        return self.plist(AFI_OF_AF[af], prefix)


InterfaceFilter = InterfaceGlobs  # which interfaces' networks are learned, in order


# --- the host sources -------------------------------------------------------------------------


class RouteSink(Protocol):
    """Where host routes go: the route engine (:class:`bgpd.rde.Rde`, through the daemon)
    or, for tests and tools, the Loc-RIBs themselves (:class:`LocRibSink`). ``families`` is
    the set of families it carries; :meth:`commit` ends a batch of changes."""

    families: frozenset

    def announce(self, source, family, prefixes, attrs) -> None: ...

    def withdraw(self, source, family, prefixes) -> None: ...

    def commit(self) -> None: ...


class LocRibSink:
    """A :class:`RouteSink` writing straight into ``locs`` (family -> LocRib)."""

    def __init__(self, locs: dict, on_commit=None) -> None:
        self.locs = locs
        self.families = frozenset(locs)
        self.on_commit = on_commit

    def announce(self, source, family, prefixes, attrs) -> None:
        self.locs[family].announce(source, prefixes, attrs)

    def withdraw(self, source, family, prefixes) -> None:
        self.locs[family].withdraw(source, prefixes)

    def commit(self) -> None:
        for loc in self.locs.values():
            loc.commit()
        if self.on_commit is not None:
            self.on_commit()


class HostRoutes:
    """The kernel, connected and static sources, and the host state behind them."""

    def __init__(
        self,
        routes: RouteSink,
        *,
        state: HostState | None = None,
        settings: FibSettings | None = None,
        kernel_prefixes: PrefixFilter | None = None,
        interfaces: InterfaceFilter | None = None,
        static=(),
        local_as: int = 0,
    ) -> None:
        settings = settings or FibSettings()
        self.routes = routes
        self.state = state or HostState(settings.table)
        self.settings = settings
        self.kernel_prefixes = kernel_prefixes
        self.interfaces = interfaces
        self.kernel = HostSource("kernel", KERNEL_INDEX, local_as)
        self.connected = HostSource("connected", CONNECTED_INDEX, local_as)
        self.static = HostSource("static", STATIC_INDEX, local_as)
        self.attrs = intern(AttrSet(origin=ORIGIN_IGP, as_path=()))
        self.static_routes = [_static_route(s) for s in static]
        self.fib = None  # the FibWriter, told about host state changes
        self._touched: set = set()  # (af, dst) of kernel routes to look at again
        self._flushed: set = set()
        self._links_changed = False
        self._generation = self.state.generation

    @property
    def sources(self) -> tuple:
        return (self.kernel, self.connected, self.static)

    def interface_of(self, source, family, prefix: bytes) -> str | None:
        """The interface of a host route (None for BGP routes): for policy matches."""
        if isinstance(source, HostSource):
            return source.interface_of(family, prefix)
        return None

    # --- the RIB side ------------------------------------------------------------------------------

    def _set(self, src: HostSource, af: int, prefix: bytes, route: HostRoute | None) -> bool:
        fam = FAMILY_OF_AF[af]
        sink = self.routes
        if fam not in sink.families:
            return False
        routes = src.routes[fam]
        old = routes.get(prefix)
        if old == route:
            return False
        if old is not None:
            sink.withdraw(src, fam, [prefix])
            del routes[prefix]
        if route is not None:
            routes[prefix] = route
            sink.announce(src, fam, [prefix], self.attrs)
        return True

    def _static_state(self) -> None:
        """Next hops resolve through our static routes too (HostState.set_static)."""
        self.state.set_static(
            (af, prefix, r.type, r.gateway, r.interface) for af, prefix, r in self.static_routes
        )

    def load_static(self) -> None:
        """Put the configured static routes into the RIB (no netlink needed)."""
        self._static_state()
        want = {}
        for af, prefix, route in self.static_routes:
            want[(af, prefix)] = route
        for fam, routes in self.static.routes.items():
            af = AF_OF_AFI[fam[0]]
            for p in list(routes):
                if (af, p) not in want:
                    self._set(self.static, af, p, None)
        for (af, p), route in want.items():
            self._set(self.static, af, p, route)
        self._commit()

    def _commit(self) -> None:
        self.routes.commit()

    def reconfigure(
        self,
        *,
        kernel_prefixes: PrefixFilter | None,
        interfaces: InterfaceFilter | None,
        static=(),
    ) -> None:
        """A reload: new learning filters and static routes, applied at once to what the
        host has now (as BIRD's ``configure`` does for its kernel, direct and static
        protocols); one commit for all of it."""
        self.kernel_prefixes = kernel_prefixes
        self.interfaces = interfaces
        self.static_routes = [_static_route(s) for s in static]
        self._static_state()
        want = {(af, prefix) for af, prefix, _route in self.static_routes}
        for fam, routes in self.static.routes.items():
            af = AF_OF_AFI[fam[0]]
            for p in list(routes):
                if (af, p) not in want:
                    self._set(self.static, af, p, None)
        for af, prefix, route in self.static_routes:
            self._set(self.static, af, prefix, route)
        seen = {(af, dst) for af, dst, _metric in self.state.routes}
        for fam, routes in self.kernel.routes.items():
            seen.update((AF_OF_AFI[fam[0]], p) for p in routes)
        for af, dst in seen:
            self._learn_kernel(af, dst)
        self._learn_connected()
        self._commit()
        if self.fib is not None and self.state.generation != self._generation:
            self.fib.resolver_changed(set())  # a static route may carry next hops now
        self._generation = self.state.generation

    def _learn_kernel(self, af: int, dst: bytes) -> None:
        want = None
        filt = self.kernel_prefixes
        if filt is not None and filt(af, dst):
            for r in self.state.routes_for(af, dst):
                if r.protocol == RTPROT_KERNEL or r.type not in LEARNED_TYPES:
                    continue
                gw, ifx = r.nexthops[0][:2] if r.nexthops else (None, 0)
                want = HostRoute(r.type, gw, ifx, self.state.ifname(ifx), r.metric)
                break
        self._set(self.kernel, af, dst, want)

    def _learn_connected(self) -> None:
        filt = self.interfaces
        want = {}
        if filt is not None:
            for af, prefix, index in self.state.connected():
                name = self.state.ifname(index)
                if (af, prefix) not in want and filt(name):
                    want[(af, prefix)] = HostRoute(RTN_UNICAST, None, index, name, 0)
        for fam, routes in self.connected.routes.items():
            af = AF_OF_AFI[fam[0]]
            for p in list(routes):
                if (af, p) not in want:
                    self._set(self.connected, af, p, None)
        for (af, p), route in want.items():
            self._set(self.connected, af, p, route)

    # --- netlink messages ----------------------------------------------------------------------

    def link(self, msg, deleted: bool = False) -> None:
        if deleted:
            gone = self.state.del_link(msg.index)
            self._touched.update((r.family, r.dst) for r in gone)
            self._flushed.add(msg.index)
        elif self.state.set_link(msg):
            gone = self.state.purge_link_routes(msg.index)
            self._touched.update((r.family, r.dst) for r in gone)
            self._flushed.add(msg.index)
        self._links_changed = True

    def addr(self, msg, deleted: bool = False) -> None:
        if deleted:
            self.state.del_addr(msg)
            self._flushed.add(msg.index)
        else:
            self.state.add_addr(msg)
        self._links_changed = True

    def route(self, msg, deleted: bool = False) -> None:
        if msg.table != self.state.table or msg.flags & RTM_F_CLONED:
            return
        if msg.protocol == self.settings.protocol:
            if self.fib is not None:
                self.fib.route_changed_externally(msg, deleted)
            return
        if deleted:
            self.state.del_route(msg)
        else:
            self.state.add_route(msg)
        self._touched.add((msg.family, msg.dst))

    def overwritten(self, keys) -> None:
        """The FIB writer replaced other programs' routes (same prefix and metric)."""
        for af, dst, metric in keys:
            r = self.state.routes.get((af, dst, metric))
            if r is not None:
                self.state.del_route(r)
                self._touched.add((af, dst))
        self.flush()

    def flush(self) -> None:
        """Apply what the messages since the last flush changed: RIB, commit, FIB writer."""
        touched, self._touched = self._touched, set()
        fib = self.fib
        for af, dst in touched:
            self._learn_kernel(af, dst)
            if fib is not None:
                fib.host_route_changed(af, dst)
        if self._links_changed:
            self._links_changed = False
            self._learn_connected()
            # an interface renamed or gone: kernel routes name it
            for fam, routes in self.kernel.routes.items():
                af = AF_OF_AFI[fam[0]]
                for p in list(routes):
                    self._learn_kernel(af, p)
        self._commit()
        flushed, self._flushed = self._flushed, set()
        if self.fib is not None and (flushed or self.state.generation != self._generation):
            self.fib.resolver_changed(flushed)
        self._generation = self.state.generation

    def apply(self, datagrams) -> None:
        """Apply raw netlink datagrams (multicast notifications), then :meth:`flush`."""
        for data in datagrams:
            for typ, _flags, _seq, _pid, a, b in iter_messages(data):
                self._dispatch(typ, data, a, b)
        self.flush()

    def _dispatch(self, typ: int, data, a: int, b: int) -> None:
        if typ in (RTM_NEWROUTE, RTM_DELROUTE):
            r = parse_route(data, a, b)
            if r is not None:
                self.route(r, typ == RTM_DELROUTE)
        elif typ in (RTM_NEWLINK, RTM_DELLINK):
            self.link(parse_link(data, a, b), typ == RTM_DELLINK)
        elif typ in (RTM_NEWADDR, RTM_DELADDR):
            m = parse_addr(data, a, b)
            if m is not None:
                self.addr(m, typ == RTM_DELADDR)

    def replace_all(self, links, addrs, routes) -> None:
        """A full resync from dumps: rebuild the state, fix the RIB, tell the writer."""
        old_kernel = {(AF_OF_AFI[fam[0]], p) for fam, rs in self.kernel.routes.items() for p in rs}
        self.state.clear()
        for m in links:
            self.state.set_link(m)
        for m in addrs:
            self.state.add_addr(m)
        for m in routes:
            if m.table != self.state.table or m.flags & RTM_F_CLONED:
                continue
            if m.protocol == self.settings.protocol:
                continue  # ours: the FIB writer dumps its own
            self.state.add_route(m)
        self._touched = old_kernel | {(af, dst) for af, dst, _metric in self.state.routes}
        self._links_changed = True
        self.flush()


def _static_route(s: StaticRoute) -> tuple[int, bytes, HostRoute]:
    net = ipaddress.ip_network(s.prefix, strict=True)
    af = AF_INET if net.version == 4 else AF_INET6
    prefix = bytes((net.prefixlen,)) + net.network_address.packed[: (net.prefixlen + 7) >> 3]
    gw = ipaddress.ip_address(s.via).packed if s.via else None
    return af, prefix, HostRoute(STATIC_TYPES[s.type], gw, 0, s.interface, 0)


# --- the netlink side ---------------------------------------------------------------------------


class HostWatcher:
    """Feeds :class:`HostRoutes` from netlink: a full dump at start (and after an overrun),
    then the multicast notifications, read when the socket is readable."""

    READ_BUDGET = 512  # datagrams per readable callback before yielding

    def __init__(self, host: HostRoutes, netns: str | None = None, ignore_pid: int = 0) -> None:
        self.host = host
        self.netns = netns
        self.ignore_pid = ignore_pid
        self.events: NetlinkSocket | None = None
        self.req: NetlinkSocket | None = None
        self._loop = None
        self._reading = False
        self._resync_task: asyncio.Task | None = None
        self.resyncs = 0
        self.closed = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.events = NetlinkSocket(self.netns, groups=HOST_GROUPS, rcvbuf=32 << 20)
        if self.ignore_pid:
            self.events.ignore_pid(self.ignore_pid)
        self.req = NetlinkSocket(self.netns)
        await self._sync()
        self._start_reading()

    def _start_reading(self) -> None:
        if not self._reading and not self.closed:
            self._loop.add_reader(self.events.fileno(), self._readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.events.fileno())
            self._reading = False

    async def _sync(self) -> None:
        req = self.req
        table = self.host.state.table
        links = [parse_link(d, a, b) for _t, d, a, b in await req.dump(RTM_GETLINK)]
        addrs = [parse_addr(d, a, b) for _t, d, a, b in await req.dump(RTM_GETADDR)]
        routes = []
        for _t, d, a, b in await req.dump(RTM_GETROUTE, table=table):
            r = parse_route(d, a, b)
            if r is not None:
                routes.append(r)
        self.host.replace_all(links, [a for a in addrs if a is not None], routes)

    def _readable(self) -> None:
        batch = []
        overrun = False
        for _ in range(self.READ_BUDGET):
            try:
                data = self.events.recv_nowait()
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    overrun = True
                    break
                raise
            if data is None:
                break
            batch.append(data)
        if batch:
            try:
                self.host.apply(batch)
            except Exception:
                log.exception("kernel: cannot apply netlink notifications")
                overrun = True
        if overrun:
            self.resync()

    def resync(self) -> None:
        """Start a full resync (after lost notifications)."""
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = self._loop.create_task(self._resync(), name="bgpd-kernel-resync")

    async def _resync(self) -> None:
        self.resyncs += 1
        log.warning("kernel: netlink notifications lost, resyncing host state")
        self._stop_reading()
        try:
            while True:  # what is queued predates the dump: drop it
                try:
                    if self.events.recv_nowait() is None:
                        break
                except OSError:
                    continue
            await self._sync()
        finally:
            self._start_reading()
        if self.host.fib is not None:
            self.host.fib.request_resync()

    async def close(self) -> None:
        self.closed = True
        if self._loop is not None and self.events is not None:
            self._stop_reading()
        if self._resync_task is not None:
            self._resync_task.cancel()
        for s in (self.events, self.req):
            if s is not None:
                s.close()
