"""The plain-data state the BIRD control socket reports: what the daemon must fill.

Everything here is a frozen dataclass of plain values (strings, ints, datetimes, tuples):
the formatters (:mod:`.show`) turn a :class:`Snapshot` into BIRD 1.6.8's reply lines and know
nothing of the daemon. Times are :class:`datetime.datetime`; naive ones are local time, aware
ones are converted to local time (BIRD prints local time).

Field names follow BIRD's own (``nest/proto.c``, ``proto/bgp/bgp.c``, ``nest/rt-table.c``);
each says which reply line it feeds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BIRD_VERSION = "v0.3.3+birdv1.6.8"  # Calico's fork (sysdep/config.h BIRD_VERSION)

# ``show protocols`` state column (nest/proto.c proto_state_name)
PROTO_STATES = ("up", "start", "down", "feed", "wait", "stop", "flush")
# BGP state words (bgp.c bgp_state_names, plus bgp_state_dsc's "Passive" and "Down")
BGP_STATES = (
    "Idle",
    "Connect",
    "Active",
    "OpenSent",
    "OpenConfirm",
    "Established",
    "Close",
    "Passive",
    "Down",
)


# --------------------------------------------------------------------------------------
# show status
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GracefulRestartStatus:
    """``0024`` lines of ``show status`` while GR recovery (``bird -R``) is active."""

    waiting_protocols: int  # "  Waiting for N protocols to recover"
    wait_remaining: int  # "  Wait timer is R/T": seconds left ...
    wait_total: int = 240  # ... of ``graceful restart wait`` (default 240)


@dataclass(frozen=True, slots=True)
class Status:
    router_id: str  # "Router ID is a.b.c.d" (the v6 daemon also has a dotted-quad id)
    last_reboot: datetime  # process start ("Last reboot on")
    last_reconfiguration: datetime  # last config commit ("Last reconfiguration on")
    graceful_restart: GracefulRestartStatus | None = None
    shutting_down: bool = False  # 0013 "Shutdown in progress"
    reconfiguring: bool = False  # 0013 "Reconfiguration in progress"
    version: str = BIRD_VERSION


# --------------------------------------------------------------------------------------
# show protocols [all]
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteStats:
    """``Routes:`` and ``Route change stats:`` of ``show protocols all`` (nest/protocol.h
    struct proto_stats). Omit (None) while the protocol is down: BIRD prints none then."""

    imported: int = 0
    exported: int = 0
    preferred: int = 0
    filtered: int = 0  # printed only with ``import keep filtered``
    import_updates: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    # received, rejected (invalid), filtered, ignored, accepted
    import_withdraws: tuple[int, int, int, int] = (0, 0, 0, 0)
    # received, rejected (invalid), ignored, accepted
    export_updates: tuple[int, int, int, int] = (0, 0, 0, 0)
    # received, rejected, filtered, accepted
    export_withdraws: tuple[int, int] = (0, 0)
    # received, accepted


@dataclass(frozen=True, slots=True)
class ProtoLimit:
    """``Receive limit:`` / ``Import limit:`` / ``Export limit:`` (proto_show_limit)."""

    limit: int
    action: str = "warn"  # warn | block | restart | disable
    hit: bool = False


class BgpErrorClass(Enum):
    """bgp.c ``bgp_err_classes``: the prefix of the last error text."""

    NONE = ""
    MISC = "Error: "
    SOCKET = "Socket: "
    BGP_RX = "Received: "
    BGP_TX = "BGP Error: "
    AUTO_DOWN = "Automatic shutdown: "
    MAN_DOWN = ""  # shut down by command/config: no text, no "Last error:" line


@dataclass(frozen=True, slots=True)
class Timer:
    """``remaining/total`` seconds, as in ``Hold timer: 200/240``."""

    remaining: int
    total: int


@dataclass(frozen=True, slots=True)
class BgpInfo:
    """The BGP part of a protocol: the info column and the ``BGP state:`` block."""

    state: str  # one of BGP_STATES (bgp_state_dsc: "Down" when the protocol is down,
    #            "Passive" when idle and passive)
    neighbor_address: str
    neighbor_as: int
    neighbor_iface: str | None = None  # printed as "%iface" after the address
    error_class: BgpErrorClass = BgpErrorClass.NONE
    error_message: str = ""  # bgp_last_errmsg (see :func:`bgp_error_text`)
    gr_active: bool = False  # "Neighbor graceful restart active"
    gr_llgr: bool = False  # the restart timer is LLGR's "LL stale timer"
    restart_timer: int | None = None  # seconds left on the GR restart timer ("N/-")
    # while the protocol is in ``start``:
    error_wait: Timer | None = None
    connect_delay: Timer | None = None
    # while the protocol is ``up`` (all but route_limit are then required):
    neighbor_id: str | None = None
    neighbor_caps: tuple[str, ...] = ()  # refresh enhanced-refresh restart-able|restart-aware
    #   llgr-able|llgr-aware AS4 add-path-rx add-path-tx ext-messages (in that order)
    session: tuple[str, ...] = ()  # internal|external multihop route-reflector route-server
    #   AS4 add-path-rx add-path-tx ext-messages (in that order)
    source_address: str | None = None
    route_limit: Timer | None = None  # "Route limit: current/limit" (import limit set)
    hold_timer: Timer | None = None
    keepalive_timer: Timer | None = None

    @property
    def error_text(self) -> str:
        return self.error_class.value + self.error_message


@dataclass(frozen=True, slots=True)
class Protocol:
    """One row of ``show protocols`` and its ``show protocols all`` block."""

    name: str
    proto: str  # BGP | Kernel | Device | Direct | Static | Pipe | ...
    state: str  # one of PROTO_STATES
    since: datetime  # last state change
    table: str = "master"
    info: str = ""  # info column of non-BGP protocols (BGP's is built from ``bgp``)
    disabled: bool = False  # what enable/disable/restart answer depends on
    description: str | None = None
    message: str | None = None  # "Message:" (text given to disable/enable/restart)
    router_id: str | None = None  # per-protocol ``router id``
    preference: int = 0
    input_filter: str = "ACCEPT"  # filter name, ACCEPT, REJECT or (unnamed)
    output_filter: str = "REJECT"
    gr_pending: bool = False  # "GR recovery:" line (printed while GR recovery is active)
    gr_waiting: bool = False
    receive_limit: ProtoLimit | None = None
    import_limit: ProtoLimit | None = None
    export_limit: ProtoLimit | None = None
    keep_filtered: bool = False  # ``import keep filtered``: Routes line shows "N filtered"
    stats: RouteStats | None = None  # None: not printed (BIRD prints none when down)
    bgp: BgpInfo | None = None


# --------------------------------------------------------------------------------------
# show route
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextHop:
    """One next hop of a multipath route: ``\\tvia GW on IFACE weight W``."""

    gateway: str
    iface: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    set: bool  # AS_SET (printed "{ 1 2 }") or AS_SEQUENCE
    asns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BgpAttrs:
    """The BGP path attributes ``show route`` and ``show route all`` print."""

    origin: int | None = 0  # 0 IGP, 1 EGP, 2 Incomplete
    as_path: tuple[AsPathSegment, ...] = ()
    next_hop: tuple[str, ...] = ()  # one address (v4), global [+ link-local] (v6)
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, str] | None = None  # (asn, router id)
    communities: tuple[tuple[int, int], ...] = ()
    originator_id: str | None = None
    cluster_list: tuple[str, ...] = ()
    ext_communities: tuple[int, ...] = ()  # 64-bit values
    large_communities: tuple[tuple[int, int, int], ...] = ()
    # ``(pref[-][s]/metric)``: route suppressed, stale, and the IGP metric of a recursive
    # next hop: None when the next hop is direct (no "/x"), an int, "?" (unknown) or "-"
    # (unresolvable)
    suppressed: bool = False
    stale: bool = False
    igp_metric: int | str | None = None

    def as_path_flat(self) -> tuple[int, ...]:
        return tuple(a for seg in self.as_path for a in seg.asns)

    def origin_as(self) -> int | None:
        """bgp_get_route_info's AS: the last ASN of the path, if its last segment with ASNs
        is a sequence (a trailing AS_SET gives none)."""
        found = None
        for seg in self.as_path:
            if seg.asns:
                found = None if seg.set else seg.asns[-1]
        return found


@dataclass(frozen=True, slots=True)
class RoutePath:
    """One route (rte) of a network: a line of ``show route``."""

    protocol: str  # the protocol that brought it (its ``[name time]``)
    since: datetime  # last modification
    dest: str = "router"  # router | device | blackhole | unreachable | prohibited | multipath
    gateway: str | None = None  # ``via GW on IFACE`` (dest router)
    iface: str | None = None  # dest router or device
    nexthops: tuple[NextHop, ...] = ()  # dest multipath
    from_address: str | None = None  # " from IP" when it differs from the gateway
    preference: int = 0
    source: str = "static"  # ``Type:`` line of show route all: static, inherit, device,
    #   static-device, BGP, pipe, ...
    scope: str = "univ"  # univ | site | link | host | nowhere
    cast: str = "unicast"
    bgp: BgpAttrs | None = None  # the route came from BGP
    extra_attrs: tuple[tuple[str, str], ...] = ()  # other ``show route all`` attribute
    #   lines in order, label and value, e.g. ("Kernel.source", "3"), ("Kernel.metric", "0")
    # ``show route export P`` lists the primary routes whose path has P in exported_to
    # (P's export filter accepts it), ``noexport P`` those with P in export_rejected_by
    # (offered to P, its filter rejects it), ``preexport P`` both. A protocol in neither
    # set is not offered the route at all (BIRD's import_control veto, e.g. a route that
    # cannot be sent to that peer): listed by none of the three.
    exported_to: frozenset[str] = frozenset()
    export_rejected_by: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Route:
    """A network of the table with its routes; ``paths[0]`` is the primary (best) route."""

    prefix: IPNetwork
    paths: tuple[RoutePath, ...]
    sync_error: bool = False  # kernel sync error: " !" instead of " *"
    seq: int = 0  # insertion order of the network into the table (tie-break of the
    #   BIRD listing order among prefixes of equal address hash, see show.fib_order)


# --------------------------------------------------------------------------------------
# show memory, and the whole snapshot
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    """``show memory`` in bytes."""

    routing_tables: int = 0
    route_attributes: int = 0
    roa_tables: int = 0
    protocols: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one BIRD control socket reports: one address family's daemon state.

    ``protocols`` in creation order (config order; protocols added by a reload go last).
    ``routes`` in any order (the formatter lists them in BIRD's table order).
    """

    status: Status
    protocols: tuple[Protocol, ...] = ()
    routes: tuple[Route, ...] = ()
    memory: MemoryUsage = field(default_factory=MemoryUsage)
    tables: tuple[str, ...] = ("master",)
    ipv6: bool = False  # bird6: prefixes/addresses are IPv6, hash order is ip6_hash

    def protocol(self, name: str) -> Protocol | None:
        for p in self.protocols:
            if p.name == name:
                return p
        return None


# --------------------------------------------------------------------------------------
# BGP error texts (proto/bgp/packets.c bgp_msg_table, bgp.c bgp_misc_errors)
# --------------------------------------------------------------------------------------

BGP_ERRORS: dict[tuple[int, int], str] = {
    (1, 0): "Invalid message header",
    (1, 1): "Connection not synchronized",
    (1, 2): "Bad message length",
    (1, 3): "Bad message type",
    (2, 0): "Invalid OPEN message",
    (2, 1): "Unsupported version number",
    (2, 2): "Bad peer AS",
    (2, 3): "Bad BGP identifier",
    (2, 4): "Unsupported optional parameter",
    (2, 5): "Authentication failure",
    (2, 6): "Unacceptable hold time",
    (2, 7): "Required capability missing",
    (2, 8): "No supported AFI/SAFI",
    (3, 0): "Invalid UPDATE message",
    (3, 1): "Malformed attribute list",
    (3, 2): "Unrecognized well-known attribute",
    (3, 3): "Missing mandatory attribute",
    (3, 4): "Invalid attribute flags",
    (3, 5): "Invalid attribute length",
    (3, 6): "Invalid ORIGIN attribute",
    (3, 7): "AS routing loop",
    (3, 8): "Invalid NEXT_HOP attribute",
    (3, 9): "Optional attribute error",
    (3, 10): "Invalid network field",
    (3, 11): "Malformed AS_PATH",
    (4, 0): "Hold timer expired",
    (5, 0): "Finite state machine error",
    (5, 1): "Unexpected message in OpenSent state",
    (5, 2): "Unexpected message in OpenConfirm state",
    (5, 3): "Unexpected message in Established state",
    (6, 0): "Cease",
    (6, 1): "Maximum number of prefixes reached",
    (6, 2): "Administrative shutdown",
    (6, 3): "Peer de-configured",
    (6, 4): "Administrative reset",
    (6, 5): "Connection rejected",
    (6, 6): "Other configuration change",
    (6, 7): "Connection collision resolution",
    (6, 8): "Out of Resources",
    (7, 0): "Invalid ROUTE-REFRESH message",
    (7, 1): "Invalid ROUTE-REFRESH message length",
}

BGP_MISC_ERRORS = (
    "",
    "Neighbor lost",
    "Invalid next hop",
    "Kernel MD5 auth failed",
    "No listening socket",
    "Link down",
    "BFD session down",
    "Graceful restart",
)


def bgp_error_text(code: int, subcode: int) -> str:
    """The message BIRD shows for a NOTIFICATION sent or received (the ``Received: `` and
    ``BGP Error: `` classes; packets.c bgp_error_dsc)."""
    return BGP_ERRORS.get((code, subcode), f"Unknown error {code}.{subcode}")
