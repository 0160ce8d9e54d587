"""Reply formatters: a :class:`~.snapshot.Snapshot` to BIRD 1.6.8's reply lines, exactly.

Each ``show_*`` function returns the reply as ``(code, text)`` lines with BIRD's sign
convention (negative: more lines follow; see :mod:`.protocol`); the connection adds the
``DDDD-`` / `` `` / ``DDDD `` prefixes. Sources, for the layout of each line: ``nest/cmds.c``
(status, memory), ``nest/proto.c`` (protocols), ``proto/bgp/bgp.c`` (BGP info and details),
``nest/rt-table.c`` and ``proto/bgp/attrs.c`` (routes), ``nest/rt-attr.c`` and
``nest/a-set.c`` (``show route all`` attributes).

Pure: the current time is passed in as ``now``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .snapshot import (
    BgpAttrs,
    BgpErrorClass,
    MemoryUsage,
    Protocol,
    ProtoLimit,
    Route,
    RoutePath,
    RouteStats,
    Snapshot,
)

Line = tuple[int, str]

TF_LIMIT = timedelta(hours=20)  # conf.c: tf_route = tf_proto = {"%T", "%F", 20*3600}
CLI_MSG_SIZE = 500  # nest/cli.h: ea_show's buffer
DOWN_STATES = ("down", "flush")  # proto_state PS_DOWN
UP_STATES = ("up", "feed", "wait")  # proto_state PS_UP
EXPORT_UP_STATES = ("up", "feed")  # export_state ES_READY / ES_FEEDING
# protocols that have an rt_notify hook (can be asked ``show route export P``)
EXPORTING_PROTOCOLS = frozenset({"BGP", "Kernel", "Pipe", "OSPF", "RIP", "Babel", "RAdv"})


# --------------------------------------------------------------------------------------
# times
# --------------------------------------------------------------------------------------


def _local(t: datetime) -> datetime:
    return t.astimezone() if t.tzinfo is not None else t


def _delta(t: datetime, now: datetime) -> timedelta:
    if (t.tzinfo is None) != (now.tzinfo is None):
        t, now = _local(t).replace(tzinfo=None), _local(now).replace(tzinfo=None)
    return now - t


@functools.lru_cache(maxsize=4096)
def format_since(t: datetime, now: datetime) -> str:
    """The ``since`` column and route times: ``%T`` under 20 hours ago, else ``%F``
    (remembered: a table's routes share few distinct times)."""
    fmt = "%H:%M:%S" if _delta(t, now) < TF_LIMIT else "%Y-%m-%d"
    return _local(t).strftime(fmt)


def format_datetime(t: datetime) -> str:
    """``show status`` times (tf_base ``"%F %T"``)."""
    return _local(t).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------
# show status, show memory
# --------------------------------------------------------------------------------------


def show_status(snap: Snapshot, now: datetime) -> list[Line]:
    st = snap.status
    lines: list[Line] = [
        (-1000, f"BIRD {st.version}"),
        (-1011, f"Router ID is {st.router_id}"),
        (-1011, f"Current server time is {format_datetime(now)}"),
        (-1011, f"Last reboot on {format_datetime(st.last_reboot)}"),
        (-1011, f"Last reconfiguration on {format_datetime(st.last_reconfiguration)}"),
    ]
    gr = st.graceful_restart
    if gr is not None:
        lines += [
            (-24, "Graceful restart recovery in progress"),
            (-24, f"  Waiting for {gr.waiting_protocols} protocols to recover"),
            (-24, f"  Wait timer is {gr.wait_remaining}/{gr.wait_total}"),
        ]
    if st.shutting_down:
        lines.append((13, "Shutdown in progress"))
    elif st.reconfiguring:
        lines.append((13, "Reconfiguration in progress"))
    else:
        lines.append((13, "Daemon is up and running"))
    return lines


def _size(label: str, val: int) -> Line:
    units = " kMG"
    i = 0
    while val >= 10000 and i < 3:
        val = (val + 512) // 1024
        i += 1
    return (-1018, f"{label:<17} {val:4d} {units[i]}B")


def show_memory(mem: MemoryUsage) -> list[Line]:
    return [
        (-1018, "BIRD memory usage"),
        _size("Routing tables:", mem.routing_tables),
        _size("Route attributes:", mem.route_attributes),
        _size("ROA tables:", mem.roa_tables),
        _size("Protocols:", mem.protocols),
        _size("Total:", mem.total),
        (0, ""),
    ]


# --------------------------------------------------------------------------------------
# show protocols [all]
# --------------------------------------------------------------------------------------


def patmatch(pattern: str, name: str) -> bool:
    """BIRD's ``patmatch``: ``*`` any string, ``?`` any character, nothing else special."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.S) is not None


def protocol_info(p: Protocol) -> str:
    """The info column (bgp_get_status for BGP, empty or ``p.info`` for the rest)."""
    b = p.bgp
    if b is None:
        return p.info
    if p.state in DOWN_STATES:
        return b.error_text
    return f"{b.state:<14}{b.error_text}"


def protocol_row(p: Protocol, now: datetime) -> str:
    return (
        f"{p.name:<8} {p.proto:<8} {p.table:<8} {p.state:<5}  "
        f"{format_since(p.since, now):<10}  {protocol_info(p)}"
    )


def _limit(lines: list[Line], lim: ProtoLimit | None, label: str) -> None:
    if lim is None:
        return
    lines.append((-1006, f"  {label:<16}{lim.limit}{' [HIT]' if lim.hit else ''}"))
    lines.append((-1006, f"    Action:       {lim.action}"))


def _stats(lines: list[Line], s: RouteStats, keep_filtered: bool) -> None:
    if keep_filtered:
        lines.append(
            (
                -1006,
                f"  Routes:         {s.imported} imported, {s.filtered} filtered, "
                f"{s.exported} exported, {s.preferred} preferred",
            )
        )
    else:
        lines.append(
            (
                -1006,
                f"  Routes:         {s.imported} imported, {s.exported} exported, "
                f"{s.preferred} preferred",
            )
        )
    iu, iw, eu, ew = s.import_updates, s.import_withdraws, s.export_updates, s.export_withdraws
    lines += [
        (-1006, "  Route change stats:     received   rejected   filtered    ignored   accepted"),
        (-1006, "    Import updates:     " + " ".join(f"{v:10d}" for v in iu)),
        (
            -1006,
            f"    Import withdraws:   {iw[0]:10d} {iw[1]:10d}        --- {iw[2]:10d} {iw[3]:10d}",
        ),
        (
            -1006,
            f"    Export updates:     {eu[0]:10d} {eu[1]:10d} {eu[2]:10d}        --- {eu[3]:10d}",
        ),
        (
            -1006,
            f"    Export withdraws:   {ew[0]:10d}        ---        ---        --- {ew[1]:10d}",
        ),
    ]


def _basic_info(lines: list[Line], p: Protocol, gr_active: bool) -> None:
    """proto_show_basic_info."""
    lines.append((-1006, f"  Preference:     {p.preference}"))
    lines.append((-1006, f"  Input filter:   {p.input_filter}"))
    lines.append((-1006, f"  Output filter:  {p.output_filter}"))
    if gr_active:
        pend = " pending" if p.gr_pending else ""
        wait = " waiting" if p.gr_waiting else ""
        lines.append((-1006, f"  GR recovery:   {pend}{wait}"))
    _limit(lines, p.receive_limit, "Receive limit:")
    _limit(lines, p.import_limit, "Import limit:")
    _limit(lines, p.export_limit, "Export limit:")
    if p.state not in DOWN_STATES:
        _stats(lines, p.stats or RouteStats(), p.keep_filtered)


def _bgp_info(lines: list[Line], p: Protocol, gr_active: bool) -> None:
    """bgp_show_proto_info."""
    b = p.bgp
    assert b is not None
    _basic_info(lines, p, gr_active)
    iface = f"%{b.neighbor_iface}" if b.neighbor_iface else ""
    lines.append((-1006, f"  BGP state:          {b.state}"))
    lines.append((-1006, f"    Neighbor address: {b.neighbor_address}{iface}"))
    lines.append((-1006, f"    Neighbor AS:      {b.neighbor_as}"))
    if b.gr_active:
        lines.append((-1006, "    Neighbor graceful restart active"))
        if b.restart_timer is not None:
            label = "LL stale timer:" if b.gr_llgr else "Restart timer:"
            lines.append((-1006, f"    {label:<15}   {b.restart_timer}/-"))
    if p.state == "start":
        if b.error_wait is not None:
            t = b.error_wait
            lines.append((-1006, f"    Error wait:       {t.remaining}/{t.total}"))
        if b.connect_delay is not None:
            t = b.connect_delay
            lines.append((-1006, f"    Connect delay:    {t.remaining}/{t.total}"))
    elif p.state in UP_STATES:
        caps = "".join(" " + c for c in b.neighbor_caps)
        session = " ".join(b.session)
        lines.append((-1006, f"    Neighbor ID:      {b.neighbor_id}"))
        lines.append((-1006, f"    Neighbor caps:   {caps}"))
        lines.append((-1006, f"    Session:          {session}"))
        lines.append((-1006, f"    Source address:   {b.source_address}"))
        if b.route_limit is not None:
            t = b.route_limit
            lines.append((-1006, f"    Route limit:      {t.remaining}/{t.total}"))
        hold = b.hold_timer
        keep = b.keepalive_timer
        hold_text = f"{hold.remaining}/{hold.total}" if hold else "0/0"
        keep_text = f"{keep.remaining}/{keep.total}" if keep else "0/0"
        lines.append((-1006, f"    Hold timer:       {hold_text}"))
        lines.append((-1006, f"    Keepalive timer:  {keep_text}"))
    if b.error_class not in (BgpErrorClass.NONE, BgpErrorClass.MAN_DOWN):
        lines.append((-1006, f"    Last error:       {b.error_text}"))


def protocol_lines(
    p: Protocol, now: datetime, verbose: bool, first: bool, gr_active: bool
) -> list[Line]:
    """proto_cmd_show: the heading (first protocol only), the row, and the details."""
    lines: list[Line] = []
    if first:
        lines.append((-2002, "name     proto    table    state  since       info"))
    lines.append((-1002, protocol_row(p, now)))
    if verbose:
        if p.description:
            lines.append((-1006, f"  Description:    {p.description}"))
        if p.message:
            lines.append((-1006, f"  Message:        {p.message}"))
        if p.router_id:
            lines.append((-1006, f"  Router ID:      {p.router_id}"))
        if p.bgp is not None:
            _bgp_info(lines, p, gr_active)
        else:
            _basic_info(lines, p, gr_active)
        lines.append((-1006, ""))
    return lines


def select_protocols(
    snap: Snapshot, name: str | None, pattern: str | None
) -> list[Protocol] | Line:
    """The protocols a ``proto_patt`` names, or the error line: ``name`` is a symbol (one
    protocol), ``pattern`` a quoted glob; neither means all."""
    if name is not None:
        p = snap.protocol(name)
        if p is None:
            return (9002, f"{name} is not a protocol")
        return [p]
    return [p for p in snap.protocols if pattern is None or patmatch(pattern, p.name)]


def show_protocols(
    snap: Snapshot,
    now: datetime,
    verbose: bool = False,
    name: str | None = None,
    pattern: str | None = None,
) -> list[Line]:
    sel = select_protocols(snap, name, pattern)
    if isinstance(sel, tuple):
        return [sel]
    if not sel:
        return [(8003, "No protocols match")]
    gr_active = snap.status.graceful_restart is not None
    lines: list[Line] = []
    for i, p in enumerate(sel):
        lines += protocol_lines(p, now, verbose, i == 0, gr_active)
    lines.append((0, ""))
    return lines


# --------------------------------------------------------------------------------------
# show route
# --------------------------------------------------------------------------------------


def address_hash(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """BIRD's 16-bit ``ipa_hash`` (lib/ip.h ip4_hash / ip6_hash)."""
    if addr.version == 4:
        x = int(addr)
        x ^= x >> 16
        x ^= (x << 10) & 0xFFFFFFFF
        return x & 0xFFFF
    v = int(addr)
    x = (v >> 96) ^ (v >> 64) ^ (v >> 32) ^ v
    x &= 0xFFFFFFFF
    return (x ^ (x >> 16) ^ (x >> 8)) & 0xFFFF


def fib_order(routes: Iterable[Route]) -> Iterable[Route]:
    """The order BIRD's FIB iterates (``show route``): by the 16-bit hash of the prefix
    address, then by insertion into the table (``seq``) among equal hashes. A daemon's
    route list that says it comes in that order (``fib_ordered``) is walked as it is."""
    if getattr(routes, "fib_ordered", False):
        return routes
    return sorted(routes, key=lambda r: (address_hash(r.prefix.network_address), r.seq))


def format_via(path: RoutePath) -> str:
    """rt_format_via."""
    d = path.dest
    if d == "router":
        return f"via {path.gateway} on {path.iface}"
    if d == "device":
        return f"dev {path.iface}"
    if d in ("blackhole", "unreachable", "prohibited", "multipath"):
        return d
    return "???"


def bgp_route_info(path: RoutePath) -> str:
    """bgp_get_route_info: `` (pref[-][s][/metric]) [ASnnn<origin>]``."""
    a = path.bgp
    assert a is not None
    out = f" ({path.preference}"
    if a.suppressed:
        out += "-"
    if a.stale:
        out += "s"
    if a.igp_metric is not None:
        out += f"/{a.igp_metric}"
    out += ") ["
    origin_as = a.origin_as()
    if origin_as is not None:
        out += f"AS{origin_as}"
    if a.origin is not None:
        out += "ie?"[a.origin]
    return out + "]"


def route_line(prefix_text: str, path: RoutePath, primary: bool, sync_error: bool, now) -> str:
    """rt_show_rte's ``%-18s %s [%s %s%s]%s%s``."""
    frm = ""
    if path.from_address and path.from_address != path.gateway:
        frm = f" from {path.from_address}"
    mark = (" !" if sync_error else " *") if primary else ""
    info = bgp_route_info(path) if path.bgp is not None else f" ({path.preference})"
    return (
        f"{prefix_text:<18} {format_via(path)} [{path.protocol} "
        f"{format_since(path.since, now)}{frm}]{mark}{info}"
    )


def _int_set_chunks(items: list[str], first_room: int, room: int, sep: str = " ") -> list[str]:
    """int_set_format / ec_set_format cut into lines: an item is started only while the
    text so far is at most ``room - reserve`` long (``buf > end`` stops the line)."""
    chunks: list[str] = []
    cur = ""
    limit = first_room
    i = 0
    while i < len(items):
        if cur and len(cur) > limit:
            chunks.append(cur)
            cur = ""
            limit = room
            continue
        cur += (sep if cur else "") + items[i]
        i += 1
    chunks.append(cur)
    return chunks


def _set_lines(label: str, items: list[str], reserve: int) -> list[Line]:
    """ea_show_int_set: the first line ``\\tLABEL: items``, then ``\\t\\titems`` lines."""
    head = label + ": "
    first_room = CLI_MSG_SIZE - len(head) - reserve
    room = CLI_MSG_SIZE - 1 - reserve
    chunks = _int_set_chunks(items, first_room, room)
    lines = [(-1012, f"\t{head}{chunks[0]}")]
    lines += [(-1012, f"\t\t{c}") for c in chunks[1:]]
    return lines


def format_as_path(a: BgpAttrs) -> str:
    """as_path_format: sequences as ``1 2 3``, sets as ``{ 4 5 }``."""
    parts: list[str] = []
    for seg in a.as_path:
        if seg.set:
            parts.append("{")
            parts += [str(x) for x in seg.asns]
            parts.append("}")
        else:
            parts += [str(x) for x in seg.asns]
    return " ".join(parts)


def format_ext_community(ec: int) -> str:
    """ec_format (nest/a-set.c)."""
    typ = ec >> 48
    kind = {0x0002: "rt", 0x0003: "ro"}.get(typ & 0xF0FF, f"unknown 0x{typ:x}")
    hi = ec >> 56
    if hi in (0x00, 0x40):
        return f"({kind}, {(ec >> 32) & 0xFFFF}, {ec & 0xFFFFFFFF})"
    if hi in (0x01, 0x41):
        key = (ec >> 16) & 0xFFFFFFFF
        return f"({kind}, {ipaddress.IPv4Address(key)}, {ec & 0xFFFF})"
    if hi in (0x02, 0x42):
        return f"({kind}, {(ec >> 16) & 0xFFFFFFFF}, {ec & 0xFFFF})"
    return f"(generic, 0x{(ec >> 32) & 0xFFFFFFFF:x}, 0x{ec & 0xFFFFFFFF:x})"


def bgp_attr_lines(a: BgpAttrs) -> list[Line]:
    """The ``BGP.*`` lines of ``show route all``, in attribute-code order."""
    lines: list[Line] = []
    if a.origin is not None:
        lines.append((-1012, "\tBGP.origin: " + ("IGP", "EGP", "Incomplete")[a.origin]))
    lines.append((-1012, "\tBGP.as_path: " + format_as_path(a)))
    if a.next_hop:
        lines.append((-1012, "\tBGP.next_hop: " + " ".join(a.next_hop)))
    if a.med is not None:
        lines.append((-1012, f"\tBGP.med: {a.med}"))
    if a.local_pref is not None:
        lines.append((-1012, f"\tBGP.local_pref: {a.local_pref}"))
    if a.atomic_aggregate:
        lines.append((-1012, "\tBGP.atomic_aggr: "))
    if a.aggregator is not None:
        lines.append((-1012, f"\tBGP.aggregator: {a.aggregator[1]} AS{a.aggregator[0]}"))
    if a.communities:
        items = [f"({x},{y})" for x, y in a.communities]
        lines += _set_lines("BGP.community", items, 24)
    if a.originator_id is not None:
        lines.append((-1012, f"\tBGP.originator_id: {a.originator_id}"))
    if a.cluster_list:
        lines.append((-1012, "\tBGP.cluster_list: " + " ".join(a.cluster_list)))
    if a.ext_communities:
        items = [format_ext_community(x) for x in a.ext_communities]
        lines += _set_lines("BGP.ext_community", items, 64)
    if a.large_communities:
        items = [f"({x}, {y}, {z})" for x, y, z in a.large_communities]
        lines += _set_lines("BGP.large_community", items, 64)
    return lines


def route_detail_lines(path: RoutePath) -> list[Line]:
    """rta_show: ``\\tType: source cast scope`` and the attributes."""
    lines: list[Line] = [(-1008, f"\tType: {path.source} {path.cast} {path.scope}")]
    if path.bgp is not None:
        lines += bgp_attr_lines(path.bgp)
    lines += [(-1012, f"\t{label}: {value}") for label, value in path.extra_attrs]
    return lines


RoutePredicate = Callable[[Route, RoutePath], bool]


@dataclass(frozen=True, slots=True)
class RouteQuery:
    """The arguments of ``show route`` (nest/config.Y r_args; struct rt_show_data)."""

    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    show_for: bool = False  # ``for ADDR|PREFIX``: longest-prefix match
    table: str = "master"
    where: RoutePredicate | None = None
    verbose: bool = False  # ``all``
    primary_only: bool = False
    filtered: bool = False
    export_mode: str | None = None  # preexport | export | noexport
    export_protocol: str | None = None
    protocol: str | None = None
    stats: int = 0  # 1 ``stats``, 2 ``count``


def _find_net(routes: list[Route], q: RouteQuery) -> Route | None:
    assert q.prefix is not None
    if not q.show_for:
        for r in routes:
            if r.prefix == q.prefix:
                return r
        return None
    best: Route | None = None
    for r in routes:
        if (
            r.prefix.version == q.prefix.version
            and q.prefix.subnet_of(r.prefix)  # type: ignore[arg-type]
            and (best is None or r.prefix.prefixlen > best.prefix.prefixlen)
        ):
            best = r
    return best


@dataclass
class _Counters:
    rt: int = 0
    net: int = 0
    shown: int = 0


def _show_net(snap: Snapshot, net: Route, q: RouteQuery, cnt: _Counters, now) -> list[Line]:
    """rt_show_net."""
    lines: list[Line] = []
    # a daemon's network may carry its prefix's text (``text``): no ipaddress object then
    prefix_text = (getattr(net, "text", None) or str(net.prefix)) if q.stats < 2 else ""
    export_p = snap.protocol(q.export_protocol) if q.export_protocol else None
    if q.export_mode and (export_p is None or export_p.proto not in EXPORTING_PROTOCOLS):
        return lines
    first = True
    passed = False
    for i, path in enumerate(net.paths):
        if q.filtered:  # bgpd keeps no filtered routes
            continue
        cnt.rt += 1
        cnt.net += first
        first = False
        if passed:
            continue
        if q.export_mode:
            passed = True  # BGP and Kernel take the optimal route only
            exported = q.export_protocol in path.exported_to
            rejected = q.export_protocol in path.export_rejected_by
            if q.export_mode == "preexport":
                show = exported or rejected
            elif q.export_mode == "export":
                show = exported
            else:
                show = rejected
            if not show:
                if q.primary_only:
                    break
                continue
        if q.protocol is not None and path.protocol != q.protocol:
            if q.primary_only:
                break
            continue
        if q.where is not None and not q.where(net, path):
            if q.primary_only:
                break
            continue
        cnt.shown += 1
        if q.stats < 2:
            lines.append((-1007, route_line(prefix_text, path, i == 0, net.sync_error, now)))
            for nh in path.nexthops:
                lines.append((-1007, f"\tvia {nh.gateway} on {nh.iface} weight {nh.weight}"))
            if q.verbose:
                lines += route_detail_lines(path)
        prefix_text = ""
        if q.primary_only:
            break
    return lines


def show_route(snap: Snapshot, now: datetime, q: RouteQuery) -> list[Line]:
    """rt_show (the whole table, or one network)."""
    lines: list[Line] = []
    if q.filtered and (q.export_mode or q.primary_only):
        lines.append((0, ""))  # BIRD 1.6.8 sends this premature end line too
    cnt = _Counters()
    if q.prefix is not None:
        # a daemon's route list may find one network without being walked (``find``)
        find = getattr(snap.routes, "find", None)
        if find is not None:
            net = find(q.prefix, q.show_for)
        else:
            net = _find_net(list(snap.routes), q)
        if net is not None:
            lines += _show_net(snap, net, q, cnt, now)
        lines.append((0, "") if cnt.rt else (8001, "Network not in table"))
        return lines
    counts = getattr(snap.routes, "counts", None)
    plain = not (q.where or q.protocol or q.export_mode or q.primary_only or q.filtered)
    if q.stats == 2 and plain and counts is not None and q.table == "master":
        rt, nets = counts()  # a daemon's route list that can count without being walked
        return lines + [(14, f"{rt} of {rt} routes for {nets} networks")]
    export_p = snap.protocol(q.export_protocol) if q.export_protocol else None
    for net in fib_order(snap.routes):
        if export_p is not None and export_p.state not in EXPORT_UP_STATES:
            lines.append((8005, "Protocol is down"))
            return lines
        lines += _show_net(snap, net, q, cnt, now)
    if q.stats:
        lines.append((14, f"{cnt.shown} of {cnt.rt} routes for {cnt.net} networks"))
    else:
        lines.append((0, ""))
    return lines
