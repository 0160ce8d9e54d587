"""The host's interfaces, addresses and routes as netlink reports them, and next-hop resolution.

Pure: :class:`HostState` is fed parsed netlink messages (:mod:`.netlink`) by the learner and
answers :meth:`HostState.resolve`, the question the FIB writer asks for every BGP next hop:
through which gateway(s) and interface(s) is this address reached? The answer follows the
kernel's own longest-prefix match over the connected networks (interface addresses on usable
links), our own static routes (:meth:`HostState.set_static`: a ``via`` route that pins the
way to a peer, as Calico's reachableBy does, must carry the BGP routes whose next hop is
that peer) and the routes of our table that are not ours (BGP next hops never resolve
through BGP routes), lowest metric first among routes to the same prefix; at equal prefix
lengths a connected network wins over a static route, which wins over another program's
route (BIRD's direct 240, static 200, kernel 10). :meth:`HostState.reach` also says which
of the three it was.
"""

from __future__ import annotations

from .netlink import (
    ADDR_LEN,
    AF_INET,
    AF_INET6,
    IFF_LOWER_UP,
    IFF_UP,
    RT_SCOPE_LINK,
    RTN_NAMES,
    RTN_UNICAST,
    AddrMsg,
    LinkMsg,
    RouteMsg,
    wire_prefix,
)
from .routes import Unresolved, addr_text, prefix_text

BITS = {AF_INET: 32, AF_INET6: 128}


def usable_flags(flags: int) -> bool:
    """An interface forwards when it is administratively up and has a carrier."""
    return bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)


def is_link_local(family: int, addr: bytes) -> bool:
    return family == AF_INET6 and addr[0] == 0xFE and (addr[1] & 0xC0) == 0x80


class _Lpm:
    """Longest-prefix match over ``(family, wire prefix) -> [items]``."""

    def __init__(self) -> None:
        self.by_len: dict = {AF_INET: {}, AF_INET6: {}}  # family -> plen -> top bits -> items
        self.lengths: dict = {AF_INET: (), AF_INET6: ()}  # family -> plens, longest first

    def add(self, family: int, prefix: bytes, item) -> None:
        plen = prefix[0]
        table = self.by_len[family].get(plen)
        if table is None:
            table = self.by_len[family][plen] = {}
            self.lengths[family] = tuple(sorted(self.by_len[family], reverse=True))
        table.setdefault(_top_bits(prefix), []).append(item)

    def remove(self, family: int, prefix: bytes, item) -> None:
        plen = prefix[0]
        table = self.by_len[family].get(plen)
        if table is None:
            return
        key = _top_bits(prefix)
        items = table.get(key)
        if not items:
            return
        try:
            items.remove(item)
        except ValueError:
            return
        if not items:
            del table[key]
            if not table:
                del self.by_len[family][plen]
                self.lengths[family] = tuple(sorted(self.by_len[family], reverse=True))

    def matches(self, family: int, addr: bytes):
        """``(plen, items)`` for every prefix covering ``addr``, longest first."""
        bits = BITS[family]
        value = int.from_bytes(addr, "big")
        by_len = self.by_len[family]
        for plen in self.lengths[family]:
            items = by_len[plen].get(value >> (bits - plen))
            if items:
                yield plen, items


def _top_bits(prefix: bytes) -> int:
    plen = prefix[0]
    if not plen:
        return 0
    return int.from_bytes(prefix[1:], "big") >> (((len(prefix) - 1) << 3) - plen)


class HostState:
    """Links, addresses and (other programs') routes of one table."""

    def __init__(self, table: int = 254) -> None:
        self.table = table
        self.links: dict[int, LinkMsg] = {}
        self.addrs: dict[tuple, AddrMsg] = {}  # (family, index, local, prefixlen) -> msg
        self.local: dict[tuple, int] = {}  # (family, address) -> count of addresses
        self.routes: dict[tuple, RouteMsg] = {}  # (family, dst, metric) -> route
        self.dsts: dict[bytes, int] = {}  # dst -> number of routes to it (a quick "any?")
        self._connected = _Lpm()  # connected networks -> [AddrMsg]
        self._routes = _Lpm()  # route prefixes -> [RouteMsg]
        self._static = _Lpm()  # our static routes: prefix -> [(type, gateway, interface)]
        self.statics: tuple = ()  # what set_static was given
        self.generation = 0  # bumped whenever a resolution may have changed

    # --- names ------------------------------------------------------------------------------

    def ifname(self, index: int) -> str | None:
        link = self.links.get(index)
        return link.name if link is not None else None

    def ifindex(self, name: str) -> int | None:
        for link in self.links.values():
            if link.name == name:
                return link.index
        return None

    def usable(self, index: int) -> bool:
        link = self.links.get(index)
        return link is not None and usable_flags(link.flags)

    # --- updates from netlink ---------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything (before a full resync)."""
        self.links.clear()
        self.addrs.clear()
        self.local.clear()
        self.routes.clear()
        self.dsts.clear()
        self._connected = _Lpm()
        self._routes = _Lpm()
        self.generation += 1

    def set_link(self, msg: LinkMsg) -> bool:
        """A new or changed link; True when it was set administratively down (the kernel then
        removes the routes through it, without telling anyone for IPv4)."""
        old = self.links.get(msg.index)
        self.links[msg.index] = msg
        if old is None or old.flags != msg.flags or old.name != msg.name:
            self.generation += 1
        return old is not None and bool(old.flags & IFF_UP) and not msg.flags & IFF_UP

    def purge_link_routes(self, index: int) -> list:
        """Drop the routes whose every next hop is on link ``index``; returns them."""
        gone = []
        for r in list(self.routes.values()):
            if r.nexthops and all(h[1] == index for h in r.nexthops):
                self.del_route(r)
                gone.append(r)
        return gone

    def del_link(self, index: int) -> list:
        """A link went away, with its addresses and routes; returns the routes."""
        if self.links.pop(index, None) is not None:
            self.generation += 1
        for a in list(self.addrs.values()):
            if a.index == index:
                self.del_addr(a)
        return self.purge_link_routes(index)

    def add_addr(self, msg: AddrMsg) -> None:
        key = (msg.family, msg.index, msg.local, msg.prefixlen)
        old = self.addrs.get(key)
        if old is not None:
            self._connected.remove(msg.family, _network(old), old)
        else:
            lk = (msg.family, msg.local)
            self.local[lk] = self.local.get(lk, 0) + 1
        self.addrs[key] = msg
        self._connected.add(msg.family, _network(msg), msg)
        self.generation += 1

    def del_addr(self, msg: AddrMsg) -> None:
        key = (msg.family, msg.index, msg.local, msg.prefixlen)
        old = self.addrs.pop(key, None)
        if old is None:
            return
        self._connected.remove(old.family, _network(old), old)
        lk = (old.family, old.local)
        n = self.local.get(lk, 0) - 1
        if n > 0:
            self.local[lk] = n
        else:
            self.local.pop(lk, None)
        self.generation += 1

    def add_route(self, msg: RouteMsg) -> RouteMsg | None:
        """A route of another program; returns the route it replaced (same dst and metric)."""
        key = (msg.family, msg.dst, msg.metric)
        old = self.routes.get(key)
        if old is not None:
            self._routes.remove(old.family, old.dst, old)
        else:
            self.dsts[msg.dst] = self.dsts.get(msg.dst, 0) + 1
        self.routes[key] = msg
        self._routes.add(msg.family, msg.dst, msg)
        self.generation += 1
        return old

    def del_route(self, msg: RouteMsg) -> RouteMsg | None:
        old = self.routes.pop((msg.family, msg.dst, msg.metric), None)
        if old is not None:
            self._routes.remove(old.family, old.dst, old)
            n = self.dsts[old.dst] - 1
            if n:
                self.dsts[old.dst] = n
            else:
                del self.dsts[old.dst]
            self.generation += 1
        return old

    def routes_for(self, family: int, dst: bytes) -> list:
        """The routes to exactly ``dst`` (several metrics), lowest metric first."""
        items = self._routes.by_len[family].get(dst[0], {}).get(_top_bits(dst))
        return sorted(items, key=_metric) if items else []

    def set_static(self, routes) -> None:
        """Our static routes, ``(family, wire prefix, type, gateway, interface)`` each: next
        hops resolve through them too (a static route's own gateway only through a connected
        network, as BIRD wants static gateways to be neighbors)."""
        routes = tuple(routes)
        if routes == self.statics:
            return
        self.statics = routes
        self._static = _Lpm()
        for family, prefix, rtype, gateway, interface in routes:
            self._static.add(family, prefix, (rtype, gateway, interface))
        self.generation += 1

    def connected(self):
        """``(family, network prefix, ifindex)`` of every address on a usable link, except
        host-scope (loopback) and link-local addresses."""
        for a in self.addrs.values():
            if a.scope >= RT_SCOPE_LINK or not self.usable(a.index):
                continue
            yield a.family, _network(a), a.index

    # --- resolution -------------------------------------------------------------------------

    def resolve(self, family: int, addr: bytes):
        """How ``addr`` is reached: a tuple of ``(gateway, ifindex)`` or :class:`Unresolved`.

        Directly connected: ``((addr, ifindex),)``. Through a route with gateways: those
        gateways (recursion ends there: the kernel only accepts directly reachable ones).
        Through a device route (``10.0.0.0/8 dev tun0``): ``((addr, tun0),)``.
        """
        return self.reach(family, addr)[0]

    def reach(self, family: int, addr: bytes) -> tuple:
        """:meth:`resolve`'s answer and what gave it: ``"connected"``, ``"static"`` (one of
        ours), ``"route"`` (another program's) or None (unresolved, or refused before any
        lookup)."""
        if len(addr) != ADDR_LEN.get(family):
            return Unresolved(f"next hop {addr_text(addr)} is not of the route's family"), None
        if (family, addr) in self.local:
            return Unresolved(f"next hop {addr_text(addr)} is a local address"), None
        if is_link_local(family, addr):
            return Unresolved(f"link-local next hop {addr_text(addr)} without an interface"), None
        best = None  # (prefix length, rank, answer, how)
        for rank, how, answer in (
            (2, "connected", self._via_connected(family, addr)),
            (1, "static", self._via_static(family, addr)),
            (0, "route", self._via_route(family, addr)),
        ):
            if answer is not None and (best is None or (answer[0], rank) > best[:2]):
                best = (answer[0], rank, answer[1], how)
        if best is None:
            return Unresolved(f"no route to next hop {addr_text(addr)}"), None
        return best[2], best[3] if type(best[2]) is not Unresolved else None

    def _via_connected(self, family: int, addr: bytes):
        for plen, addrs in self._connected.matches(family, addr):
            for a in addrs:
                if self.usable(a.index):
                    return plen, ((addr, a.index),)
        return None

    def _via_static(self, family: int, addr: bytes):
        for plen, items in self._static.matches(family, addr):
            for rtype, gateway, interface in items:
                if rtype != RTN_UNICAST:
                    what = RTN_NAMES.get(rtype, str(rtype))
                    return plen, Unresolved(
                        f"next hop {addr_text(addr)} is covered by a static {what} route"
                    )
                if interface is not None:
                    index = self.ifindex(interface)
                    if index is not None and self.usable(index):
                        return plen, ((gateway or addr, index),)
                    continue
                if gateway is not None:
                    via = self._via_connected(family, gateway)
                    if via is not None:
                        return plen, ((gateway, via[1][0][1]),)
        return None

    def _via_route(self, family: int, addr: bytes):
        for plen, items in self._routes.matches(family, addr):
            for route in sorted(items, key=_metric):
                if route.type != RTN_UNICAST:
                    what = RTN_NAMES.get(route.type, str(route.type))
                    return plen, Unresolved(
                        f"next hop {addr_text(addr)} is covered by a {what} route "
                        f"({prefix_text(family, route.dst)})"
                    )
                hops = tuple(
                    (h[0] if h[0] is not None else addr, h[1])
                    for h in route.nexthops
                    if self.usable(h[1])
                )
                if hops:
                    return plen, hops
        return None


def _metric(r: RouteMsg) -> int:
    return r.metric


def _network(a: AddrMsg) -> bytes:
    return wire_prefix(a.address, a.prefixlen)
