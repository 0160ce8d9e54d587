"""The values the kernel layer passes around: kernel routes, host routes and their sources.

Pure: no netlink here. Prefixes stay in their wire encoding (length octet, significant
octets) as everywhere else in bgpd; text is made only for messages and logs.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

from bgpd.rib import Source
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
AF_OF_AFI = {AFI_IPV4: AF_INET, AFI_IPV6: AF_INET6}
FAMILY_OF_AF = {AF_INET: IPV4_UNICAST, AF_INET6: IPV6_UNICAST}

RTN_UNICAST = 1
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
TYPE_NAMES = {
    RTN_UNICAST: "unicast",
    RTN_BLACKHOLE: "blackhole",
    RTN_UNREACHABLE: "unreachable",
    RTN_PROHIBIT: "prohibit",
}


class KernelRoute(NamedTuple):
    """A route as we want it in (or found it in) the kernel's table.

    ``family``: AF_INET or AF_INET6; ``dst``: the wire-format prefix; ``type``: RTN_UNICAST,
    RTN_BLACKHOLE, RTN_UNREACHABLE or RTN_PROHIBIT; ``nexthops``: sorted tuple of
    ``(gateway bytes or None, ifindex)`` (several: one multipath route); ``metric``: the
    kernel's priority (IPv6 reports 0 as 1024, so we ask for 1024 there); ``table`` and
    ``protocol`` as configured. Two equal values describe the same kernel state, which is what
    makes the writer idempotent.
    """

    family: int
    dst: bytes
    type: int
    nexthops: tuple
    metric: int
    table: int
    protocol: int

    def __str__(self) -> str:
        text = prefix_text(self.family, self.dst)
        if self.type != RTN_UNICAST:
            return f"{TYPE_NAMES.get(self.type, self.type)} {text}"
        hops = " ".join(
            f"via {addr_text(h[0])} dev#{h[1]}{' onlink' if len(h) > 2 else ''}"
            if h[0]
            else f"dev#{h[1]}"
            for h in self.nexthops
        )
        return f"{text} {hops} metric {self.metric}"


def hop_order(hop) -> tuple:
    """The sort key of a next hop ``(gateway or None, ifindex[, flags])``: a multipath
    route's hops in :class:`KernelRoute` order, whoever made them (us or a netlink dump)."""
    return (hop[0] or b"", hop[1])


class Unresolved:
    """Why a route is not installed (a next hop we cannot reach, a refusal of the kernel)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __eq__(self, other) -> bool:
        return type(other) is Unresolved and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)

    def __repr__(self) -> str:
        return f"Unresolved({self.reason!r})"


class FibSettings(NamedTuple):
    """Where and how our routes go: table id, rtproto id, metric."""

    table: int = 254
    protocol: int = 186
    metric: int = 0


class HostRoute(NamedTuple):
    """What the RIB's attribute set cannot say about a host route (kernel, connected, static):
    its kernel type, gateway, interface and metric. Kept per prefix by its :class:`HostSource`
    so that policies can match the interface and the FIB writer can install static routes."""

    type: int = RTN_UNICAST
    gateway: bytes | None = None
    ifindex: int = 0
    interface: str | None = None
    metric: int = 0


class HostSource(Source):
    """A source of host routes: ``kind`` is ``kernel``, ``connected`` or ``static``.

    ``routes[family][prefix]`` is the :class:`HostRoute` of each prefix the source announces
    (the attribute set in ``adj_in`` is a shared empty one: origin IGP, empty AS path, no next
    hop, so that export applies next-hop-self).
    """

    __slots__ = ("routes",)

    def __init__(self, kind: str, index: int, local_as: int = 0) -> None:
        super().__init__(kind, kind, local_as=local_as, index=index)
        self.routes: dict = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}

    def route_of(self, family, prefix: bytes) -> HostRoute | None:
        return self.routes[family].get(prefix)

    def interface_of(self, family, prefix: bytes) -> str | None:
        """The route's interface name, for a policy's ``interface`` match."""
        r = self.routes[family].get(prefix)
        return r.interface if r is not None else None

    def metric_of(self, family, prefix: bytes) -> int | None:
        r = self.routes[family].get(prefix)
        return r.metric if r is not None else None


# --- text, for messages ------------------------------------------------------------------------


def addr_text(addr: bytes | None) -> str:
    if not addr:
        return "-"
    try:
        return str(ipaddress.ip_address(bytes(addr)))
    except ValueError:
        return addr.hex()


def prefix_text(family: int, prefix: bytes) -> str:
    size = 4 if family in (AF_INET, AFI_IPV4) else 16
    addr = prefix[1:].ljust(size, b"\x00")
    return f"{ipaddress.ip_address(addr)}/{prefix[0]}"
