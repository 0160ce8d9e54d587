"""From the Loc-RIB's multipath set for a prefix to the kernel route we want: pure.

:func:`translate` is the whole policy of what goes into the FIB:

* a BGP route: one unicast route through the resolved next hops of every BGP candidate of
  the multipath set (one multipath route, ``nexthop via A nexthop via B``, for ECMP). A next
  hop that is not directly connected is resolved recursively through the connected networks
  and the kernel's other routes (:meth:`bgpd.kernel.state.HostState.resolve`); the route is
  installed via the gateway(s) and device(s) found. No resolvable next hop: not installed,
  with the reason (:class:`Unresolved`);
* a static route: blackhole, unreachable, prohibit, a device route or a route via a gateway
  (resolved like a BGP next hop);
* kernel and connected routes are already in the kernel, and locally originated ``networks``
  are for BGP only: nothing to install (None).

The resolver is passed in (``resolver.resolve(af, addr)``, ``resolver.ifindex(name)``); the
FIB writer hands a cached one, the tests a dictionary.
"""

from __future__ import annotations

from .routes import (
    AF_INET,
    AF_INET6,
    AF_OF_AFI,
    RTN_UNICAST,
    FibSettings,
    KernelRoute,
    Unresolved,
    addr_text,
    hop_order,
    prefix_text,
)

INSTALLED_KINDS = frozenset({"bgp", "static"})
IPV6_DEFAULT_METRIC = 1024  # what the kernel stores for an IPv6 route added with metric 0


def kernel_metric(af: int, metric: int) -> int:
    return metric or (IPV6_DEFAULT_METRIC if af == AF_INET6 else 0)


def resolve_next_hop(af: int, nh: bytes, resolver, deps: list | None = None):
    """Resolve a BGP NEXT_HOP (4, 16 or 32 octets: global and link-local) for a route of
    address family ``af``: a tuple of ``(gateway, ifindex)`` or :class:`Unresolved`."""
    n = len(nh)
    if af == AF_INET:
        if n == 4:
            if deps is not None:
                deps.append(nh)
            return resolver.resolve(af, nh)
        if n == 16 and nh[:12] == b"\x00" * 10 + b"\xff\xff":
            return Unresolved(f"IPv4-mapped next hop {addr_text(nh)} for an IPv4 route")
        # RFC 8950: an IPv4 route via an IPv6 next hop, resolved in the IPv6 table and
        # installed with RTA_VIA (Linux 5.2)
        return resolve_next_hop(AF_INET6, nh, resolver, deps)
    if n == 4 or (n >= 16 and nh[:12] == b"\x00" * 10 + b"\xff\xff"):
        return Unresolved(
            f"IPv4 next hop {addr_text(nh[-4:] if n >= 16 else nh)} for an IPv6 route"
        )
    glob = nh[:16]
    if deps is not None:
        deps.append(glob)
    r = resolver.resolve(af, glob)
    if n == 32 and type(r) is not Unresolved and len(r) == 1 and r[0][0] == glob:
        # Directly connected with a link-local address too: use it, as BIRD does.
        return ((nh[16:], r[0][1]),)
    return r


def translate(
    family,
    prefix: bytes,
    cands,
    resolver,
    settings: FibSettings,
    deps: list | None = None,
):
    """The :class:`KernelRoute` for ``prefix``, :class:`Unresolved`, or None (nothing to
    install). ``cands``: the Loc-RIB's multipath candidates, best first (sources or ADD-PATH
    paths with ``attrs_for``). ``deps``, when given, receives every address whose resolution
    the result depends on, so the writer can redo the prefix when one changes."""
    if not cands:
        return None
    best = cands[0]
    src = best.source
    kind = src.kind
    af = AF_OF_AFI[family[0]]
    if kind == "bgp":
        hops = None
        reason = None
        for c in cands:
            if c.source.kind != "bgp":
                continue
            attrs = c.attrs_for(family, prefix)
            nh = attrs.next_hop if attrs is not None else None
            if not nh:
                reason = reason or "no next hop"
                continue
            r = resolve_next_hop(af, nh, resolver, deps)
            if type(r) is Unresolved:
                reason = reason or r.reason
                continue
            hops = r if hops is None else hops + r
        if not hops:
            return Unresolved(reason or "no next hop")
        if len(hops) > 1:
            hops = tuple(sorted(set(hops), key=hop_order))
        return KernelRoute(
            af,
            prefix,
            RTN_UNICAST,
            hops,
            kernel_metric(af, settings.metric),
            settings.table,
            settings.protocol,
        )
    if kind == "static":
        hr = src.route_of(family, prefix)
        if hr is None:
            return None
        metric = kernel_metric(af, settings.metric)
        if hr.type != RTN_UNICAST:
            return KernelRoute(af, prefix, hr.type, (), metric, settings.table, settings.protocol)
        ifindex = 0
        if hr.interface is not None:
            ifindex = resolver.ifindex(hr.interface) or 0
            if not ifindex:
                return Unresolved(f"no interface {hr.interface}")
        if hr.gateway is None:
            hops = ((None, ifindex),)
        elif ifindex:
            hops = ((hr.gateway, ifindex),)
        else:
            if deps is not None:
                deps.append(hr.gateway)
            hops = resolver.resolve(af, hr.gateway)
            if type(hops) is Unresolved:
                return hops
        return KernelRoute(af, prefix, RTN_UNICAST, hops, metric, settings.table, settings.protocol)
    return None


def describe(result) -> str:
    """``installed``-style text for a translation result (for logs and ``show``)."""
    if result is None:
        return "not for the kernel"
    if type(result) is Unresolved:
        return f"not installed: {result.reason}"
    return f"kernel route {prefix_text(result.family, result.dst)}"
