"""Graceful restart (RFC 4724, RFC 8538) as explicit state with deadlines.

Two roles:
- **Helper** (receiving speaker, RFC 4724 §4.2), per peer: :class:`HelperState`. When a
  GR-capable peer's session ends without a hard reset, its routes are kept, marked stale
  (fresh routes win over them), for the restart time it advertised; when it returns they
  wait for its End-of-RIB per family, at most ``stale_routes_time``; a family it no longer
  preserves forwarding for, or no GR at all, is flushed at once.
- **Restarting** (ours, RFC 4724 §4.1): :class:`RestartState`. Selection and export are
  deferred until every neighbor we wait for sent End-of-RIB, or ``selection_deferral``
  runs out; neighbors without GR or restarting themselves are not waited for.

One End-of-RIB tracker serves both and the kernel: :class:`FibWait` holds the FIB's sweep
of what a previous run left installed until the initial convergence (End-of-RIB from every
expected neighbor, our restart over and the restarting neighbors it did not wait for back,
or the sweep timeout).

Which NOTIFICATION ends a session gracefully is the table :data:`HARD_RESET` (RFC 8538).
"""

from dataclasses import dataclass, field

import structlog

from bgpd.wire.constants import CEASE_HARD_RESET, ERR_CEASE, FAMILY_NAMES

from . import actions as act

log = structlog.get_logger("bgpd.rde")

# RFC 8538 §3-§5: with the N bit in both OPENs, a session that ends with a NOTIFICATION
# still counts as a graceful restart of the peer (routes kept as stale), except for the
# NOTIFICATIONs below, which are a hard reset (routes flushed). Without the N bit no
# NOTIFICATION is graceful (RFC 4724 §4.2 covers sessions that end without one).
HARD_RESET = frozenset({(ERR_CEASE, CEASE_HARD_RESET)})

RESTARTING = "restarting"  # the peer's session is down; its routes are kept as stale
REFRESHING = "refreshing"  # the peer is back; its stale routes wait for its End-of-RIB


def graceful_end(notification, n_bit: bool) -> bool:
    """Whether a session that ended with ``notification`` (None: without one) keeps the
    peer's routes as stale; ``n_bit``: both sides advertised RFC 8538's N bit."""
    if notification is None:
        return True
    if not n_bit:
        return False
    return (notification.code, notification.subcode) not in HARD_RESET


class HelperState:
    """The helper side for one peer: its capability (while it matters), the state
    (None, :data:`RESTARTING`, :data:`REFRESHING`) and which timer runs."""

    __slots__ = ("cap", "state", "timer")

    def __init__(self) -> None:
        self.cap = None
        self.state: str | None = None
        self.timer: str | None = None  # "restart" or "stale routes"


@dataclass
class RestartState:
    """Our own restart: ``start`` is "restart" or "cold" (None: graceful restart off)."""

    restarting: bool = False
    start: str | None = None
    reason: str | None = None
    waiting: set = field(default_factory=set)  # addresses whose End-of-RIB we wait for
    deferral_end: float | None = None


@dataclass
class FibWait:
    """The kernel FIB's wait for the initial convergence (see the module docstring)."""

    active: bool = False
    expected: set = field(default_factory=set)  # addresses whose End-of-RIB it waits for
    done: set = field(default_factory=set)
    owed: set = field(default_factory=set)  # restarting neighbors our restart did not wait for
    converged: str | None = None  # the reason, once converged
    timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class PeerDown:
    """How a peer's session ended: ``was_established``; the NOTIFICATION sent or received
    (None: none); ``deliberate``: we shut it down ourselves (nothing to wait for)."""

    was_established: bool = False
    notification: object = None
    deliberate: bool = False


class GracefulRestart:
    """Both roles over one RIB and one set of timers; methods return actions."""

    def __init__(self, rib, timers, cfg=None) -> None:
        self.rib = rib
        self.timers = timers
        self.cfg = cfg  # the graceful_restart config section, or None
        self.ours = RestartState()
        self.fib = FibWait()
        self.wants_drain = False
        # BIRD's recovery locks (bird -R): a neighbor whose session stops (an error, a
        # NOTIFICATION, a shutdown, an Established session lost) is no longer waited for
        self.bird_locks = False

    @property
    def enabled(self) -> bool:
        return self.cfg is not None and self.cfg.enabled

    # --- helper role ------------------------------------------------------------------------

    def retain(self, peer, down: PeerDown, now: float) -> bool:
        """The peer's session went down: keep its routes as stale?"""
        cap = peer.helper.cap
        if not self.enabled or cap is None or not down.was_established or down.deliberate:
            return False
        if not graceful_end(down.notification, bool(self.cfg.notification and cap.notification)):
            return False
        fams = {(a, sf) for a, sf, _f in cap.families}
        src = peer.source
        kept = self.rib.mark_stale(src, fams)
        for f, loc in self.rib.loc.items():
            if f not in fams:
                loc.flush(src)
        peer.helper.state = RESTARTING
        self._arm(peer, "restart", now + float(cap.restart_time))
        log.info(
            "graceful restart: keeping routes as stale",
            peer=peer.address,
            routes=kept,
            restart_time=cap.restart_time,
        )
        return True

    def returned(self, peer, neg, now: float) -> list:
        """The peer's session is up again: what happens to its stale routes; note its cap."""
        out: list = []
        cap = neg.graceful_restart if self.enabled else None
        peer.helper.cap = cap
        ours = self.ours
        if ours.restarting and peer.address in ours.waiting and (cap is None or cap.restarting):
            # RFC 4724 §4.1: do not wait for End-of-RIB from peers that do not do graceful
            # restart or are restarting themselves (they wait for ours).
            ours.waiting.discard(peer.address)
            if cap is not None and cap.restarting:
                self.fib.owed.add(peer.address)
            if not ours.waiting:
                out += self.end_restart("End-of-RIB from every neighbor")
        src = peer.source
        if not src.stale:
            self.clear(peer)
            return out
        self._disarm(peer)
        if cap is None:
            swept = self.rib.sweep_stale(src)
            log.info(
                "graceful restart: neighbor returned without it, flushing",
                peer=peer.address,
                routes=swept,
            )
            peer.helper.state = None
            return out
        keep = {(a, sf) for a, sf, f in cap.families if f}
        gone = [f for f in src.stale if f not in keep or f not in neg.families]
        if gone:
            swept = self.rib.sweep_stale(src, gone)
            log.info(
                "graceful restart: forwarding state not kept, flushing",
                peer=peer.address,
                families=[FAMILY_NAMES.get(f, str(f)) for f in gone],
                routes=swept,
            )
        if src.stale:
            peer.helper.state = REFRESHING
            self._arm(peer, "stale routes", now + float(self.cfg.stale_routes_time))
        else:
            peer.helper.state = None
        return out

    def end_of_rib(self, peer, fam) -> list:
        """End-of-RIB from ``peer`` for ``fam``: sweep its stale routes; maybe end our
        restart, or the FIB's wait."""
        out: list = []
        peer.eor.add(fam)
        src = peer.source
        if fam in src.stale:
            swept = self.rib.sweep_stale(src, [fam])
            log.info(
                "graceful restart: End-of-RIB, stale routes swept",
                peer=peer.address,
                family=FAMILY_NAMES.get(fam, str(fam)),
                routes=swept,
            )
            if not src.stale:
                self._disarm(peer)
                peer.helper.state = None
        if not peer.end_of_rib_complete():
            return out
        addr = peer.address
        ours, fib = self.ours, self.fib
        if ours.restarting and addr in ours.waiting:
            ours.waiting.discard(addr)
            if not ours.waiting:
                out += self.end_restart("End-of-RIB from every neighbor")
        if fib.active and fib.converged is None:
            if addr in fib.expected:
                fib.done.add(addr)
                if fib.expected <= fib.done:
                    out += self.fib_converged("End-of-RIB from every neighbor")
            if addr in fib.owed:
                fib.owed.discard(addr)
                if not fib.owed and not ours.restarting:
                    out += self.fib_converged("graceful restart: End-of-RIB from every neighbor")
        return out

    def expire(self, peer, now: float) -> list:
        """The restart or stale-routes timer of ``peer`` ran out: flush what is stale."""
        which = peer.helper.timer
        peer.helper.timer = None
        src = peer.source
        swept = self.rib.sweep_stale(src)
        peer.helper.state = None
        log.info(
            "graceful restart: timer expired, flushing stale routes",
            peer=peer.address,
            timer=which,
            routes=swept,
        )
        if peer.negotiated is None:
            self.rib.flush(src)
            src.paths.clear()
            peer.clear_filtered()
        self.rib.commit()
        self.wants_drain = True
        if peer.dynamic and peer.negotiated is None:
            return [act.RemovePeer(peer, 3, "graceful restart timer expired")]
        return []

    def clear(self, peer) -> None:
        self._disarm(peer)
        peer.helper.state = None
        peer.source.stale.clear()

    def _arm(self, peer, which: str, when: float) -> None:
        peer.helper.timer = which
        self.timers.set(("gr", peer), when)

    def _disarm(self, peer) -> None:
        peer.helper.timer = None
        self.timers.cancel(("gr", peer))

    # --- restarting role --------------------------------------------------------------------

    def set_start(self, restart: bool, reason: str) -> bool:
        """Record whether this start is a restart and why; True when that changed (the
        OPENs then change: the R bit)."""
        ours = self.ours
        changed = restart != ours.restarting
        ours.restarting = restart
        ours.start = "restart" if restart else "cold"
        ours.reason = reason
        return changed

    def stopped(self, peer, down: PeerDown) -> list:
        """``peer``'s session went down during our restart. With :attr:`bird_locks`, as
        BIRD's proto_falling_down releases a protocol's recovery lock, we no longer wait
        for it when the session was stopped rather than merely not connected (a connection
        refused keeps it waited for, as it keeps BIRD's lock)."""
        ours = self.ours
        if not (self.bird_locks and ours.restarting and peer.address in ours.waiting):
            return []
        if not (down.deliberate or down.was_established or down.notification is not None):
            return []
        return self.forget(peer.address, "neighbor stopped")

    def forget(self, address: str, why: str) -> list:
        """Wait no longer for ``address`` (removed, or stopped under :attr:`bird_locks`)."""
        ours = self.ours
        self.fib.expected.discard(address)
        self.fib.owed.discard(address)
        if not ours.restarting or address not in ours.waiting:
            return []
        ours.waiting.discard(address)
        log.info("graceful restart: no longer waiting for End-of-RIB", peer=address, why=why)
        if not ours.waiting:
            return self.end_restart("End-of-RIB from every neighbor")
        return []

    def begin(self, waiting, now: float) -> list:
        """Start deferring: wait for End-of-RIB from ``waiting`` (addresses)."""
        ours = self.ours
        if not ours.restarting:
            return []
        ours.waiting = set(waiting)
        delay = float(self.cfg.selection_deferral)
        ours.deferral_end = now + delay
        self.timers.set("deferral", ours.deferral_end)
        if not ours.waiting:
            return self.end_restart("no neighbors to wait for")
        return []

    def end_restart(self, reason: str) -> list:
        """Our restart is over: select, install, send our routes and End-of-RIB, sweep."""
        ours = self.ours
        if not ours.restarting:
            return []
        ours.restarting = False
        ours.waiting.clear()
        ours.deferral_end = None
        self.timers.cancel("deferral")
        log.info("graceful restart: restart complete", reason=reason)
        self.wants_drain = True
        out: list = [act.RestartDone(reason)]
        if not self.fib.owed:
            out += self.fib_converged(f"graceful restart: {reason}")
        return out

    # --- the FIB's wait ---------------------------------------------------------------------

    def wait_for_fib(self, expected, timeout: float, now: float) -> list:
        """The kernel installs routes and sweeps after the initial convergence: wait for
        End-of-RIB from ``expected`` (addresses), at most ``timeout`` seconds."""
        fib = self.fib
        fib.active = True
        fib.expected = set(expected)
        if not fib.expected:
            return self.fib_converged("no neighbors to wait for")
        self.timers.set("fib", now + timeout)
        fib.timeout = timeout
        return []

    def fib_converged(self, reason: str) -> list:
        fib = self.fib
        if not fib.active or fib.converged is not None:
            return []
        fib.converged = reason
        self.timers.cancel("fib")
        return [act.FibConverged(reason)]

    @property
    def fib_waiting(self) -> bool:
        return self.fib.active and self.fib.converged is None

    # --- read side --------------------------------------------------------------------------

    def in_progress(self, peers) -> bool:
        """Our restart, or a neighbor's, is still being waited for."""
        return self.ours.restarting or any(p.helper.state for p in peers)

    def status(self, peers, now: float) -> dict:
        ours = self.ours
        return {
            "enabled": self.enabled,
            "start": ours.start,
            "start_reason": ours.reason,
            "restarting": ours.restarting,
            "waiting_for_eor": sorted(ours.waiting),
            "deferral_remaining": (
                max(0.0, ours.deferral_end - now) if ours.deferral_end else None
            ),
            "neighbors": {
                p.address: {"state": p.helper.state, "stale_routes": p.stale_count()}
                for p in peers
                if p.helper.state
            },
        }
