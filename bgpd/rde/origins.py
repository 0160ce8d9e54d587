"""Routes added at run time: the route API's owners and the health-checked services.

Controllers (MetalLB, kube-vip, an anycast agent) add and remove routes on the control
socket; health-checked services (``services:`` in the config) announce theirs while their
check passes. Both land here, as routes of an **owner**: a name, and a kind (``api`` for the
route API, ``service`` for a health-checked service).

Each owner is a RIB :class:`~bgpd.rib.Source` of its own (kind ``api`` or ``service``), not
one shared source with owner bookkeeping, because:

- two owners may announce the same prefix: each is a candidate of its own in the Loc-RIB, the
  decision process picks one (by ``local_pref``, MED... and, when everything ties, the owner
  name), and deleting one owner's route leaves the other's announced (no withdrawal; a new
  best path is one UPDATE). One shared source holds one attribute set per prefix, so the
  second owner would overwrite the first or be refused, and a delete would need a rule to
  resurrect the other's attributes;
- removing an owner (its last route, a service removed by a reload) is ``Rib.flush`` of its
  source, like a neighbor going down;
- a policy matches them with ``source: api`` / ``source: service`` like any local route.

Every owner of a kind shares one source index (:data:`INDEXES`): export results are cached
on attribute sets per (export context, family, source index), and for a local source the
result depends on its kind and the set only, so owners of one kind share their results and
an owner that goes away leaves nothing behind on the sets.

Adding a route again replaces its attributes in place (one UPDATE to each peer, never a
withdrawal first) and renews its lease. A lease is a deadline in the engine's timers
(``("lease", kind, owner, family, prefix)``): when it passes without a renewal, the route is
withdrawn.

Sans-I/O: time comes in as ``now``. Text parsing for the control socket is here too
(:func:`parse_prefix`, :func:`route_spec`), so that the route API and its tests share one set
of rules and messages.
"""

import ipaddress
import re
from dataclasses import dataclass, replace

import structlog

from bgpd.policy import PolicyError
from bgpd.policy.values import parse_community, parse_large_community
from bgpd.rib import Source
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST, ORIGIN_IGP

log = structlog.get_logger("bgpd.rde")

API = "api"
SERVICE = "service"
KINDS = (API, SERVICE)
# The source index of every owner of a kind (neighbors count up from 1, ``networks`` is 0,
# host routes use -1..-3: bgpd/kernel/learn.py).
INDEXES = {API: -4, SERVICE: -5}

DEFAULT_OWNER = "default"
MAX_PREPEND = 32
MAX_OWNER = 64  # characters in an owner name
_OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*")
U32 = 0xFFFFFFFF


class RouteError(ValueError):
    """A request the route API refuses: its text says what is wrong (nothing changed)."""


# --- what a route says -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """The attributes of an added route, as plain values.

    ``next_hop``: packed address (4 or 16 octets), None for ours (next hop self, as for
    ``networks``); ``communities``: 32-bit values; ``large_communities``: ``(a, b, c)``;
    ``as_path_prepend``: how many times our AS starts the AS path (eBGP export adds one
    more, as for every route).
    """

    next_hop: bytes | None = None
    communities: tuple = ()
    large_communities: tuple = ()
    local_pref: int | None = None
    med: int | None = None
    as_path_prepend: int = 0

    def attrs(self, asn: int) -> AttrSet:
        """The interned attribute set of a route of ours with these values."""
        path = ((AS_SEQUENCE, (asn,) * self.as_path_prepend),) if self.as_path_prepend else ()
        return intern(
            AttrSet(
                origin=ORIGIN_IGP,
                as_path=path,
                next_hop=self.next_hop,
                med=self.med,
                local_pref=self.local_pref,
                communities=tuple(sorted(set(self.communities))),
                large_communities=tuple(sorted(set(self.large_communities))),
            )
        )

    def degraded(self, change: "RouteSpec") -> "RouteSpec":
        """These values with ``change`` applied (a service's ``on_fail``): its communities
        are added, its other values, when set, replace ours."""
        return replace(
            self,
            communities=self.communities + change.communities,
            large_communities=self.large_communities + change.large_communities,
            local_pref=self.local_pref if change.local_pref is None else change.local_pref,
            med=self.med if change.med is None else change.med,
            as_path_prepend=change.as_path_prepend or self.as_path_prepend,
        )

    def to_json(self) -> dict:
        return {
            "next_hop": pfx.addr_to_str(self.next_hop) if self.next_hop else None,
            "communities": [f"{c >> 16}:{c & 0xFFFF}" for c in sorted(set(self.communities))],
            "large_communities": [
                f"{a}:{b}:{c}" for a, b, c in sorted(set(self.large_communities))
            ],
            "local_pref": self.local_pref,
            "med": self.med,
            "as_path_prepend": self.as_path_prepend,
        }


# --- parsing the control socket's arguments --------------------------------------------------


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"a {type(value).__name__}"


def parse_prefix(text) -> tuple:
    """``(family, prefix in wire format, canonical text)`` of ``"P/L"`` (a bare address is a
    host route). Host bits must be clear: the error says which network was meant."""
    if not isinstance(text, str) or not text.strip():
        raise RouteError(f"expected a prefix like 192.0.2.0/24, got {_describe(text)}")
    text = text.strip()
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise RouteError(f"{text!r} is not a prefix ({e})") from None
        raise RouteError(f"{text} has host bits set (did you mean {loose}?)") from None
    fam = IPV4_UNICAST if net.version == 4 else IPV6_UNICAST
    return fam, pfx.from_network(net), str(net)


def parse_owner(value) -> str:
    """An owner name: 1..64 of letters, digits and ``. _ : @ / -``, starting with a letter or
    a digit (None: :data:`DEFAULT_OWNER`)."""
    if value is None:
        return DEFAULT_OWNER
    if not isinstance(value, str):
        raise RouteError(f"owner: expected a name, got {_describe(value)}")
    if not value or len(value) > MAX_OWNER or not _OWNER_RE.fullmatch(value):
        raise RouteError(
            f"owner {value!r} is not a valid name (1..{MAX_OWNER} letters, digits and . _ : @ / -, "
            "starting with a letter or a digit)"
        )
    return value


def _int(value, what: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RouteError(f"{what}: expected an integer {lo}..{hi}, got {_describe(value)}")
    if not lo <= value <= hi:
        raise RouteError(f"{what}: {value} is out of range ({lo}..{hi})")
    return value


def _list(value, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        raise RouteError(f"{what}: expected a list, got {_describe(value)}")
    return list(value)


def parse_next_hop(value, fam) -> bytes | None:
    """A unicast next hop of the prefix's family (None: ours)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RouteError(f"next hop: expected an IP address, got {_describe(value)}")
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise RouteError(f"next hop {value!r} is not an IP address") from None
    want = 4 if fam == IPV4_UNICAST else 6
    if addr.version != want:
        raise RouteError(f"next hop {addr} is not an IPv{want} address, as the prefix is")
    if addr.is_multicast or addr.is_unspecified:
        raise RouteError(f"next hop {addr} is not a unicast address")
    if addr.version == 6 and addr.is_link_local:
        raise RouteError(f"next hop {addr} is link-local: give a global address")
    return addr.packed


def community_values(items, what: str = "community") -> tuple:
    """``"A:B"`` or a well-known name (``no-export``...) as 32-bit values."""
    out = []
    for v in _list(items, what):
        try:
            (hi, _), (lo, _) = parse_community(v, what)
        except PolicyError as e:
            raise RouteError(f"{what} {_show(v)}: {_reason(e)}") from None
        out.append(hi << 16 | lo)
    return tuple(out)


def large_community_values(items, what: str = "large community") -> tuple:
    """``"A:B:C"`` (three 32-bit numbers) as ``(a, b, c)``."""
    out = []
    for v in _list(items, what):
        try:
            (a, _), (b, _), (c, _) = parse_large_community(v, what)
        except PolicyError as e:
            raise RouteError(f"{what} {_show(v)}: {_reason(e)}") from None
        out.append((a, b, c))
    return tuple(out)


def _show(v) -> str:
    return repr(v) if isinstance(v, str) else _describe(v)


def _reason(e: PolicyError) -> str:
    return e.reason


def route_spec(
    fam,
    *,
    next_hop=None,
    communities=None,
    large_communities=None,
    local_pref=None,
    med=None,
    as_path_prepend=None,
) -> RouteSpec:
    """The attributes of a route API request (JSON values), checked."""
    return RouteSpec(
        next_hop=parse_next_hop(next_hop, fam),
        communities=community_values(communities),
        large_communities=large_community_values(large_communities),
        local_pref=_int(local_pref, "local_pref", 0, U32),
        med=_int(med, "med", 0, U32),
        as_path_prepend=_int(as_path_prepend, "as_path_prepend", 0, MAX_PREPEND) or 0,
    )


# --- the routes ------------------------------------------------------------------------------


class OriginRoute:
    """One added route: what it says, its attribute set, its lease."""

    __slots__ = ("spec", "attrs", "lease", "expires", "added", "changed")

    def __init__(self, spec: RouteSpec, attrs: AttrSet, now: float) -> None:
        self.spec = spec
        self.attrs = attrs
        self.lease: float | None = None
        self.expires: float | None = None
        self.added = now
        self.changed = now


class Owner:
    """The routes of one owner, and its RIB source."""

    __slots__ = ("kind", "name", "source", "routes")

    def __init__(self, kind: str, name: str, source: Source) -> None:
        self.kind = kind
        self.name = name
        self.source = source
        self.routes: dict = {}  # (family, prefix) -> OriginRoute


class Origins:
    """Every owner's routes, applied to the Loc-RIBs (the caller commits)."""

    def __init__(self, rib, timers, asn: int) -> None:
        self.rib = rib
        self.timers = timers
        self.asn = asn
        self.owners: dict = {}  # (kind, name) -> Owner

    def __len__(self) -> int:
        return sum(len(o.routes) for o in self.owners.values())

    def names(self, kind: str = API) -> list:
        return sorted(n for k, n in self.owners if k == kind)

    def owner(self, kind: str, name: str) -> Owner:
        o = self.owners.get((kind, name))
        if o is None:
            known = ", ".join(self.names(kind)) or "none"
            what = "owner" if kind == API else "service"
            raise RouteError(f"no {what} {name!r} has routes ({what}s with routes: {known})")
        return o

    def add(
        self,
        kind: str,
        name: str,
        fam,
        prefix: bytes,
        spec: RouteSpec,
        now: float,
        lease: float | None = None,
    ) -> str:
        """Announce (or change, or renew) a route of ``name``; returns what happened:
        ``added``, ``modified`` (new attributes), ``renewed`` (same attributes, the lease
        moved) or ``unchanged``."""
        o = self.owners.get((kind, name))
        if o is None:
            src = Source(
                name,
                kind,
                local_as=self.asn,
                index=INDEXES[kind],
                address_key=name.encode(),  # the last tie-break between owners: the name
            )
            o = self.owners[(kind, name)] = Owner(kind, name, src)
        attrs = spec.attrs(self.asn)
        key = (fam, prefix)
        r = o.routes.get(key)
        if r is None:
            r = o.routes[key] = OriginRoute(spec, attrs, now)
            result = "added"
        elif r.attrs is not attrs:
            r.spec, r.attrs, r.changed = spec, attrs, now
            result = "modified"
        else:
            r.spec = spec
            result = "renewed" if lease is not None else "unchanged"
        tkey = ("lease", kind, name, fam, prefix)
        r.lease = lease
        if lease is None:
            r.expires = None
            self.timers.cancel(tkey)
        else:
            r.expires = now + lease
            self.timers.set(tkey, r.expires)
        if result in ("added", "modified"):
            self.rib.loc[fam].announce(o.source, [prefix], attrs)
        return result

    def delete(self, kind: str, name: str, fam, prefix: bytes) -> None:
        """Withdraw a route of ``name``; :class:`RouteError` when it has none there."""
        o = self.owner(kind, name)
        if (fam, prefix) not in o.routes:
            text = pfx.to_str(prefix, fam[0])
            others = [n for n in self.names(kind) if (fam, prefix) in self.owners[(kind, n)].routes]
            hint = f" (owned by: {', '.join(others)})" if others else ""
            raise RouteError(f"owner {name!r} has no route {text}{hint}")
        self._remove(o, fam, prefix)

    def _remove(self, o: Owner, fam, prefix: bytes) -> None:
        del o.routes[(fam, prefix)]
        self.timers.cancel(("lease", o.kind, o.name, fam, prefix))
        self.rib.loc[fam].withdraw(o.source, [prefix])
        if not o.routes:
            del self.owners[(o.kind, o.name)]

    def flush(self, kind: str, name: str) -> int:
        """Withdraw every route of ``name`` (a removed service); how many there were."""
        o = self.owners.get((kind, name))
        if o is None:
            return 0
        n = len(o.routes)
        for fam, prefix in list(o.routes):
            self._remove(o, fam, prefix)
        return n

    def keep_only(self, kind: str, name: str, keys) -> None:
        """Withdraw the routes of ``name`` whose (family, prefix) is not in ``keys``."""
        o = self.owners.get((kind, name))
        if o is None:
            return
        keep = set(keys)
        for key in [k for k in o.routes if k not in keep]:
            self._remove(o, *key)

    def expire(self, key) -> bool:
        """A lease timer fired (``key`` as set by :meth:`add`): withdraw the route."""
        _tag, kind, name, fam, prefix = key
        o = self.owners.get((kind, name))
        if o is None or (fam, prefix) not in o.routes:
            return False
        log.info(
            "route lease expired",
            owner=name,
            kind=kind,
            prefix=pfx.to_str(prefix, fam[0]),
            lease=o.routes[(fam, prefix)].lease,
        )
        self._remove(o, fam, prefix)
        return True

    def set_asn(self, asn: int) -> None:
        """Our AS changed (a reload): rebuild the attribute sets (the prepended AS)."""
        self.asn = asn
        for o in self.owners.values():
            o.source.local_as = asn
            for (fam, prefix), r in o.routes.items():
                attrs = r.spec.attrs(asn)
                if attrs is not r.attrs:
                    r.attrs = attrs
                    self.rib.loc[fam].announce(o.source, [prefix], attrs)

    def routes(self, kind: str | None = None, name: str | None = None):
        """``(owner, family, prefix, route)`` sorted by family, prefix and owner."""
        out = []
        for (k, n), o in self.owners.items():
            if (kind is None or k == kind) and (name is None or n == name):
                for (fam, prefix), r in o.routes.items():
                    out.append((o, fam, prefix, r))
        out.sort(key=lambda t: (t[1], t[2][1:].ljust(16, b"\0"), t[2][0], t[0].kind, t[0].name))
        return out
