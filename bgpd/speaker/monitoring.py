"""Monitoring in the running daemon: the MRT update log, BMP stations and table dumps.

The daemon holds one :class:`Monitor`. While ``mrt.updates`` or ``bmp`` is configured it is
every session's tap (:class:`bgpd.session.peer.SessionTap`): it sees the bytes of every read
before the FSM does, the bytes of every write, and every state change, and forwards them:

=====================================  ======================================================
what the session shows                 where it goes
=====================================  ======================================================
messages read (whole, header and all)  the update log (BGP4MP_ET); UPDATEs of an Established
                                       session to BMP pre-policy route monitoring
messages written                       the update log; UPDATEs to BMP Adj-RIB-Out (RFC 8671)
a state change                         the update log (BGP4MP_STATE_CHANGE_AS4)
OPENs sent and received                kept per connection for BMP's Peer Up
=====================================  ======================================================

The daemon calls :meth:`Monitor.established`, :meth:`Monitor.down` and
:meth:`Monitor.removed` for BMP's Peer Up and Peer Down; the Loc-RIB reaches BMP through a
:class:`~bgpd.bmp.rib.LocRibListener` in every ``LocRib.listeners``; Statistics Reports read
the engine's counters. Nothing here waits: the update log hands batches to a writer thread and
drops (counted) what the disk does not take; a station that does not keep up is dropped and
resynchronised later; a table dump is encoded in slices between event loop turns and written
by a thread.

Messages of one read are logged when read, before the state changes they cause. The UPDATEs
that arrive in the same read as the KEEPALIVE that completes the handshake are held until
BMP's Peer Up has gone out, so that a collector always sees a peer up before its routes.

bgpd.mrt and bgpd.bmp are imported when first needed (a log or a station configured, a table
dump asked for): a daemon that monitors nothing never loads them.
"""

import asyncio
import functools
import time
import weakref
from typing import TYPE_CHECKING

import structlog

from bgpd.fsm import State
from bgpd.wire.constants import OPEN, UPDATE

if TYPE_CHECKING:
    from bgpd.bmp import BmpService
    from bgpd.bmp.rib import LocRibListener
    from bgpd.mrt import MrtPeer, UpdateLogWriter

log = structlog.get_logger("bgpd.monitoring")

ESTABLISHED = State.ESTABLISHED
NEGOTIATED = (State.OPENCONFIRM, State.ESTABLISHED)


def split(data: bytes) -> list[bytes]:
    """Whole BGP messages of ``data`` (a read with the framer's leftover in front, or a write:
    both start on a message boundary)."""
    from bgpd.mrt import MessageSplitter

    return MessageSplitter().feed(data)


class _Wire:
    """What the tap keeps per TCP connection."""

    __slots__ = ("mrt", "negotiated", "sent_open", "received_open", "early")

    def __init__(self, mrt: "MrtPeer") -> None:
        self.mrt = mrt
        self.negotiated = False  # mrt was rebuilt from what the OPENs negotiated
        self.sent_open: bytes | None = None
        self.received_open: bytes | None = None
        self.early: list | None = None  # UPDATEs read with the handshake's last KEEPALIVE


@functools.cache
def _tables_class() -> type:
    """The class of the resync's tables (made once, when BMP is first configured)."""
    from bgpd.bmp.monitor import live_items
    from bgpd.bmp.rib import RibTables

    class _Tables(RibTables):
        """The resync's tables: a neighbor's Adj-RIB-In is what import accepted (after
        policy) plus what it filtered (as received)."""

        def __init__(self, rib, neighbors) -> None:
            super().__init__(rib, {a: n.peer.source for a, n in neighbors.items()})
            self.filtered = {a: n.peer.filtered for a, n in neighbors.items()}

        def adj_rib_in(self, key):
            yield from super().adj_rib_in(key)
            for fam, table in (self.filtered.get(key) or {}).items():
                for k, attrs in live_items(table):
                    yield fam, k, attrs

    return _Tables


class Monitor:
    """The daemon's MRT update log, BMP service and table dumps (see the module docstring)."""

    def __init__(self, speaker) -> None:
        self.sp = speaker
        self.writer: UpdateLogWriter | None = None
        self.bmp: BmpService | None = None
        self._listener: LocRibListener | None = None
        self._wires: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # conn -> _Wire
        self._last: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> MrtPeer
        self._closing: set = set()  # tasks closing replaced writers and services
        self.dump_running: str | None = None
        self.last_dump: dict | None = None
        self.dumps = 0

    # --- configuration ------------------------------------------------------------------------

    @property
    def tap(self) -> "Monitor | None":
        """What sessions get as their tap: None while nothing is monitored (zero cost)."""
        return self if (self.writer is not None or self.bmp is not None) else None

    def start(self) -> None:
        """At start, in the running event loop: open the log, connect to the stations."""
        cfg = self.sp.config
        self.set_mrt(cfg.mrt)
        self.set_bmp(cfg.bmp)

    def apply(self, changed) -> list[str]:
        """Reload: the ``mrt`` and ``bmp`` sections that changed take effect now (a new log
        pattern starts a new file; stations are added or removed, unchanged ones keep their
        connection; a new router ID or AS starts BMP over). Nothing needs a restart."""
        cfg = self.sp.config
        if "mrt" in changed:
            self.set_mrt(cfg.mrt)
        bmp = self.bmp
        identity = bmp is not None and (
            bmp.router_id != str(cfg.router_id) or bmp.local_as != cfg.asn
        )
        if "bmp" in changed or identity:
            self.set_bmp(cfg.bmp, restart=identity)
        return []

    def set_mrt(self, mcfg) -> None:
        old = self.writer
        if old is not None and mcfg is not None and mcfg.updates and _same_log(old, mcfg):
            return
        self.writer = None
        if old is not None:
            self._later(old.aclose())
        if mcfg is not None and mcfg.updates:
            from bgpd.mrt import UpdateLogWriter

            self.writer = UpdateLogWriter.from_config(mcfg, loop=self.sp.loop)
            log.info("mrt update log", pattern=mcfg.updates, rotate=mcfg.rotate)
        self._set_taps()

    def set_bmp(self, stations, restart: bool = False) -> None:
        stations = tuple(stations or ())
        bmp = self.bmp
        if bmp is not None and stations and not restart:
            bmp.reconfigure(stations)
            return
        if bmp is not None:
            self.bmp = None
            self._later(bmp.stop())
            for loc in self.sp.rde.rib.loc.values():
                if self._listener in loc.listeners:
                    loc.listeners.remove(self._listener)
            self._listener = None
        if stations:
            self._start_bmp(stations)
        self._set_taps()

    def _start_bmp(self, stations) -> None:
        from bgpd.bmp import BmpService
        from bgpd.bmp.rib import LocRibListener, RibTables

        sp = self.sp
        rib = sp.rde.rib
        tables = _tables_class()
        bmp = BmpService(
            stations,
            router_id=str(sp.config.router_id),
            local_as=sp.config.asn,
            tables_provider=lambda: tables(rib, sp.neighbors),
            loc_rib_lookup=RibTables(rib, {}).best_many,
            stats_provider=self._bmp_stats,
            loop=sp.loop,
        )
        self.bmp = bmp
        for n in sp.neighbors.values():
            if n.session.established:  # sessions already up: the stations get their Peer Ups
                self.established(n)
        self._listener = LocRibListener(bmp)
        for loc in rib.loc.values():
            loc.listeners.append(self._listener)
        bmp.start()
        log.info("bmp", stations=[s.name for s in bmp.configs])

    def _set_taps(self) -> None:
        tap = self.tap
        for n in self.sp.neighbors.values():
            n.session.tap = tap

    def _later(self, coro) -> None:
        task = self.sp.loop.create_task(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Shutdown: Termination to the stations, the last records to the log file."""
        bmp, writer = self.bmp, self.writer
        self.bmp = self.writer = None
        self._set_taps()
        if bmp is not None:
            await bmp.stop()
        if writer is not None:
            await writer.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # --- the session tap ----------------------------------------------------------------------

    def _wire(self, session, conn) -> _Wire:
        w = self._wires.get(conn)
        if w is None:
            from bgpd.mrt import MrtPeer

            s = session.settings
            local = conn.local() or _local(session)
            neg = conn.fsm.negotiated if conn.fsm.state in NEGOTIATED else None
            if neg is not None:  # monitoring switched on (reload) while the session is up
                mrt = MrtPeer.from_negotiated(neg, session.address, local, s.local_as)
            else:
                mrt = MrtPeer(s.peer_as or 0, s.local_as, session.address, local)
            w = self._wires[conn] = _Wire(mrt)
            w.negotiated = neg is not None
            self._last[session] = mrt
        return w

    def received(self, session, conn, data: bytes) -> None:
        fsm = conn.fsm
        bmp = self.bmp
        if self.writer is None and fsm.state is ESTABLISHED and (bmp is None or not bmp.active):
            return  # nothing to log, no station up: no need to look (the split is stateless)
        msgs = split(fsm.unframed + data)
        if not msgs:
            return
        w = self._wire(session, conn)
        writer = self.writer
        if writer is not None:
            writer.messages(w.mrt, msgs)
        if fsm.state is not ESTABLISHED:  # as it was before this read
            for m in msgs:
                if m[18] == OPEN:
                    w.received_open = m
            if bmp is not None:
                w.early = [m for m in msgs if m[18] == UPDATE] or None
        elif bmp is not None and bmp.active:
            ups = [m for m in msgs if m[18] == UPDATE]
            if ups:
                bmp.updates_received(session.address, ups)

    def sent(self, session, conn, data: bytes) -> None:
        bmp = self.bmp
        if (
            self.writer is None
            and conn.fsm.state is ESTABLISHED
            and (bmp is None or not bmp.active)
        ):
            return
        msgs = split(data)
        if not msgs:
            return
        w = self._wire(session, conn)
        writer = self.writer
        if writer is not None:
            writer.messages(w.mrt, msgs, sent=True)
        if conn.fsm.state is not ESTABLISHED:
            for m in msgs:
                if m[18] == OPEN:
                    w.sent_open = m
        elif bmp is not None and bmp.active:
            ups = [m for m in msgs if m[18] == UPDATE]
            if ups:
                bmp.updates_sent(session.address, ups)

    def state(self, session, conn, old, new) -> None:
        from bgpd.mrt import MrtPeer  # loaded: the tap is set only while something monitors

        if conn is not None:
            w = self._wire(session, conn)
            if new in NEGOTIATED and not w.negotiated and conn.fsm.negotiated is not None:
                w.mrt = MrtPeer.from_negotiated(
                    conn.fsm.negotiated, session.address, w.mrt.local_address, w.mrt.local_as
                )
                w.negotiated = True
                self._last[session] = w.mrt
            mrt = w.mrt
        else:
            mrt = self._last.get(session)
            if mrt is None:
                s = session.settings
                mrt = MrtPeer(s.peer_as or 0, s.local_as, session.address, _local(session))
        if self.writer is not None:
            self.writer.state_change(mrt, old, new)

    # --- session events from the daemon -------------------------------------------------------

    def established(self, n) -> None:
        """BMP Peer Up for a session that reached Established (then the UPDATEs that came
        with its last handshake message)."""
        bmp = self.bmp
        if bmp is None:
            return
        session = n.session
        conn = session.conn
        neg = session.fsm.negotiated
        if conn is None or conn.transport is None or neg is None:
            return
        from bgpd.bmp import BmpPeer

        w = self._wires.get(conn)
        local = conn.transport.get_extra_info("sockname") or (None, 0)
        remote = conn.transport.get_extra_info("peername") or (None, 0)
        try:
            peer = BmpPeer.from_session(
                n.address,
                neg,
                address=n.address,
                local_address=local[0],
                local_port=local[1],
                remote_port=remote[1],
                sent_open=w.sent_open if w is not None else None,
                received_open=w.received_open if w is not None else None,
            )
        except Exception:  # never into BGP
            bmp.errors += 1
            log.exception("bmp: cannot describe the session", peer=n.address)
            return
        bmp.peer_up(peer)
        if w is not None and w.early:
            early, w.early = w.early, None
            if bmp.active:
                bmp.updates_received(n.address, early)

    def down(self, n, event) -> None:
        if self.bmp is not None:
            self.bmp.peer_down_event(n.address, event)

    def removed(self, n, deconfigured: bool) -> None:
        """A neighbor is about to be removed: BMP Peer Down reason 5 when deconfigured."""
        if self.bmp is not None and deconfigured:
            self.bmp.peer_down(n.address, deconfigured=True)

    # --- statistics, dumps, show --------------------------------------------------------------

    def _bmp_stats(self) -> dict:
        """Statistics Reports: per Established neighbor, routes received (type 7, 9:
        accepted and filtered by import) and filtered (type 0); the Loc-RIB's size (8, 10)."""
        sp = self.sp
        bmp = self.bmp
        peers = {}
        for key in list(bmp.peers) if bmp is not None else ():
            n = sp.neighbors.get(key)
            if n is None:
                continue
            p = n.peer
            fams = {
                fam: len(t) + len(p.filtered.get(fam) or ()) for fam, t in p.source.adj_in.items()
            }
            peers[key] = {
                "rejected": p.filtered_count(),
                "adj_rib_in": sum(fams.values()),
                "adj_rib_in_family": fams,
            }
        loc = {fam: len(t.table) for fam, t in sp.rde.rib.loc.items()}
        return {"peers": peers, "loc_rib": {"loc_rib": sum(loc.values()), "loc_rib_family": loc}}

    async def dump_table(self, path: str) -> dict:
        """``bgpd dump table FILE``: a TABLE_DUMP_V2 file of the Loc-RIB and the Adj-RIBs-In,
        encoded between event loop turns and written by a thread; one dump at a time."""
        if self.dump_running is not None:
            raise RuntimeError(f"a table dump to {self.dump_running} is still running")
        from bgpd.mrt import DumpPeer
        from bgpd.mrt import dump_table as write_dump
        from bgpd.mrt.rib import snapshot_from_rib

        sp = self.sp
        neighbors, filtered = [], []
        for n in sp.neighbors.values():
            neg = n.session.fsm.negotiated if n.session.established else None
            rid = neg.peer_router_id if neg is not None else "0.0.0.0"
            asn = neg.peer_asn if neg is not None else n.cfg.asn
            neighbors.append((n.peer.source, DumpPeer(rid, n.address, asn)))
            filtered.append(n.peer.filtered)
        snap = snapshot_from_rib(
            sp.rde.rib,
            neighbors,
            router_id=str(sp.config.router_id),
            local_as=sp.config.asn,
            now=time.time(),
            filtered=filtered,
        )
        self.dump_running = path
        t0 = time.monotonic()
        try:
            stats = await write_dump(path, snap)
        finally:
            self.dump_running = None
        stats = {"file": path, **stats, "seconds": round(time.monotonic() - t0, 3)}
        self.dumps += 1
        self.last_dump = {**stats, "at": time.time()}
        log.info("table dump written", **stats)
        return stats

    def stats(self) -> dict:
        """``show monitoring``: the update log, the stations, the dumps."""
        w = self.writer
        mrt = None
        if w is not None:
            mrt = {"pattern": w.core.pattern, "rotate": w.core.rotate, **w.stats()}
            mrt["files"] = list(w.files[-5:])
        bmp = None
        if self.bmp is not None:
            bmp = {
                **self.bmp.stats(),
                "internal_errors": self.bmp.errors,
                "loc_rib_drained": self.bmp.loc_rib_drained,
            }
        return {
            "mrt": mrt,
            "bmp": bmp,
            "dumps": {"count": self.dumps, "running": self.dump_running, "last": self.last_dump},
        }


def _local(session) -> str | None:
    return session.local_address()


def _same_log(writer: "UpdateLogWriter", mcfg) -> bool:
    core = writer.core
    return (
        core.pattern == mcfg.updates
        and core.rotate == mcfg.rotate
        and core.flush_interval == mcfg.flush_interval
        and writer.max_pending == mcfg.buffer
    )


__all__ = ["Monitor", "split"]
