"""Where routes come from: BGP neighbors and local origins, as the RIB sees them."""

import itertools
from collections.abc import Iterator, Mapping

from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

_tx_ids = itertools.count(1)  # ADD-PATH send: one path id per candidate, never reused

# Per-source preference ahead of the BGP steps (BIRD's defaults: nest/rt-table.c rte_better).
# ``api`` and ``service``: routes added at run time (bgpd/rde/origins.py), ours like ``local``.
PREFERENCE = {
    "kernel": 10,
    "bgp": 100,
    "static": 200,
    "local": 200,
    "api": 200,
    "service": 200,
    "connected": 240,
}


class Source:
    """A BGP neighbor or a local origin (networks, static, kernel, connected).

    Its Adj-RIB-In, ``adj_in[family]``, maps a prefix key (or, when the neighbor sends
    ADD-PATH, ``(path_id, prefix)``) to the interned :class:`AttrSet` it announced. The
    routes themselves are kept once, in the Loc-RIB (a :class:`Route` per prefix and
    candidate, rib/table.py): ``adj_in[family]`` is a read-only view of them (its length is
    a count kept by the Loc-RIB; looking a key up reads the Loc-RIB entry; iterating walks
    the Loc-RIB). A source without ADD-PATH is itself the RIB's candidate for a prefix; with
    ADD-PATH each path is a :class:`Path` pointing back here.
    """

    __slots__ = (
        "name",
        "kind",
        "preference",
        "asn",
        "local_as",
        "ibgp",
        "router_id",
        "address_key",
        "rr_client",
        "index",
        "counts",
        "locs",
        "last_route",
        "addpath",
        "group",
        "stale",
        "igp_cost",
        "paths",
        "tx_id",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        kind: str = "bgp",
        *,
        asn: int = 0,
        local_as: int = 0,
        router_id: int = 0,
        address_key: bytes = b"",
        rr_client: bool = False,
        preference: int | None = None,
        index: int = 0,
        addpath: frozenset = frozenset(),
    ) -> None:
        self.name = name
        self.kind = kind
        self.preference = PREFERENCE.get(kind, 100) if preference is None else preference
        self.asn = asn
        self.local_as = local_as
        self.ibgp = kind == "bgp" and asn == local_as
        self.router_id = router_id
        self.address_key = address_key
        self.rr_client = rr_client
        self.index = index
        self.counts: dict = {}  # family -> prefix keys announced (the Adj-RIB-In's size)
        self.locs: dict = {}  # family -> the LocRib holding this source's routes
        self.last_route = None  # the Route of the latest announcement (reused for the same set)
        self.addpath = addpath  # families whose routes from this source carry path ids
        self.group = None  # the export group this source (as a neighbor) belongs to
        self.stale: dict = {}  # family -> set of stale keys (graceful restart)
        self.igp_cost = 0
        self.paths: dict = {}  # path id -> Path, the candidates of an ADD-PATH source
        self.tx_id = next(_tx_ids)

    # A plain source is its own candidate.
    @property
    def source(self) -> "Source":
        return self

    @property
    def pid(self) -> int:
        return 0

    @property
    def adj_in(self) -> "AdjIn":
        return AdjIn(self)

    def attrs_for(self, family, prefix: bytes):
        return _lookup(self, family, prefix)

    @property
    def is_bgp(self) -> bool:
        return self.kind == "bgp"

    def __repr__(self) -> str:
        return f"Source({self.name!r}, {self.kind})"


class Path:
    """One ADD-PATH path of a source for a prefix: the candidate when path ids are in use."""

    __slots__ = ("source", "pid", "tx_id")

    def __init__(self, source: Source, pid: int) -> None:
        self.source = source
        self.pid = pid
        self.tx_id = next(_tx_ids)

    def attrs_for(self, family, prefix: bytes):
        return _lookup(self.source, family, (self.pid, prefix))

    def __eq__(self, other) -> bool:
        return isinstance(other, Path) and other.source is self.source and other.pid == self.pid

    def __hash__(self) -> int:
        return hash((id(self.source), self.pid))

    def __repr__(self) -> str:
        return f"Path({self.source.name!r}, {self.pid})"


class Route:
    """One candidate's route with one attribute set: the Loc-RIB entry of a prefix that one
    candidate has, an element of ``Dest.cands`` otherwise. Shared by the prefixes the
    candidate announced with that set (one per UPDATE at least), so a prefix costs one
    Loc-RIB slot. It stands for its candidate where one is expected (``source``, ``pid``,
    ``tx_id``, ``attrs_for``); ``cand`` is the :class:`Source` or ADD-PATH :class:`Path`."""

    __slots__ = ("cand", "source", "attrs")

    def __init__(self, cand, attrs) -> None:
        self.cand = cand
        self.source = cand.source
        self.attrs = attrs

    @property
    def pid(self) -> int:
        return self.cand.pid

    @property
    def tx_id(self) -> int:
        return self.cand.tx_id

    def attrs_for(self, family, prefix: bytes):
        return self.attrs

    def __repr__(self) -> str:
        return f"Route({self.cand!r})"


def _key_of(cand, prefix: bytes):
    return prefix if type(cand) is not Path else (cand.pid, prefix)


def _lookup(source: Source, family, key):
    """The attribute set ``source`` announced for ``key`` (None: none), from the Loc-RIB."""
    loc = source.locs.get(family)
    if loc is None:
        return None
    if type(key) is tuple:
        pid, p = key
        e = loc.table.get(p)
        if e is None:
            return None
        for r in (e,) if type(e) is Route else e.cands:
            c = r.cand
            if type(c) is Path and c.source is source and c.pid == pid:
                return r.attrs
        return None
    e = loc.table.get(key)
    if e is None:
        return None
    if type(e) is Route:
        return e.attrs if e.cand is source else None
    for r in e.cands:
        if r.cand is source:
            return r.attrs
    return None


class AdjRibIn(Mapping):
    """A source's Adj-RIB-In of one family, read from the Loc-RIB (see :class:`Source`)."""

    __slots__ = ("source", "family")

    def __init__(self, source: Source, family) -> None:
        self.source = source
        self.family = family

    def __len__(self) -> int:
        return self.source.counts.get(self.family, 0)

    def __getitem__(self, key):
        a = _lookup(self.source, self.family, key)
        if a is None:
            raise KeyError(key)
        return a

    def get(self, key, default=None):
        a = _lookup(self.source, self.family, key)
        return default if a is None else a

    def __contains__(self, key) -> bool:
        return _lookup(self.source, self.family, key) is not None

    def __iter__(self) -> Iterator:
        for key, _attrs in self._walk():
            yield key

    def items(self):
        return list(self._walk())

    def _walk(self):
        src = self.source
        loc = src.locs.get(self.family)
        if loc is None or not src.counts.get(self.family):
            return
        for p, e in loc.table.items():
            if type(e) is Route:
                if e.source is src:
                    yield _key_of(e.cand, p), e.attrs
            else:
                for r in e.cands:
                    if r.source is src:
                        yield _key_of(r.cand, p), r.attrs

    def __eq__(self, other) -> bool:
        if isinstance(other, Mapping):
            return dict(self._walk()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"AdjRibIn({dict(self._walk())!r})"


class AdjIn(Mapping):
    """``source.adj_in``: family -> :class:`AdjRibIn`."""

    __slots__ = ("source",)

    def __init__(self, source: Source) -> None:
        self.source = source

    def __getitem__(self, family) -> AdjRibIn:
        if family not in (IPV4_UNICAST, IPV6_UNICAST) and family not in self.source.locs:
            raise KeyError(family)
        return AdjRibIn(self.source, family)

    def __iter__(self):
        fams = [IPV4_UNICAST, IPV6_UNICAST]
        fams += [f for f in self.source.locs if f not in fams]
        return iter(fams)

    def __len__(self) -> int:
        return len(list(iter(self)))


def router_id_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d
