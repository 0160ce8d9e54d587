"""Where routes come from: BGP neighbors and local origins, as the RIB sees them."""

import itertools

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

    Each source owns its Adj-RIB-In: ``adj_in[family]`` maps a prefix key (or, when the
    neighbor sends ADD-PATH, ``(path_id, prefix)``) to the interned :class:`AttrSet`.
    A source without ADD-PATH is itself the RIB's candidate for a prefix; with ADD-PATH each
    path is a :class:`Path` pointing back here.
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
        "adj_in",
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
        self.adj_in: dict = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
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

    def attrs_for(self, family, prefix: bytes):
        return self.adj_in[family].get(prefix)

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
        return self.source.adj_in[family].get((self.pid, prefix))

    def __eq__(self, other) -> bool:
        return isinstance(other, Path) and other.source is self.source and other.pid == self.pid

    def __hash__(self) -> int:
        return hash((id(self.source), self.pid))

    def __repr__(self) -> str:
        return f"Path({self.source.name!r}, {self.pid})"


def router_id_int(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d
