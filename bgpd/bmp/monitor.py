"""What BMP says about the daemon, as data: peers, route state to UPDATEs, resync sequences.

Sans-I/O: nothing here touches a socket or the clock. :class:`~bgpd.bmp.service.BmpService`
feeds these functions the daemon's events and writes what they return to the stations.

Shapes the daemon provides:

* :class:`BmpPeer` for every session that reaches Established (the OPENs as they crossed
  the wire, both ends of the TCP connection, what was negotiated);
* a *tables* object (:class:`Tables`) read during a resync, with ``adj_rib_in(key)``,
  ``loc_rib()`` and optionally ``adj_rib_out(key)``, each an iterable of
  ``(family, nlri_key, attrs)`` (``nlri_key`` is bgpd's prefix key, or ``(path_id, prefix)``
  for a family with ADD-PATH in that direction). They are consumed lazily, between event loop
  turns, so they must tolerate the RIB changing under them: :func:`live_items` does that for a
  dict.
"""

import ipaddress
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from bgpd.wire.constants import AFI_IPV4, IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.messages import Open
from bgpd.wire.packer import end_of_rib, pack_announce, pack_withdraw

from . import codec
from .codec import (
    FLAG_F,
    FLAG_L,
    FLAG_O,
    GLOBAL_INSTANCE,
    INFO_TABLE_NAME,
    LOC_RIB_INSTANCE,
    PeerHeader,
)

LOC_RIB_TABLE_NAME = "global"  # RFC 9069 §5.4: the default Loc-RIB instance's name


@dataclass(slots=True)
class BmpPeer:
    """An Established session, as Peer Up and the per-peer header describe it.

    ``key`` is the daemon's handle for the peer (what it passes to every later call).
    ``sent_open``/``received_open`` are the full OPEN messages (or bodies) as they crossed
    the wire. ``as4`` is the negotiated four-octet AS capability (the A flag when false);
    ``add_path_rx``/``add_path_tx`` are the families whose received/sent NLRI carry path ids;
    ``extended_message`` whether UPDATEs may exceed 4096 octets on this session.
    """

    key: Hashable
    address: str
    asn: int
    router_id: str
    local_address: str | None
    local_port: int
    remote_port: int
    sent_open: bytes
    received_open: bytes
    as4: bool = True
    add_path_rx: frozenset = frozenset()
    add_path_tx: frozenset = frozenset()
    extended_message: bool = False
    peer_type: int = GLOBAL_INSTANCE
    distinguisher: bytes = bytes(8)
    header: PeerHeader = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.header = PeerHeader(
            self.peer_type,
            self.address,
            self.asn,
            self.router_id,
            as4=self.as4,
            distinguisher=self.distinguisher,
        )

    @classmethod
    def from_session(
        cls,
        key,
        neg,
        *,
        address: str,
        local_address: str | None,
        local_port: int,
        remote_port: int,
        sent_open: bytes | None = None,
        received_open: bytes | None = None,
    ) -> "BmpPeer":
        """From a :class:`bgpd.fsm.Negotiated` (read by attribute): the OPENs default to the
        negotiated ones re-encoded when the raw messages are not at hand."""
        ctx = neg.context
        return cls(
            key=key,
            address=address,
            asn=neg.peer_asn,
            router_id=neg.peer_router_id,
            local_address=local_address,
            local_port=local_port,
            remote_port=remote_port,
            sent_open=sent_open if sent_open is not None else neg.local_open.encode(),
            received_open=received_open if received_open is not None else neg.peer_open.encode(),
            as4=ctx.as4,
            add_path_rx=ctx.add_path_rx,
            add_path_tx=ctx.add_path_tx,
            extended_message=ctx.extended_message,
        )

    def context(self, direction: str = "in") -> Context:
        """The codec context of UPDATEs in ``direction`` as the peer would see them."""
        fams = self.add_path_rx if direction == "in" else self.add_path_tx
        return Context(as4=self.as4, add_path_tx=fams, extended_message=self.extended_message)

    def up_message(self, now: float) -> bytes:
        return codec.peer_up(
            self.header,
            now,
            self.local_address,
            self.local_port,
            self.remote_port,
            self.sent_open,
            self.received_open,
        )


class Tables(Protocol):
    """What a resync reads (see the module docstring)."""

    def adj_rib_in(self, key) -> Iterable: ...

    def loc_rib(self) -> Iterable: ...


@dataclass(slots=True)
class LocalRib:
    """The Loc-RIB instance peer of RFC 9069: this speaker's AS and router ID."""

    asn: int
    router_id: str
    families: tuple = (IPV4_UNICAST, IPV6_UNICAST)
    table_name: str = LOC_RIB_TABLE_NAME
    filtered: bool = False  # the F flag: not every Loc-RIB route is sent
    header: PeerHeader = field(init=False, repr=False)
    open_message: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.header = PeerHeader(LOC_RIB_INSTANCE, None, self.asn, self.router_id, as4=True)
        from bgpd.wire.capabilities import FourOctetAS, Multiprotocol

        # RFC 9069 §5.2: a fabricated OPEN with the four-octet AS capability and the families.
        caps = tuple(Multiprotocol(afi, safi) for afi, safi in self.families) + (
            FourOctetAS(self.asn),
        )
        self.open_message = Open(
            asn=self.asn, hold_time=0, router_id=self.router_id, capabilities=caps
        ).encode()

    @property
    def flags(self) -> int:
        return FLAG_F if self.filtered else 0

    @property
    def self_next_hop(self) -> dict:
        """The next hop shown for routes that have none (local origins): this router."""
        return {4: ipaddress.IPv4Address(self.router_id).packed, 16: bytes(16)}

    def up_message(self, now: float) -> bytes:
        info = [(INFO_TABLE_NAME, self.table_name)]
        return codec.peer_up(
            self.header, now, None, 0, 0, self.open_message, self.open_message, info, self.flags
        )

    def down_message(self, now: float) -> bytes:
        data = codec.tlv(INFO_TABLE_NAME, self.table_name.encode())
        return codec.peer_down(self.header, now, codec.DOWN_LOCAL_TLV, data, self.flags)


# --- route state to UPDATE messages --------------------------------------------------------


_ZERO_NH = {4: bytes(4), 16: bytes(16)}


def updates_for_groups(family, groups: dict, withdrawn, ctx: Context, self_next_hop=None):
    """:func:`updates_for` from prefixes already grouped: ``{attrs: [nlri_key]}``."""
    out = pack_withdraw(family, withdrawn, ctx) if withdrawn else []
    for attrs, keys in groups.items():
        if attrs.next_hop is None:
            nh = (self_next_hop or _ZERO_NH)[4 if family[0] == AFI_IPV4 else 16]
            attrs = attrs.with_next_hop(nh)
        out += pack_announce(family, attrs, keys, ctx)
    return out


def updates_for(family, changes: Iterable, ctx: Context, self_next_hop=None) -> list[bytes]:
    """UPDATE messages for ``[(nlri_key, attrs or None)]``: announcements grouped by attribute
    set (one packing per set), withdrawals for None. Routes without a next hop (local
    origins) get ``self_next_hop`` (``{4: ipv4, 16: ipv6}`` octets; the Loc-RIB uses the
    router ID and ``::``), else the unspecified address."""
    groups: dict = {}
    withdrawn = []
    for key, attrs in changes:
        if attrs is None:
            withdrawn.append(key)
        else:
            g = groups.get(attrs)
            if g is None:
                groups[attrs] = [key]
            else:
                g.append(key)
    return updates_for_groups(family, groups, withdrawn, ctx, self_next_hop)


def route_batches(items: Iterable, batch: int) -> Iterator[tuple]:
    """``(family, [(nlri_key, attrs)])`` runs of at most ``batch`` routes of one family."""
    cur_fam = None
    cur: list = []
    for family, key, attrs in items:
        if family != cur_fam or len(cur) >= batch:
            if cur:
                yield cur_fam, cur
            cur_fam = family
            cur = []
        cur.append((key, attrs))
    if cur:
        yield cur_fam, cur


def live_items(table: dict) -> Iterator:
    """``(key, value)`` of a dict that may change between two ``next()`` calls: the keys are
    copied once (fast, in C), each value looked up when its turn comes; keys gone by then are
    skipped (their withdrawal already went out live)."""
    for key in list(table):
        value = table.get(key)
        if value is not None:
            yield key, value


# --- a resync ---------------------------------------------------------------------------------


def resync(
    peers: list[BmpPeer],
    tables,
    local: LocalRib | None,
    now_fn,
    *,
    adj_rib_in: bool = True,
    adj_rib_out: bool = False,
    batch: int = 2048,
    still_up=lambda peer: True,
) -> Iterator[bytes]:
    """BMP Route Monitoring messages re-creating every monitored table: each peer's
    Adj-RIB-In (pre-policy, as the tables give it), its Adj-RIB-Out (post-policy, RFC 8671)
    when asked, then the Loc-RIB (RFC 9069), each followed by an End-of-RIB per family.

    Yields one chunk per ``batch`` routes. ``still_up(peer)`` is asked before each chunk: a
    peer that went down (or came up again, with a new Peer Up) since the resync began gets
    nothing more from it. ``now_fn()`` gives each chunk's timestamp.
    """
    for peer in peers:
        if adj_rib_in:
            yield from _table(
                peer.header,
                tables.adj_rib_in(peer.key),
                peer.context("in"),
                0,
                now_fn,
                batch,
                lambda p=peer: still_up(p),
            )
        if adj_rib_out:
            src = getattr(tables, "adj_rib_out", None)
            items = src(peer.key) if src is not None else None
            if items is not None:
                yield from _table(
                    peer.header,
                    items,
                    peer.context("out"),
                    FLAG_O | FLAG_L,
                    now_fn,
                    batch,
                    lambda p=peer: still_up(p),
                )
    if local is not None:
        yield from _table(
            local.header,
            tables.loc_rib(),
            Context(as4=True),
            local.flags,
            now_fn,
            batch,
            lambda: True,
            families=local.families,
            self_nh=local.self_next_hop,
        )


def _table(
    hdr, items, ctx, flags, now_fn, batch, alive, families=(), self_nh=None
) -> Iterator[bytes]:
    seen = set(families)
    if items is None:
        items = ()
    for family, routes in route_batches(items, batch):
        if not alive():
            return
        seen.add(family)
        ups = updates_for(family, routes, ctx, self_nh)
        if ups:
            yield codec.route_monitoring_many(hdr, now_fn(), ups, flags)
    if not alive():
        return
    eors = [end_of_rib(f) for f in sorted(seen)]
    if eors:
        yield codec.route_monitoring_many(hdr, now_fn(), eors, flags)


__all__ = [
    "BmpPeer",
    "LocalRib",
    "Tables",
    "live_items",
    "resync",
    "route_batches",
    "updates_for",
]
