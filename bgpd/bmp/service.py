"""The daemon's one entry point to BMP: a callback API that never blocks, and the stations.

The daemon creates one :class:`BmpService` when ``bmp`` stations are configured, calls
:meth:`~BmpService.start` once the event loop runs, and forwards its events:

===============================================  ==============================================
daemon event                                     call
===============================================  ==============================================
a session reaches Established                    ``peer_up(BmpPeer(...))``
an Established session goes down                 ``peer_down(key, notification=..., ...)`` or
                                                 ``peer_down_event(key, SessionDown event)``
UPDATEs read from a peer (raw, before policy)    ``updates_received(key, [raw, ...])``
UPDATEs written to a peer (raw, RFC 8671)        ``updates_sent(key, [raw, ...])``
Loc-RIB best paths changed (after a commit)      ``loc_rib_touched(family, prefixes)`` (lazy,
                                                 read back with ``loc_rib_lookup``; what
                                                 :class:`~bgpd.bmp.rib.LocRibListener` does),
                                                 or eagerly ``loc_rib_changed(family,
                                                 [(prefix, attrs|None)])``
shutdown                                         ``await stop()``
===============================================  ==============================================

Every call returns at once: with no station connected it does nothing at all; otherwise it
encodes the messages once and appends them to each connected station's transport (bounded,
see :mod:`.station`). Statistics Reports are sent every ``stats_interval`` seconds from what
``stats_provider()`` returns. A station that (re)connects gets Initiation, the Peer Ups and a
resync read from ``tables_provider()`` (shapes in :mod:`.monitor`).
"""

import asyncio
import functools
import itertools
import socket
import time
from collections.abc import Callable, Hashable
from operator import is_not

import structlog

from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context

from . import codec
from .codec import FLAG_L, FLAG_O
from .monitor import BmpPeer, LocalRib, resync, updates_for, updates_for_groups
from .station import Station, StationConfig

log = structlog.get_logger("bgpd.bmp")

_LOC_CTX = Context(as4=True)  # RFC 9069 §5.6.1: Loc-RIB UPDATEs use four-octet AS numbers
DRAIN_BATCH = 8192  # Loc-RIB prefixes read back and encoded per event loop turn
# ... and at most one per this many octets of the smallest station buffer (and resync routes
# per chunk likewise), so that a slice stays well under a small ``buffer``: a slice bigger
# than the bound would drop the stream at every try, however fast the collector reads.
OCTETS_PER_ROUTE = 1024


def _guarded(fn):
    """A callback of the daemon's: a bug here is counted and logged, never raised into BGP."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        try:
            return fn(self, *args, **kw)
        except Exception:
            self.errors += 1
            if self.errors <= 10 or self.errors % 1000 == 0:
                log.exception("bmp: internal error", call=fn.__name__, errors=self.errors)
            return None

    return wrapper


class BmpService:
    """All configured BMP stations and what they are told (see the module docstring)."""

    def __init__(
        self,
        stations,
        *,
        router_id: str,
        local_as: int,
        tables_provider: Callable[[], object] | None = None,
        stats_provider: Callable[[], dict] | None = None,
        sys_name: str | None = None,
        sys_descr: str = "bgpd",
        families=(IPV4_UNICAST, IPV6_UNICAST),
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Callable[[], float] = time.time,
        resync_batch: int = 2048,
        loc_rib_lookup: Callable | None = None,
    ) -> None:
        self.configs = [s if isinstance(s, StationConfig) else StationConfig(**s) for s in stations]
        self.router_id = router_id
        self.local_as = local_as
        self.tables_provider = tables_provider
        self.stats_provider = stats_provider
        self.sys_name = sys_name or socket.gethostname()
        self.sys_descr = sys_descr
        self.local = LocalRib(local_as, router_id, tuple(families))
        self.loop = loop
        self.clock = clock
        self.resync_batch = resync_batch
        self.peers: dict[Hashable, BmpPeer] = {}
        self._gen: dict[Hashable, int] = {}  # peer key -> Peer Up count (cancels old resyncs)
        self.stations: list[Station] = []
        self._stats_timer: asyncio.TimerHandle | None = None
        self.errors = 0  # bugs caught in the callbacks (counted and logged, never raised)
        # Lazy Loc-RIB monitoring (loc_rib_touched): prefixes whose best path may have
        # changed, per family, read back with loc_rib_lookup(family, [prefix]) when drained.
        self.loc_rib_lookup = loc_rib_lookup
        self._pending: dict = {f: {} for f in self.local.families}
        self._drain_handle: asyncio.Handle | None = None
        self.loc_rib_drained = 0  # prefixes read back and sent (counter)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        loop = self.loop or asyncio.get_running_loop()
        self.loop = loop
        for cfg in self.configs:
            st = Station(self, cfg, loop)
            self.stations.append(st)
            st.start()
        self._arm_stats()

    def reconfigure(self, stations) -> None:
        """A new station list (reload): stations whose settings are unchanged keep their
        connection; removed ones get Termination and are closed; new ones connect."""
        new = [s if isinstance(s, StationConfig) else StationConfig(**s) for s in stations]
        kept: list[Station] = []
        for st in self.stations:
            if st.cfg in new and all(k.cfg != st.cfg for k in kept):
                kept.append(st)
            else:
                st.close(codec.termination(codec.TERM_ADMIN_CLOSED))
        self.stations = list(kept)
        for cfg in new:
            if all(k.cfg != cfg for k in kept):
                st = Station(self, cfg, self.loop)
                self.stations.append(st)
                if self.loop is not None:
                    st.start()
        self.configs = new
        if self._stats_timer is not None:
            self._stats_timer.cancel()
            self._stats_timer = None
        self._arm_stats()

    async def stop(self, reason: int = codec.TERM_ADMIN_CLOSED, text: str | None = None) -> None:
        """Send Termination to connected stations and close them (waits for up to 1 s)."""
        if self._stats_timer is not None:
            self._stats_timer.cancel()
            self._stats_timer = None
        final = codec.termination(reason, text)
        for st in self.stations:
            st.close(final)
        deadline = time.monotonic() + 1.0
        while any(st.transport is not None for st in self.stations):
            if time.monotonic() > deadline:
                for st in self.stations:
                    if st.transport is not None:
                        st.transport.abort()
                break
            await asyncio.sleep(0.01)

    @property
    def active(self) -> bool:
        """Whether any station is connected (the daemon may skip building arguments if not)."""
        return any(st.state == "up" for st in self.stations)

    def _up(self, want: str) -> list[Station]:
        return [st for st in self.stations if st.state == "up" and getattr(st.cfg, want)]

    # --- a station (re)connects ---------------------------------------------------------------

    def _session_start(self, st: Station) -> tuple[bytes, object]:
        """What a new connection gets first (bytes) and the resync iterator that follows."""
        now = self.clock()
        parts = [codec.initiation(self.sys_name, self.sys_descr)]
        if st.cfg.loc_rib:
            parts.append(self.local.up_message(now))
        peers = list(self.peers.values())
        for p in peers:
            parts.append(p.up_message(now))
        tables = self.tables_provider() if self.tables_provider is not None else None
        if tables is None:
            return b"".join(parts), None
        gens = {p.key: self._gen.get(p.key) for p in peers}

        def still_up(peer: BmpPeer) -> bool:
            return self._gen.get(peer.key) == gens[peer.key] and peer.key in self.peers

        it = resync(
            peers,
            tables,
            self.local if st.cfg.loc_rib else None,
            self.clock,
            adj_rib_in=st.cfg.adj_rib_in,
            adj_rib_out=st.cfg.adj_rib_out,
            batch=_slice(self.resync_batch, st.cfg.buffer),
            still_up=still_up,
        )
        return b"".join(parts), it

    # --- the callback API ---------------------------------------------------------------------

    @_guarded
    def peer_up(self, peer: BmpPeer, now: float | None = None) -> None:
        """A session reached Established."""
        self.peers[peer.key] = peer
        self._gen[peer.key] = self._gen.get(peer.key, 0) + 1
        if not self.active:
            return
        msg = peer.up_message(self.clock() if now is None else now)
        for st in self.stations:
            st.send(msg)

    @_guarded
    def peer_down(
        self,
        key,
        now: float | None = None,
        *,
        notification=None,
        local: bool = True,
        fsm_event=0,
        deconfigured: bool = False,
    ) -> None:
        """An Established session ended (RFC 7854 §4.9 reasons).

        ``notification`` (a full NOTIFICATION message, or an object with ``encode()``) was
        sent by us when ``local``, received from the peer otherwise. Without one: a local
        close gives reason 2 with ``fsm_event`` (RFC 4271 §8.1 event number or name), a
        remote one reason 4; ``deconfigured`` gives reason 5.
        """
        peer = self.peers.pop(key, None)
        if peer is None:
            return
        self._gen[key] = self._gen.get(key, 0) + 1
        if not self.active:
            return
        if deconfigured:
            reason, data = codec.DOWN_DECONFIGURED, b""
        elif notification is not None:
            raw = notification if isinstance(notification, bytes) else notification.encode()
            reason = codec.DOWN_LOCAL_NOTIFICATION if local else codec.DOWN_REMOTE_NOTIFICATION
            data = raw
        elif local:
            reason = codec.DOWN_LOCAL_NO_NOTIFICATION
            data = codec.fsm_event_code(fsm_event).to_bytes(2, "big")
        else:
            reason, data = codec.DOWN_REMOTE_NO_DATA, b""
        msg = codec.peer_down(peer.header, self.clock() if now is None else now, reason, data)
        for st in self.stations:
            st.send(msg)

    @_guarded
    def peer_down_event(self, key, event, now: float | None = None, deconfigured=False) -> None:
        """:meth:`peer_down` from a :class:`bgpd.fsm.SessionDown` (read by attribute)."""
        sent = getattr(event, "notification_sent", None)
        received = getattr(event, "notification_received", None)
        if sent is not None:
            self.peer_down(key, now, notification=sent, local=True, deconfigured=deconfigured)
        elif received is not None:
            self.peer_down(key, now, notification=received, local=False, deconfigured=deconfigured)
        else:
            # no NOTIFICATION either way: the transport went away under us
            self.peer_down(key, now, local=False, deconfigured=deconfigured)

    def update_received(self, key, raw: bytes, now: float | None = None) -> None:
        """One UPDATE as received (full message or body), before any policy."""
        self.updates_received(key, (raw,), now)

    @_guarded
    def updates_received(self, key, raws, now: float | None = None) -> None:
        """UPDATEs as received from ``key`` (full messages or bodies): pre-policy
        Adj-RIB-In Route Monitoring."""
        sts = self._up("adj_rib_in")
        if not sts:
            return
        peer = self.peers.get(key)
        if peer is None:
            return
        t = self.clock() if now is None else now
        msg = codec.route_monitoring_many(peer.header, t, [_full(r) for r in raws])
        for st in sts:
            st.send(msg)

    @_guarded
    def updates_sent(self, key, raws, now: float | None = None) -> None:
        """UPDATEs as written to ``key``: post-policy Adj-RIB-Out Route Monitoring
        (RFC 8671, O and L flags)."""
        sts = self._up("adj_rib_out")
        if not sts:
            return
        peer = self.peers.get(key)
        if peer is None:
            return
        t = self.clock() if now is None else now
        msg = codec.route_monitoring_many(peer.header, t, [_full(r) for r in raws], FLAG_O | FLAG_L)
        for st in sts:
            st.send(msg)

    @_guarded
    def loc_rib_changed(self, family, changes, now: float | None = None) -> None:
        """Best paths changed: ``changes`` is ``[(prefix, attrs or None)]`` (None: no best
        path any more). Encoded as Loc-RIB Route Monitoring (RFC 9069)."""
        sts = self._up("loc_rib")
        if not sts:
            return
        if family not in self.local.families:
            return
        self._send_loc(sts, updates_for(family, changes, _LOC_CTX, self.local.self_next_hop), now)

    @_guarded
    def loc_rib_groups(self, family, groups: dict, withdrawn, now: float | None = None) -> None:
        """:meth:`loc_rib_changed` with the changes already grouped: ``groups`` maps an
        attribute set to the prefixes whose best path now has it, ``withdrawn`` lists the
        prefixes without a best path (what :class:`~bgpd.bmp.rib.LocRibListener` builds)."""
        sts = self._up("loc_rib")
        if not sts or family not in self.local.families:
            return
        ups = updates_for_groups(family, groups, withdrawn, _LOC_CTX, self.local.self_next_hop)
        self._send_loc(sts, ups, now)

    @_guarded
    def loc_rib_touched(self, family, prefixes) -> None:
        """Lazy Loc-RIB monitoring: ``prefixes`` (any iterable of prefix keys; a commit's
        ``touched`` dict will do) may have a new best path. Nothing is read or encoded now:
        the prefixes join a pending set (the latest state wins, RFC 9069 §5.7's state
        compression) that is drained in slices of :data:`DRAIN_BATCH` between event loop
        turns, and only while a Loc-RIB station can take output; each prefix is read back
        with ``loc_rib_lookup(family, [prefix, ...]) -> [attrs or None, ...]``."""
        if self.loc_rib_lookup is None or family not in self._pending:
            return
        if not self._up("loc_rib"):
            return
        self._pending[family].update(
            dict.fromkeys(prefixes) if not isinstance(prefixes, dict) else prefixes
        )
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._drain_handle is None and self.loop is not None and any(self._pending.values()):
            self._drain_handle = self.loop.call_soon(self._drain)

    @_guarded
    def _drain(self) -> None:
        self._drain_handle = None
        sts = self._up("loc_rib")
        if not sts:
            for pend in self._pending.values():
                pend.clear()  # a station that connects gets a resync instead
            return
        if all(st._paused for st in sts):
            return  # Station.resume_writing() schedules the next slice
        budget = _slice(DRAIN_BATCH, min(st.cfg.buffer for st in sts))
        for fam, pend in self._pending.items():
            if not pend or budget <= 0:
                continue
            if len(pend) <= budget:
                keys = list(pend)
                pend.clear()
            else:
                keys = list(itertools.islice(pend, budget))
                for k in keys:
                    del pend[k]
            budget -= len(keys)
            vals = self.loc_rib_lookup(fam, keys)
            groups, withdrawn = _runs(keys, vals)
            self.loc_rib_drained += len(keys)
            ups = updates_for_groups(fam, groups, withdrawn, _LOC_CTX, self.local.self_next_hop)
            self._send_loc(sts, ups, None)
        self._schedule_drain()

    def _send_loc(self, sts, ups, now) -> None:
        if not ups:
            return
        t = self.clock() if now is None else now
        msg = codec.route_monitoring_many(self.local.header, t, ups, self.local.flags)
        for st in sts:
            st.send(msg)

    # --- statistics ---------------------------------------------------------------------------

    def _arm_stats(self) -> None:
        intervals = [c.stats_interval for c in self.configs if c.stats_interval > 0]
        if not intervals or self.stats_provider is None or self.loop is None:
            return
        self._stats_timer = self.loop.call_later(min(intervals), self._on_stats)

    def _on_stats(self) -> None:
        self._stats_timer = None
        try:
            self.send_stats()
        finally:
            self._arm_stats()

    @_guarded
    def send_stats(self, now: float | None = None) -> int:
        """Statistics Reports from ``stats_provider()``: ``{"peers": {key: {name: value}},
        "loc_rib": {name: value}}`` with names from :data:`codec.STATS`. Returns the number
        of reports sent per station."""
        sts = [st for st in self.stations if st.state == "up" and st.cfg.stats_interval > 0]
        if not sts or self.stats_provider is None:
            return 0
        data = self.stats_provider() or {}
        t = self.clock() if now is None else now
        msgs = []
        for key, values in (data.get("peers") or {}).items():
            peer = self.peers.get(key)
            if peer is not None and values:
                msgs.append(codec.statistics_report(peer.header, t, values))
        loc = data.get("loc_rib")
        if loc:
            msgs.append(codec.statistics_report(self.local.header, t, loc, self.local.flags))
        if msgs:
            blob = b"".join(msgs)
            for st in sts:
                st.send(blob)
        return len(msgs)

    def stats(self) -> dict:
        return {
            "peers": len(self.peers),
            "stations": [st.stats() for st in self.stations],
        }


def _slice(most: int, buffer: int) -> int:
    """Routes per resync chunk or Loc-RIB slice for a station buffer of ``buffer`` octets."""
    return max(16, min(most, buffer // OCTETS_PER_ROUTE))


def _runs(keys: list, vals: list) -> tuple[dict, list]:
    """Group ``keys`` by their value (an attribute set, or None: withdrawn). Prefixes touched
    together mostly share their set in runs (one UPDATE's NLRI), so the run boundaries are
    found in C (``is_not`` over neighbours) and only the runs are visited in Python."""
    n = len(vals)
    groups: dict = {}
    withdrawn: list = []
    if not n:
        return groups, withdrawn
    cuts = [0, *itertools.compress(range(1, n), map(is_not, vals[1:], vals[:-1])), n]
    for a, b in zip(cuts, cuts[1:], strict=False):
        v = vals[a]
        if v is None:
            withdrawn += keys[a:b]
            continue
        g = groups.get(v)
        if g is None:
            groups[v] = keys[a:b]
        else:
            g += keys[a:b]
    return groups, withdrawn


def _full(raw: bytes) -> bytes:
    if raw[:1] == b"\xff" and len(raw) >= 19 and raw[:16] == b"\xff" * 16:
        return raw
    return codec._bgp(raw, 2)


__all__ = ["BmpService"]
