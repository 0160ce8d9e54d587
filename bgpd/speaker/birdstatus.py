"""The running daemon as BIRD's control socket shows it: a :class:`~bgpd.birdctl.snapshot.Snapshot`.

``bgpd-bird`` answers ``show status``, ``show protocols [all]`` and ``show route ...`` from a
snapshot taken once per command (bgpd/birdctl). This module builds it from the speaker:

* **status**: router id, start and last reconfiguration times, BIRD's graceful-restart
  recovery (``0024``: protocols still holding it, the ``graceful restart wait`` timer);
* **protocols**, in BIRD's creation order with BIRD's names (:class:`ProtocolTracks`): the
  state word (``up``, ``start``, ``down``, ``wait``), the ``since`` time, the BGP state and
  BIRD's last-error classes and texts, and for ``show protocols all`` the filters' names,
  route counts, capabilities, session flags, timers and GR lines;
* **routes**: every network of the family's Loc-RIB with each path as BIRD prints it
  (``via GW on IFACE``, ``dev IFACE``, ``blackhole``...; the protocol name, preference, BGP
  attributes) and, asked per protocol, whether that protocol's export filter takes it.

Nothing heavy is done for a command that does not need it: the route list is an iterable
that builds routes as the formatter walks it (:class:`RouteList`), a single network is found
by a dictionary lookup, the route counts of ``show protocols all`` are one pass over the
table made on first use (:class:`_Counts`), and the export verdicts of a route are computed
only when ``show route export|noexport|preexport P`` asks for P (:class:`_Exports`).

Route times: BIRD prints when each route last changed; bgpd keeps the time each network of
the Loc-RIB last changed (:class:`RouteTimes`, a Loc-RIB listener), and every path of the
network shows it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import time
from datetime import datetime

from bgpd.bird import bgp
from bgpd.bird.translate import REJECT
from bgpd.birdctl.snapshot import (
    AsPathSegment,
    BgpAttrs,
    BgpErrorClass,
    BgpInfo,
    GracefulRestartStatus,
    MemoryUsage,
    Protocol,
    Route,
    Snapshot,
    Status,
    Timer,
)
from bgpd.fsm import State
from bgpd.kernel.routes import (
    AF_INET,
    AF_INET6,
    RTN_BLACKHOLE,
    RTN_PROHIBIT,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    Unresolved,
)
from bgpd.rib.table import Dest
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import AddPath, GracefulRestart, LongLivedGR
from bgpd.wire.constants import (
    AFI_IPV4,
    AFI_IPV6,
    AS_SET,
    CAP_ENHANCED_ROUTE_REFRESH,
    CAP_EXTENDED_MESSAGE,
    CAP_FOUR_OCTET_AS,
    CAP_ROUTE_REFRESH,
    IPV4_UNICAST,
    IPV6_UNICAST,
)
from bgpd.wire.prefix import addr_to_str

# the FSM's states in BIRD's order (bgp_state_names: the info column shows the highest of
# the two connections)
_STATE_ORDER = {
    State.IDLE: 0,
    State.CONNECT: 1,
    State.ACTIVE: 2,
    State.OPENSENT: 3,
    State.OPENCONFIRM: 4,
    State.ESTABLISHED: 5,
}
_STATE_WORDS = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
_DESTS = {RTN_BLACKHOLE: "blackhole", RTN_UNREACHABLE: "unreachable", RTN_PROHIBIT: "prohibited"}
_ERRNO = re.compile(r"\[Errno (\d+)\]")
# BIRD's BE_MAN_DOWN (shut down by a command): no text, and no connection error shows
# through it (birdctl's BgpErrorClass.MAN_DOWN equals NONE, so it is kept apart here)
MAN_DOWN = (BgpErrorClass.NONE, "man-down")


def wall(mono: float, now_mono: float | None = None, now_wall: float | None = None) -> datetime:
    """A ``time.monotonic()`` instant as local wall-clock time."""
    m = time.monotonic() if now_mono is None else now_mono
    w = time.time() if now_wall is None else now_wall
    return datetime.fromtimestamp(w - (m - mono))


def socket_error(text: str | None) -> tuple[BgpErrorClass, str] | None:
    """BIRD's ``Socket: <strerror>`` for one of the session's connection errors (its
    ``last_error`` text), or None when the text is not one."""
    if not text:
        return None
    if text.startswith("connection refused"):
        return BgpErrorClass.SOCKET, os.strerror(111)
    if text.startswith("connect to") and "timed out" in text:
        return BgpErrorClass.SOCKET, os.strerror(110)
    if text.startswith(("connect to", "connection lost")):
        m = _ERRNO.search(text)
        if m:
            return BgpErrorClass.SOCKET, os.strerror(int(m.group(1)))
        return BgpErrorClass.SOCKET, "Connection closed"
    if text.startswith("connection closed by peer"):
        return BgpErrorClass.SOCKET, "Connection closed"
    return None


# --------------------------------------------------------------------------------------
# protocols: BIRD's list, states and last errors
# --------------------------------------------------------------------------------------


class Track:
    """What bgpd keeps of one BIRD protocol beyond its configuration: when its state last
    changed, its last error (BIRD's class and code), whether a command disabled it, the
    message of the last enable/disable/restart, and import counters."""

    __slots__ = (
        "name",
        "kind",
        "since",
        "disabled",
        "message",
        "error",
        "error_seen",
        "imp_received",
        "imp_filtered",
        "wd_received",
        "skipped",
    )

    def __init__(self, name: str, kind: str, disabled: bool, now: float) -> None:
        self.name = name
        self.kind = kind
        self.since = now  # monotonic
        self.disabled = disabled
        self.message: str | None = None
        # (BgpErrorClass, text) of the last error, as BIRD's bgp_store_error keeps it
        self.error: tuple[BgpErrorClass, str] = (BgpErrorClass.NONE, "")
        self.error_seen: str | None = None  # the session's last_error when error was set
        self.imp_received = 0
        self.imp_filtered = 0
        self.wd_received = 0
        self.skipped: str | None = None  # why bgpd does not run this protocol

    def changed(self, now: float) -> None:
        self.since = now


class ProtocolTracks:
    """BIRD's protocol list: creation order, names and :class:`Track` per protocol.

    :meth:`sync` follows a (re)configuration as BIRD's ``protos_commit`` does: protocols
    that keep running keep their place; BIRD frees and re-creates a protocol that is down
    (``proto_reconfigure`` restarts it whatever changed) and one whose options changed, and
    a re-created protocol goes to the end of the list: first those that were down, then the
    new ones, then the restarted ones (re-created once their shutdown is over).
    """

    def __init__(self) -> None:
        self.tracks: dict[str, Track] = {}
        self.first_of_kind: dict[str, Track] = {}  # kernel1, static1, direct1 by kind

    def sync(self, extras, now: float, restarted=()) -> None:
        old = self.tracks
        infos = {p.name: p for p in extras.protocols}
        kept: dict[str, Track] = {}
        were_down: list[str] = []
        later: list[str] = []
        for name, t in old.items():
            info = infos.get(name)
            if info is None or info.kind != t.kind:
                continue  # removed
            if t.disabled:
                were_down.append(name)
            elif name in restarted or info.disabled:
                later.append(name)  # its options changed, or the file disables it
            else:
                kept[name] = t
        added = [p.name for p in extras.protocols if p.name not in old]
        new = dict(kept)
        for name in (*were_down, *added, *later):
            info = infos[name]
            new[name] = Track(name, info.kind, info.disabled, now)
        for name, t in new.items():
            t.skipped = extras.skipped.get(name)
        self.tracks = new
        self.first_of_kind = {}
        for t in new.values():
            self.first_of_kind.setdefault(t.kind, t)

    def __getitem__(self, name: str) -> Track:
        return self.tracks[name]

    def get(self, name: str) -> Track | None:
        return self.tracks.get(name)

    def __iter__(self):
        return iter(self.tracks.values())


# --------------------------------------------------------------------------------------
# route times
# --------------------------------------------------------------------------------------


class RouteTimes:
    """A Loc-RIB listener: the wall-clock time (whole seconds) each network last changed;
    how many networks each source's route is the primary of (``K preferred``, kept as
    the decisions change); a generation that moves with every change."""

    def __init__(self, locs: dict) -> None:
        self.locs = locs
        self.times: dict = {f: {} for f in locs}
        self.preferred: dict = {f: {} for f in locs}  # family -> source -> networks
        self.generation = 0
        self.default = int(time.time())
        for loc in locs.values():
            loc.listeners.append(self)

    def rib_changed(self, family, touched, locrib) -> None:
        self.generation += 1
        times = self.times[family]
        times.update(dict.fromkeys(touched, int(time.time())))
        table = locrib.table
        preferred = self.preferred[family]
        for p, old in touched.items():
            entry = table.get(p)
            new = (entry.best if type(entry) is Dest else entry) if entry is not None else None
            if new is old:
                continue
            if old is not None:
                src = old.source
                left = preferred.get(src, 0) - 1
                if left > 0:
                    preferred[src] = left
                else:
                    preferred.pop(src, None)
            if new is not None:
                src = new.source
                preferred[src] = preferred.get(src, 0) + 1
        if len(times) > 2 * len(table) + 1024:
            self.times[family] = {p: t for p, t in times.items() if p in table}

    def of(self, family, prefix: bytes) -> int:
        return self.times[family].get(prefix, self.default)

    def close(self) -> None:
        for loc in self.locs.values():
            if self in loc.listeners:
                loc.listeners.remove(self)


# --------------------------------------------------------------------------------------
# the snapshot
# --------------------------------------------------------------------------------------


def _filter_name(f) -> str:
    """nest/filter.c filter_name: ACCEPT (``all``), REJECT (``none``) or the filter's name."""
    if f is None:
        return "ACCEPT"
    if f is REJECT or f == REJECT:
        return "REJECT"
    return getattr(f, "name", None) or "(unnamed)"


class StatusBuilder:
    """Builds a :class:`Snapshot` of a running :class:`~.birdrun.BirdSpeaker`."""

    def __init__(self, speaker) -> None:
        self.sp = speaker
        self.times = RouteTimes(speaker.rde.rib.loc)
        self._exported: tuple | None = None  # (generation, monotonic time, counts)

    def exported_counts(self, ctx) -> dict:
        """id(peer) -> prefixes its export group sends it (``Rde.advertised_counts``)."""
        cached = self._exported
        gen = self.times.generation
        if cached is not None:
            then_gen, then, counts = cached
            big = len(ctx.loc.table) > EXPORT_COUNT_BIG
            if then_gen == gen or (big and ctx.now_m - then < EXPORT_COUNT_EVERY):
                return counts
        counts = {id(p): c for p, c in self.sp.rde.advertised_counts().items()}
        self._exported = (gen, ctx.now_m, counts)
        return counts

    @property
    def setup(self):
        return self.sp.bird

    @property
    def family(self):
        return IPV6_UNICAST if self.setup.ipv6 else IPV4_UNICAST

    def snapshot(self) -> Snapshot:
        sp = self.sp
        setup = self.setup
        now_m, now_w = time.monotonic(), time.time()
        ctx = _Context(self, now_m, now_w)
        status = Status(
            router_id=str(sp.config.router_id),
            last_reboot=datetime.fromtimestamp(sp.started_wall),
            last_reconfiguration=datetime.fromtimestamp(sp.reconfigured_wall),
            graceful_restart=ctx.gr_status(),
            shutting_down=sp.stopping.is_set(),
        )
        protocols = tuple(ctx.protocol(t) for t in sp.tracks)
        return Snapshot(
            status,
            protocols,
            RouteList(ctx),
            memory=_memory(sp),
            ipv6=setup.ipv6,
        )


class _Context:
    """What one snapshot shares: the clock readings, lookups and lazily made counts."""

    def __init__(self, builder: StatusBuilder, now_m: float, now_w: float) -> None:
        self.builder = builder
        self.sp = builder.sp
        self.setup = builder.setup
        self.fam = builder.family
        self.now_m = now_m
        self.now_w = now_w
        self.loc = self.sp.rde.rib.loc[self.fam]
        self._counts: _Counts | None = None
        self._resolved: dict = {}
        self._by_index: dict | None = None

    def dt(self, mono: float) -> datetime:
        return wall(mono, self.now_m, self.now_w)

    @property
    def counts(self) -> _Counts:
        if self._counts is None:
            self._counts = _Counts(self)
        return self._counts

    # --- graceful restart -----------------------------------------------------------------

    @property
    def restarting(self) -> bool:
        return self.sp.rde.gr.ours.restarting

    def gr_status(self) -> GracefulRestartStatus | None:
        ours = self.sp.rde.gr.ours
        if not ours.restarting:
            return None
        left = 0
        if ours.deferral_end is not None:
            left = max(0, math.ceil(ours.deferral_end - self.now_m))
        return GracefulRestartStatus(len(ours.waiting), left, self.setup.extras.gr_wait)

    # --- protocols --------------------------------------------------------------------------

    def neighbor_of(self, name: str):
        ext = self.setup.extras.neighbors.get(name)
        if ext is None or name in self.setup.extras.skipped:
            return None, ext
        return self.sp.neighbors.get(ext.address), ext

    def protocol(self, t: Track) -> Protocol:
        if t.kind == "bgp":
            return self._bgp_protocol(t)
        e = self.setup.extras
        pref = e.preferences.get(t.kind, 0)
        inp, out = "ACCEPT", "REJECT"
        if t.kind == "kernel":
            inp, out = _filter_name(e.kernel_import), _filter_name(e.kernel_export)
        elif t.kind == "static":
            inp = _filter_name(e.static_import)
        elif t.kind == "direct":
            inp = _filter_name(e.direct_import)
        state = "down" if t.disabled else "up"
        gr_waiting = False
        if t.kind == "kernel" and self.restarting and e.kernel_graceful_restart:
            gr_waiting = True  # BIRD defers the kernel's export until the recovery ends
            if state == "up":
                state = "wait"
        return Protocol(
            name=t.name,
            proto=_PROTO_WORDS[t.kind],
            state=state,
            since=self.dt(t.since),
            disabled=t.disabled,
            message=t.message,
            preference=pref,
            input_filter=inp,
            output_filter=out,
            gr_waiting=gr_waiting,
            stats=_Stats(self, t, None),
        )

    def _bgp_protocol(self, t: Track) -> Protocol:
        n, ext = self.neighbor_of(t.name)
        proto = self.setup.protos.get(t.name)
        desc = ext.description if ext is not None else None
        pref = ext.preference if ext is not None else 100
        inp = _filter_name(ext.import_filter if ext is not None else None)
        out = _filter_name(ext.export_filter if ext is not None else REJECT)
        asn = proto.remote_as if proto is not None else 0
        address = ext.address.split("%")[0] if ext is not None else ""
        iface = ext.address.split("%")[1] if ext is not None and "%" in ext.address else None
        message = t.message
        if n is None:
            # not run by bgpd (extras.skipped): shown down, the reason as its message
            return Protocol(
                name=t.name,
                proto="BGP",
                state="down",
                since=self.dt(t.since),
                disabled=True,
                description=desc,
                message=message or (f"not run by bgpd: {t.skipped}" if t.skipped else None),
                preference=pref,
                input_filter=inp,
                output_filter=out,
                bgp=BgpInfo("Down", address, asn, neighbor_iface=iface),
            )
        s = n.session
        ours = self.sp.rde.gr.ours
        gr_pending = self.restarting and n.address in ours.waiting
        gr_waiting = False
        if t.disabled:
            state = "down"
        elif s.established:
            state = "up"
            neg = s.fsm.negotiated
            cap = neg.graceful_restart if neg is not None else None
            gr_on = self.setup.config.graceful_restart is not None
            peer_ready = cap is not None and not cap.restarting
            if self.restarting and gr_on and peer_ready and _gr_able(ext):
                gr_waiting = True  # BIRD's gr_wait: its export waits for the recovery
                state = "wait"
        else:
            state = "start"
        cls, text = self.error_of(t, s)
        info = BgpInfo(
            state=self.bgp_state(n, t),
            neighbor_address=address,
            neighbor_as=n.peer.source.asn if s.established else asn,
            neighbor_iface=iface,
            error_class=cls,
            error_message=text,
            **self._gr_helper(n),
            **(self._session_details(n, ext, proto) if state in ("up", "wait", "feed") else {}),
            **(self._start_timers(n, ext) if state == "start" else {}),
        )
        return Protocol(
            name=t.name,
            proto="BGP",
            state=state,
            since=self.dt(t.since),
            disabled=t.disabled,
            description=desc,
            message=message,
            preference=pref,
            input_filter=inp,
            output_filter=out,
            gr_pending=gr_pending,
            gr_waiting=gr_waiting,
            stats=_Stats(self, t, n),
            bgp=info,
        )

    def bgp_state(self, n, t: Track) -> str:
        """bgp_state_dsc: the higher of the two connections' states; ``Passive`` for an idle
        passive protocol; ``Down`` when the protocol is down."""
        if t.disabled:
            return "Down"
        s = n.session
        best = _STATE_ORDER.get(s.fsm.state, 0)
        if s.other is not None and s.other.fsm is not None:
            best = max(best, _STATE_ORDER.get(s.other.fsm.state, 0))
        connected = s.conn is not None or s.other is not None
        if n.cfg.passive and best <= _STATE_ORDER[State.ACTIVE] and not connected:
            return "Passive"
        if best == _STATE_ORDER[State.ACTIVE] and connected:
            best = _STATE_ORDER[State.CONNECT]  # a connection is being made
        return _STATE_WORDS[best]

    def error_of(self, t: Track, session) -> tuple[BgpErrorClass, str]:
        """BIRD's last error: what the last session end recorded, unless a connection error
        came after it (the session's ``last_error`` changed since)."""
        if session.established:
            return (BgpErrorClass.NONE, "")
        latest = session.last_error
        if latest and latest != t.error_seen:
            sock = socket_error(latest)
            if sock is not None:
                return sock
        if t.error == MAN_DOWN:
            return BgpErrorClass.NONE, ""
        return t.error

    def _gr_helper(self, n) -> dict:
        """``Neighbor graceful restart active`` and its timer: the peer restarts, we keep its
        routes (BIRD's gr_active)."""
        peer = n.peer
        if peer.helper.state is None:
            return {}
        due = self.sp.rde.timers.get(("gr", peer))
        left = max(0, int(due - self.now_m)) if due is not None else None
        return {"gr_active": True, "restart_timer": left}

    def _start_timers(self, n, ext) -> dict:
        fsm = n.session.fsm
        timers = fsm.timers
        out: dict = {}
        now = self.now_m
        if fsm.state == State.IDLE and "idle_hold" in timers:
            began = fsm.stats.last_state_change or now
            total = max(0, round(timers["idle_hold"] - began))
            out["error_wait"] = Timer(max(0, int(timers["idle_hold"] - now)), total)
        elif fsm.state == State.ACTIVE and "connect_retry" in timers and n.session.conn is None:
            total = ext.connect_delay if ext is not None else int(n.cfg.connect_retry)
            out["connect_delay"] = Timer(max(0, int(timers["connect_retry"] - now)), total)
        return out

    def _session_details(self, n, ext, proto) -> dict:
        s = n.session
        neg = s.fsm.negotiated
        if neg is None:
            return {}
        fam = self.fam
        caps = {c.code: c for c in neg.peer_open.capabilities}
        words = []
        if CAP_ROUTE_REFRESH in caps:
            words.append("refresh")
        if CAP_ENHANCED_ROUTE_REFRESH in caps:
            words.append("enhanced-refresh")
        gr = next((c for c in caps.values() if isinstance(c, GracefulRestart)), None)
        if gr is not None:
            able = any((a, sf) == fam for a, sf, _f in gr.families)
            words.append("restart-able" if able else "restart-aware")
        ll = next((c for c in caps.values() if isinstance(c, LongLivedGR)), None)
        if ll is not None:
            able = any((e[0], e[1]) == fam for e in ll.entries)
            words.append("llgr-able" if able else "llgr-aware")
        if CAP_FOUR_OCTET_AS in caps:
            words.append("AS4")
        ap = next((c for c in caps.values() if isinstance(c, AddPath)), None)
        mode = 0
        if ap is not None:
            for a, sf, m in ap.entries:
                if (a, sf) == fam:
                    mode = m
        if mode & 1:
            words.append("add-path-rx")
        if mode & 2:
            words.append("add-path-tx")
        if CAP_EXTENDED_MESSAGE in caps:
            words.append("ext-messages")
        session = ["internal" if neg.ibgp else "external"]
        if proto is not None and proto.effective_multihop:
            session.append("multihop")
        if n.cfg.rr_client:
            session.append("route-reflector")
        if proto is not None and getattr(proto, "rs_client", False):
            session.append("route-server")
        if neg.four_octet_as:
            session.append("AS4")
        if fam in neg.context.add_path_rx:
            session.append("add-path-rx")
        if fam in neg.context.add_path_tx:
            session.append("add-path-tx")
        if getattr(neg.context, "extended_message", False):
            session.append("ext-messages")
        timers = s.fsm.timers
        now = self.now_m
        hold = keep = None
        if neg.hold_time:
            hold = Timer(max(0, int(timers.get("hold", now) - now)), int(neg.hold_time))
            keep = Timer(max(0, int(timers.get("keepalive", now) - now)), int(neg.keepalive))
        limit = None
        if n.cfg.max_prefixes:
            limit = Timer(n.peer.received_count(), n.cfg.max_prefixes.limit)
        return {
            "neighbor_id": neg.peer_router_id,
            "neighbor_caps": tuple(words),
            "session": tuple(session),
            "source_address": s.local_address(),
            "route_limit": limit,
            "hold_timer": hold,
            "keepalive_timer": keep,
        }

    # --- routes -----------------------------------------------------------------------------

    def source_index(self) -> dict:
        """RIB source index -> the BGP neighbor it belongs to."""
        if self._by_index is None:
            self._by_index = {n.peer.source.index: n for n in self.sp.neighbors.values()}
        return self._by_index

    def resolve(self, nh: bytes):
        """The immediate next hop of a BGP next hop: ``(gw text, iface, direct)`` (``direct``:
        on a connected network) or None when it cannot be reached."""
        r = self._resolved.get(nh)
        if r is None and nh not in self._resolved:
            kernel = self.sp.kernel
            r = None
            if kernel is not None:
                af = AF_INET6 if len(nh) == 16 else AF_INET
                res = kernel.state.resolve(af, nh)
                if not isinstance(res, Unresolved) and res:
                    gw, ifx = res[0][0], res[0][1]
                    name = kernel.state.ifname(ifx) or f"if{ifx}"
                    r = (addr_to_str(gw), name, gw == nh)
            self._resolved[nh] = r
        return r

    def kernel_msg(self, prefix: bytes, route):
        """The kernel's own description of a learned kernel route (its ``RouteMsg``)."""
        kernel = self.sp.kernel
        if kernel is None:
            return None
        af = AF_INET6 if self.fam == IPV6_UNICAST else AF_INET
        for m in kernel.state.routes_for(af, prefix):
            if m.metric == route.metric:
                return m
        return None


_PROTO_WORDS = {
    "kernel": "Kernel",
    "device": "Device",
    "direct": "Direct",
    "static": "Static",
    "bgp": "BGP",
}


def _gr_able(ext) -> bool:
    return ext is not None and ext.graceful_restart is True


# a table larger than this has its per-peer export counts made again at most once a
# minute (each count runs the peers' export filters on every route)
EXPORT_COUNT_EVERY = 60.0
EXPORT_COUNT_BIG = 100_000


class _Counts:
    """``Routes: N imported, M exported, K preferred`` of every protocol: imported from
    each source's Adj-RIB-In, preferred kept by :class:`RouteTimes`, exported to BGP
    neighbors by one pass over the table per export group (remembered until the table
    changes; on a table above ``EXPORT_COUNT_BIG`` networks, for ``EXPORT_COUNT_EVERY``
    seconds), to the kernel from the FIB writer."""

    def __init__(self, ctx: _Context) -> None:
        fam = ctx.fam
        builder = ctx.builder
        self.imported: dict = {}
        for src, _n in self._sources(ctx):
            self.imported[id(src)] = len(src.adj_in[fam])
        self.preferred = {id(src): n for src, n in builder.times.preferred[fam].items()}
        self.exported: dict = {}
        if not ctx.restarting:  # bgpd sends nothing until its graceful restart is over
            self.exported = builder.exported_counts(ctx)
        kernel = ctx.sp.kernel
        fib = kernel.fib if kernel is not None else None
        self.kernel_exported = 0
        if fib is not None and not ctx.sp.fib_paused:
            # installed by this run (routes adopted from the previous one not counted)
            self.kernel_exported = len(fib.installed[fam]) - len(fib.unconfirmed[fam])

    @staticmethod
    def _sources(ctx: _Context):
        for n in ctx.sp.neighbors.values():
            yield n.peer.source, n
        if ctx.sp.kernel is not None:
            for src in ctx.sp.kernel.sources:
                yield src, None


class _Stats:
    """A :class:`~bgpd.birdctl.snapshot.RouteStats` read lazily from :class:`_Counts`.

    Import counters are bgpd's own count of the prefixes each neighbor announced and
    withdrew, and of those its import filter rejected; export change counters are not kept
    (zeros)."""

    def __init__(self, ctx: _Context, t: Track, n) -> None:
        self.ctx = ctx
        self.t = t
        self.n = n
        self.filtered = 0

    def _source(self):
        if self.n is not None:
            return self.n.peer.source
        kernel = self.ctx.sp.kernel
        if kernel is None:
            return None
        kind = {"kernel": "kernel", "static": "static", "direct": "connected"}.get(self.t.kind)
        for src in kernel.sources:
            if src.kind == kind:
                return src
        return None

    @property
    def imported(self) -> int:
        src = self._source()
        return self.ctx.counts.imported.get(id(src), 0) if src is not None else 0

    @property
    def preferred(self) -> int:
        src = self._source()
        return self.ctx.counts.preferred.get(id(src), 0) if src is not None else 0

    @property
    def exported(self) -> int:
        if self.n is not None:
            return self.ctx.counts.exported.get(id(self.n.peer), 0)
        if self.t.kind == "kernel":
            return self.ctx.counts.kernel_exported
        return 0

    @property
    def import_updates(self) -> tuple:
        t = self.t
        return (t.imp_received, 0, t.imp_filtered, 0, max(0, t.imp_received - t.imp_filtered))

    @property
    def import_withdraws(self) -> tuple:
        t = self.t
        return (t.wd_received, 0, 0, t.wd_received)

    @property
    def export_updates(self) -> tuple:
        return (0, 0, 0, 0)

    @property
    def export_withdraws(self) -> tuple:
        return (0, 0)


def _memory(sp) -> MemoryUsage:
    """``show memory``: the process's resident size as the total; the routing tables and
    attribute sets estimated from their counts (bgpd's objects are not BIRD's)."""
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = 0
    routes = sum(len(loc.table) for loc in sp.rde.rib.loc.values())
    tables = routes * 120
    attrs = 0
    return MemoryUsage(tables, attrs, 0, max(0, rss - tables), rss)


# --------------------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------------------


def _hash4(prefix: bytes) -> int:
    """BIRD's ip4_hash of a prefix's address (birdctl.show.address_hash), on the bytes."""
    x = int.from_bytes(prefix[1:5].ljust(4, b"\0"), "big")
    x ^= x >> 16
    x ^= (x << 10) & 0xFFFFFFFF
    return x & 0xFFFF


def _hash6(prefix: bytes) -> int:
    v = int.from_bytes(prefix[1:17].ljust(16, b"\0"), "big")
    x = ((v >> 96) ^ (v >> 64) ^ (v >> 32) ^ v) & 0xFFFFFFFF
    return (x ^ (x >> 16) ^ (x >> 8)) & 0xFFFF


class RouteList:
    """The snapshot's routes: an iterable that makes each :class:`Route` as it is walked,
    and :meth:`find` for one network (``show route PREFIX`` / ``for ADDR``)."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx

    # the formatter need not sort: the networks come in BIRD's FIB order already
    fib_ordered = True

    def __iter__(self):
        ctx = self.ctx
        make = ctx_route_maker(ctx)
        items = list(ctx.loc.table.items())
        key = _hash4 if ctx.fam == IPV4_UNICAST else _hash6
        order = sorted(range(len(items)), key=lambda i: (key(items[i][0]), i))
        for seq in order:
            prefix, entry = items[seq]
            r = make(prefix, entry, seq)
            if r is not None:
                yield r

    def __len__(self) -> int:
        return len(self.ctx.loc.table)

    def counts(self) -> tuple[int, int]:
        """(routes, networks) of the table, without making them (``show route count``)."""
        table = self.ctx.loc.table
        several = sum(len(e.cands) - 1 for e in table.values() if type(e) is Dest)
        return len(table) + several, len(table)

    def find(self, network, longest: bool = False) -> Route | None:
        ctx = self.ctx
        table = ctx.loc.table
        make = ctx_route_maker(ctx)
        afi = AFI_IPV6 if ctx.fam == IPV6_UNICAST else AFI_IPV4
        if (network.version == 6) != (afi == AFI_IPV6):
            return None
        if not longest:
            p = pfx.from_network(network)
            entry = table.get(p)
            return make(p, entry, 0) if entry is not None else None
        addr = network.network_address
        for plen in range(network.prefixlen, -1, -1):
            net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
            p = pfx.from_network(net)
            entry = table.get(p)
            if entry is not None:
                return make(p, entry, 0)
        return None


class Path:
    """One path of a network: the fields of :class:`~bgpd.birdctl.snapshot.RoutePath`
    (what the formatters read), in a plain slotted object. A million routes are made for a
    full ``show route``, and a frozen dataclass costs several times more per object."""

    __slots__ = (
        "protocol",
        "since",
        "dest",
        "gateway",
        "iface",
        "nexthops",
        "from_address",
        "preference",
        "source",
        "scope",
        "cast",
        "bgp",
        "extra_attrs",
        "_exports",
    )

    def __init__(
        self,
        protocol,
        since,
        dest,
        gateway,
        iface,
        from_address,
        preference,
        source,
        bgp,
        extra_attrs,
        exports,
    ) -> None:
        self.protocol = protocol
        self.since = since
        self.dest = dest
        self.gateway = gateway
        self.iface = iface
        self.nexthops = ()
        self.from_address = from_address
        self.preference = preference
        self.source = source
        self.scope = "univ"
        self.cast = "unicast"
        self.bgp = bgp
        self.extra_attrs = extra_attrs
        self._exports = exports

    @property
    def exported_to(self):
        e = self._exports
        return _NOWHERE if e is None else _Side(e, True)

    @property
    def export_rejected_by(self):
        e = self._exports
        return _NOWHERE if e is None else _Side(e, False)


class Net:
    """A network and its paths: the fields of :class:`~bgpd.birdctl.snapshot.Route`; the
    ``ipaddress`` object of its prefix is made when first read (``show route count``
    never reads it)."""

    __slots__ = ("raw", "v4", "_prefix", "paths", "sync_error", "seq")

    def __init__(self, raw: bytes, v4: bool, paths, seq: int) -> None:
        self.raw = raw
        self.v4 = v4
        self._prefix = None
        self.paths = paths
        self.sync_error = False
        self.seq = seq

    @property
    def text(self) -> str:
        """The prefix as ``show route`` prints it."""
        raw = self.raw
        if self.v4:
            return socket.inet_ntop(socket.AF_INET, (raw[1:] + ZERO4)[:4]) + f"/{raw[0]}"
        return str(self.prefix)  # ipaddress's spelling, as the formatters use elsewhere

    @property
    def prefix(self):
        p = self._prefix
        if p is None:
            raw = self.raw
            if self.v4:
                addr = int.from_bytes(raw[1:].ljust(4, b"\0"), "big")
                p = ipaddress.IPv4Network((addr, raw[0]))
            else:
                addr = int.from_bytes(raw[1:].ljust(16, b"\0"), "big")
                p = ipaddress.IPv6Network((addr, raw[0]))
            self._prefix = p
        return p


_NOWHERE: frozenset = frozenset()
ZERO4 = bytes(4)


def ctx_route_maker(ctx: _Context):
    """A function ``(prefix, loc entry, seq) -> Net`` for this snapshot."""
    fam = ctx.fam
    v4 = fam[0] == AFI_IPV4
    setup = ctx.setup
    times = ctx.builder.times.times[fam]
    default_time = ctx.builder.times.default
    stamps: dict = {}
    by_index = ctx.source_index()
    extras = setup.extras
    host_prefs = {
        "kernel": extras.preferences.get("kernel", 10),
        "static": extras.preferences.get("static", 200),
        "connected": extras.preferences.get("direct", 240),
    }
    names = {
        "kernel": extras.kernel_name or "kernel1",
        "connected": extras.direct_name or "direct1",
        "static": extras.static_name or "static1",
    }
    neighbor_names: dict = {}
    for name, ext in extras.neighbors.items():
        if name not in extras.skipped:
            neighbor_names[ext.address] = ext

    def make(prefix: bytes, entry, seq: int) -> Net | None:
        stamp = times.get(prefix, default_time)
        since = stamps.get(stamp)
        if since is None:
            since = stamps[stamp] = datetime.fromtimestamp(stamp)
        if type(entry) is Dest:
            best = entry.best
            cands = [best] + [c for c in entry.cands if c is not best]
        else:
            cands = (entry,)
        paths = []
        for c in cands:
            src = c.source
            attrs = c.attrs_for(fam, prefix)
            if attrs is None:
                continue
            pref = attrs.preference
            exports = None if paths else _Exports(ctx, prefix, c, attrs)
            kind = src.kind
            if kind == "bgp":
                n = by_index.get(src.index)
                ext = neighbor_names.get(n.address) if n is not None else None
                if pref is None:
                    pref = ext.preference if ext is not None else src.preference
                path = _bgp_path(ctx, c, prefix, attrs, n, ext, pref, since, exports)
            else:
                hr = src.route_of(fam, prefix) if hasattr(src, "route_of") else None
                if pref is None:
                    pref = host_prefs.get(kind, src.preference)
                name = names.get(kind, kind)
                path = _host_path(ctx, src, prefix, hr, name, pref, since, exports)
            paths.append(path)
        if not paths:
            return None
        return Net(prefix, v4, tuple(paths), seq)

    return make


def bgp_attrs_of(attrs, stale: bool = False, igp_metric=None) -> BgpAttrs:
    from bgpd.api.render import next_hops_text

    path = tuple(AsPathSegment(seg == AS_SET, tuple(asns)) for seg, asns in (attrs.as_path or ()))
    agg = None
    if attrs.aggregator is not None:
        agg = (attrs.aggregator[0], addr_to_str(attrs.aggregator[1]))
    return BgpAttrs(
        origin=attrs.origin,
        as_path=path,
        next_hop=tuple(next_hops_text(attrs.next_hop)) if attrs.next_hop else (),
        med=attrs.med,
        local_pref=attrs.local_pref,
        atomic_aggregate=attrs.atomic_aggregate,
        aggregator=agg,
        communities=tuple((c >> 16, c & 0xFFFF) for c in attrs.communities),
        originator_id=addr_to_str(attrs.originator_id) if attrs.originator_id else None,
        cluster_list=tuple(addr_to_str(c) for c in attrs.cluster_list),
        ext_communities=tuple(int.from_bytes(e, "big") for e in attrs.ext_communities),
        large_communities=tuple(tuple(x) for x in attrs.large_communities),
        stale=stale,
        igp_metric=igp_metric,
    )


def _bgp_path(ctx, c, prefix, attrs, n, ext, pref, since, exports) -> Path:
    src = c.source
    fam = ctx.fam
    key = prefix if not c.pid else (c.pid, prefix)
    stale_keys = src.stale.get(fam)
    stale = bool(stale_keys) and key in stale_keys
    recursive = ext is not None and ext.gateway == "recursive"
    nh = attrs.next_hop
    if nh is not None and len(nh) == 32:
        nh = nh[:16]
    res = ctx.resolve(nh) if nh else None
    igp = None
    if res is None:
        dest, gw, iface = "unreachable", None, None
        if recursive:
            igp = "-"
    else:
        gw, iface, direct = res
        dest = "router"
        if recursive:
            igp = 0 if direct else "?"
    return Path(
        ext.name if ext is not None else (n.address if n is not None else src.name),
        since,
        dest,
        gw,
        iface,
        n.address.split("%")[0] if n is not None else None,
        pref,
        "BGP",
        bgp_attrs_of(attrs, stale, igp),
        (),
        exports,
    )


def _host_path(ctx, src, prefix, hr, name, pref, since, exports) -> Path:
    kind = src.kind
    dest, gw, iface, extra = "device", None, None, ()
    source = {"kernel": "inherit", "connected": "device"}.get(kind, "static")
    if hr is not None:
        iface = hr.interface
        if hr.type != RTN_UNICAST:
            dest = _DESTS.get(hr.type, "unreachable")
            iface = None
        elif hr.gateway:
            dest = "router"
            gw = addr_to_str(hr.gateway)
            if iface is None:
                res = ctx.resolve(hr.gateway)
                iface = res[1] if res is not None else None
        elif kind == "static":
            source = "static-device"
        if kind == "kernel":
            extra = _kernel_attrs(ctx.kernel_msg(prefix, hr), hr)
    return Path(name, since, dest, gw, iface, None, pref, source, None, extra, exports)


RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253


def _kernel_attrs(msg, hr) -> tuple:
    """The ``Kernel.*`` lines of a learned kernel route (BIRD's nl_parse_route): its
    protocol, its metric, and its scope when not the default one (link for a route
    without a gateway, universe otherwise), in attribute order."""
    out = []
    if msg is not None:
        out.append(("Kernel.source", str(msg.protocol)))
    out.append(("Kernel.metric", str(hr.metric)))
    if msg is not None:
        device = msg.type == RTN_UNICAST and not any(h[0] for h in msg.nexthops)
        if msg.scope != (RT_SCOPE_LINK if device else RT_SCOPE_UNIVERSE):
            out.append(("Kernel.scope", str(msg.scope)))
    return tuple(out)


class _Exports:
    """Whether each protocol's export takes a network's primary route, computed per
    protocol when asked (``show route export|noexport|preexport P``): True (exported),
    False (offered, its filter rejects it) or None (not offered: BIRD's import_control veto,
    e.g. a route back to its own neighbor, iBGP to iBGP, the kernel's own routes)."""

    __slots__ = ("ctx", "prefix", "cand", "attrs", "memo")

    def __init__(self, ctx, prefix, cand, attrs) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.cand = cand
        self.attrs = attrs
        self.memo: dict | None = None

    def verdict(self, name: str) -> bool | None:
        memo = self.memo
        if memo is None:
            memo = self.memo = {}
        if name not in memo:
            memo[name] = self._verdict(name)
        return memo[name]

    def _verdict(self, name: str) -> bool | None:
        ctx = self.ctx
        setup = ctx.setup
        src = self.cand.source
        fam = ctx.fam
        prefix = self.prefix
        e = setup.extras
        if name == e.kernel_name:
            if src.kind in ("kernel", "connected"):
                return None  # krt_import_control: its own routes, device routes
            prog = e.kernel_export
            if prog is None:
                return True
            if prog is REJECT or prog == REJECT:
                return False
            return setup.run(prog, setup.view(fam, prefix, self.attrs, src)).accepted
        n, ext = ctx.neighbor_of(name)
        if n is None or not n.session.established:
            return None
        group = n.peer.source.group
        if group is None or src is n.peer.source:
            return None
        xc = group.context
        to = getattr(xc, "to", None)
        prog = getattr(xc, "program", ext.export_filter)
        if to is None:
            return xc(src, self.attrs, prefix, fam) is not None
        frm = setup.frm(src)
        if src.kind == "bgp":
            a = bgp.export_attrs(self.attrs, to, frm)
        else:
            view = setup.view(fam, prefix, self.attrs, src)
            a = bgp.export_attrs(self.attrs, to, None, gw=view.gw, dest=view.dest)
        if a is None:
            return None
        if prog is None:
            return True
        if prog is REJECT or prog == REJECT:
            return False
        return setup.run(prog, setup.view(fam, prefix, a, src)).accepted


class _Side:
    """One of the two sets a :class:`RoutePath` holds (``exported_to``,
    ``export_rejected_by``): membership asks :class:`_Exports`."""

    __slots__ = ("exports", "want")

    def __init__(self, exports: _Exports, want: bool) -> None:
        self.exports = exports
        self.want = want

    def __contains__(self, name) -> bool:
        return self.exports.verdict(name) is self.want

    def __iter__(self):
        return iter(())
