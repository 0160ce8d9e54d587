"""The routing half of a neighbor: what the route engine knows and keeps about one peer."""

import ipaddress
import weakref
from typing import Protocol

from bgpd.policy import RouteInfo, chain
from bgpd.rib import Source
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

from .graceful import HelperState


class Link(Protocol):
    """What the engine reads of a peer's session: whether it can take output now, and since
    when it cannot (export groups move a member that is slow for long out of the group)."""

    @property
    def writable(self) -> bool: ...

    @property
    def unwritable_since(self) -> float | None: ...


class _Down:
    writable = False
    unwritable_since = None


DOWN = _Down()  # the link of a peer whose session the daemon has not attached (yet)


class Peer:
    """One BGP neighbor as the route engine sees it.

    ``cfg`` is the neighbor's configuration (frozen); ``source`` its RIB source (its
    Adj-RIB-In); ``link`` its session, read for writability only. ``eor`` holds the
    families whose End-of-RIB the current session sent; ``helper`` the receiving side of
    graceful restart; ``cached_on`` the attribute sets holding an import or export result
    cached under this peer's index (weakly: a set lives as long as routes use it), dropped
    from them when the peer is removed, since they would otherwise keep one more entry per
    peer that ever was.
    """

    __slots__ = (
        "address",
        "cfg",
        "index",
        "source",
        "dynamic",
        "asn_mode",
        "link",
        "import_policy",
        "export_policy",
        "import_key",
        "import_keys",
        "route_info",
        "limit_hit",
        "eor",
        "helper",
        "cached_on",
        "joined",
        "negotiated",
        "local_address",
        "filtered",
        "export_rules",
        "filters",
        "next_hops",
        "__weakref__",
    )

    def __init__(
        self,
        cfg,
        index: int,
        local_as: int,
        *,
        dynamic: bool = False,
        asn_mode: "int | str | None" = None,
        link: Link = DOWN,
        filters=None,
    ) -> None:
        self.address = str(cfg.address)
        self.cfg = cfg
        self.index = index
        self.dynamic = dynamic
        self.asn_mode = asn_mode  # any / internal / external: a dynamic neighbor's template
        self.link = link
        self.source = Source(
            self.address,
            "bgp",
            asn=cfg.asn,
            local_as=local_as,
            address_key=ipaddress.ip_address(self.address).packed,
            rr_client=bool(cfg.rr_client),
            index=index,
        )
        self.import_policy = self.export_policy = None
        self.import_key: tuple = ()
        self.import_keys: list = []  # every import key it has had (one per policy change)
        self.route_info = RouteInfo("bgp", self.address, None, local_as)
        self.limit_hit = False  # over max_prefixes (warned once until it drops below)
        self.eor: set = set()
        self.helper = HelperState()
        self.cached_on: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.joined = False  # a member of an export group (Established)
        self.negotiated = None  # the session's negotiated parameters while Established
        self.local_address: str | None = None  # our end of the session, while Established
        # received but dropped by import (loop checks, policy): family -> {key: attrs}
        self.filtered: dict = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        # filters of its own instead of the config's policies: an object with
        # ``import_policy`` (a Policy-like) and ``export_rules`` (an ExportRules,
        # rde/exports.py): a BIRD configuration's filters (bgpd/speaker/birdmode.py)
        self.filters = filters
        self.export_rules = None
        # our next hop per family on the current session (packed, None: none usable), from
        # the daemon (it knows the interfaces); None: the session's local address
        self.next_hops: dict | None = None

    def __repr__(self) -> str:
        return f"Peer({self.address!r}, index={self.index})"

    def set_policies(self, policies: dict, generation: int) -> None:
        """(Re)build the import and export chains from the compiled ``policies``."""
        cfg = self.cfg
        self.import_key = ("imp", self.index, generation)
        self.import_keys.append(self.import_key)
        f = self.filters
        if f is not None:
            self.import_policy = f.import_policy
            self.export_policy = None
            self.export_rules = f.export_rules
        else:
            imp, exp = cfg.import_policy, cfg.export_policy
            self.import_policy = chain([policies[x] for x in imp]) if imp else None
            self.export_policy = chain([policies[x] for x in exp]) if exp else None
            self.export_rules = None
        self.route_info = RouteInfo("bgp", self.address, None, self.source.local_as)

    @property
    def ibgp(self) -> bool:
        return self.source.ibgp

    # the export-group member protocol (bgpd.rib.export): .source, .writable, .unwritable_since
    @property
    def writable(self) -> bool:
        return self.link.writable

    @property
    def unwritable_since(self) -> float | None:
        return self.link.unwritable_since

    def accepted_count(self) -> int:
        """Routes in the Adj-RIB-In that import accepted (candidates in the Loc-RIB)."""
        return sum(len(t) for t in self.source.adj_in.values())

    def filtered_count(self) -> int:
        return sum(len(t) for t in self.filtered.values())

    def received_count(self) -> int:
        """Everything the peer announced and did not withdraw: accepted and filtered."""
        return self.accepted_count() + self.filtered_count()

    def clear_filtered(self) -> None:
        for t in self.filtered.values():
            t.clear()

    def stale_count(self) -> int:
        return sum(len(v) for v in self.source.stale.values())

    def end_of_rib_complete(self) -> bool:
        """End-of-RIB received for every family of the current session."""
        neg = self.negotiated
        return neg is not None and self.eor >= set(neg.families)
