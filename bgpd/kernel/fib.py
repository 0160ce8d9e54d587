"""The FIB writer: the Loc-RIB's best routes into the kernel's table, in batches.

:class:`FibWriter` is a Loc-RIB listener. ``rib_changed`` only records the touched prefixes
in a pending set (it runs inside the BGP update path, so it must be cheap); an asyncio task
drains the set a batch at a time: for each prefix it asks :func:`~.translate.translate` for
the kernel route we want, compares it with what it installed, and sends the difference as
one datagram of netlink requests (``RTM_NEWROUTE`` with ``NLM_F_CREATE|NLM_F_REPLACE``, so a
change never leaves a gap between a delete and an add; ``RTM_DELROUTE`` for what is gone).
Between batches it yields to the event loop; ``stats["max_batch_ms"]`` says for how long at
most the loop was held.

Its only channel to the kernel is ``channel`` (:class:`~.netlink.RouteSocket`, or an
in-memory fake in the unit tests): ``apply(requests) -> failures`` and
``dump_routes(table, protocol)``.

Start, restart and errors:

* on :meth:`start` it dumps the routes carrying our protocol id in our table and adopts them
  as installed but *unconfirmed*; a prefix the RIB then produces identically costs nothing,
  and the ones nobody confirms are removed by the sweep that
  :meth:`initial_convergence_done` triggers (a restart, even after ``kill -9``, never
  flaps the forwarding of routes that come back);
* ``persist=False`` removes every route of ours in :meth:`close`;
* the kernel refusing a request (ENETUNREACH, ENODEV for a vanished interface...) leaves the
  prefix not installed with the kernel's reason, and it is retried when the host's
  interfaces, addresses or routes change; EEXIST is retried once as delete-then-add;
  ENOBUFS, or any loss of answers, makes it resync: dump our routes again, take them as the
  truth and redo every prefix (idempotent: only differences are sent).
"""

from __future__ import annotations

import asyncio
import errno
import os
import time

import structlog

from bgpd.rib import Dest, Route

from .netlink import RTM_DELROUTE, RTM_NEWROUTE, RTPROT_KERNEL, RouteMsg
from .routes import (
    AF_INET,
    AF_OF_AFI,
    FAMILY_OF_AF,
    RTN_UNICAST,
    FibSettings,
    KernelRoute,
    Unresolved,
)
from .translate import kernel_metric, resolve_next_hop, translate

log = structlog.get_logger("bgpd.kernel")

BATCH = 500  # prefixes looked at per batch (one sendmsg): ~3.5 ms of loop time for 500 adds
KERNEL_OWNS = "the kernel has its own route to this prefix (proto kernel, same metric)"


class CachedResolver:
    """Memoises :meth:`HostState.resolve` per address and interface names per name; the FIB
    writer rechecks every cached answer when the host's state changes."""

    def __init__(self, state) -> None:
        self.state = state
        self.addrs: dict = {}  # (af, addr) -> result
        self.names: dict = {}  # name -> ifindex or 0

    def resolve(self, af: int, addr: bytes):
        key = (af, addr)
        r = self.addrs.get(key)
        if r is None:
            r = self.addrs[key] = self.state.resolve(af, addr)
        return r

    def ifindex(self, name: str) -> int:
        r = self.names.get(name)
        if r is None:
            r = self.names[name] = self.state.ifindex(name) or 0
        return r

    def recheck(self) -> tuple[set, set]:
        """Resolve everything again; ``(changed address keys, changed names)``."""
        changed = set()
        for key, old in self.addrs.items():
            new = self.state.resolve(*key)
            if new != old:
                self.addrs[key] = new
                changed.add(key)
        names = set()
        for name, old in self.names.items():
            new = self.state.ifindex(name) or 0
            if new != old:
                self.names[name] = new
                names.add(name)
        return changed, names


def route_from_msg(m: RouteMsg) -> KernelRoute:
    return KernelRoute(m.family, m.dst, m.type, m.nexthops, m.metric, m.table, m.protocol)


class FibWriter:
    """Installs the Loc-RIB's best routes; see the module docstring."""

    def __init__(
        self,
        locs: dict,
        settings: FibSettings,
        resolver_state,
        channel,
        *,
        persist: bool = True,
        export=None,
        batch: int = BATCH,
    ) -> None:
        self.locs = locs  # family -> LocRib
        self.settings = settings
        self.state = resolver_state
        self.res = CachedResolver(resolver_state)
        self.channel = channel
        self.persist = persist
        # callable(family, prefix, multipath candidates, desired KernelRoute) -> KernelRoute
        # (as is, or with another metric or next hops) | None (not installed), or None: the
        # kernel export filter (kernel.import policies; BIRD's kernel protocol export filter)
        self.export = export
        self.batch = batch
        fams = list(locs)
        self.pending: dict = {f: set() for f in fams}
        self.installed: dict = {f: {} for f in fams}  # family -> prefix -> KernelRoute
        self.unconfirmed: dict = {f: set() for f in fams}  # adopted, not yet seen in the RIB
        self.strays: list = []  # routes of ours at another metric: swept with the unconfirmed
        self.reasons: dict = {f: {} for f in fams}  # family -> prefix -> why not installed
        self.failed: dict = {f: {} for f in fams}  # family -> prefix -> (desired, reason)
        self.exclusive: dict = {f: set() for f in fams}  # EEXIST: next time delete, then add
        self.deps: dict = {f: {} for f in fams}  # family -> prefix -> (dependency keys)
        self.users: dict = {}  # (af, address or interface name) -> {prefix}
        self.via: dict = {}  # next hops (tuple) -> number of installed routes using them
        self._memo: dict = {}  # IPv4 BGP next hop -> (next hops or Unresolved, deps)
        self.converged = False
        self.held = False  # hold(): nothing is written until release()
        self.on_overwrite = None  # callable([(af, dst, metric)]): we replaced another's route
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._recheck = False
        self._resync_needed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = {
            "batches": 0,
            "added": 0,
            "removed": 0,
            "failed": 0,
            "resyncs": 0,
            "adopted": 0,
            "swept": 0,
            "max_batch_ms": 0.0,
            "last_batch_ms": 0.0,
            "busy_ms": 0.0,
        }

    # --- the Loc-RIB listener ----------------------------------------------------------------

    def rib_changed(self, family, touched, locrib) -> None:
        pend = self.pending.get(family)
        if pend is None:
            return
        pend.update(touched)
        self._kick()

    def _kick(self) -> None:
        if not self._wake.is_set():
            self._wake.set()
            self._idle.clear()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt the routes of ours already in the kernel, listen to the Loc-RIB, start
        draining (everything already in the Loc-RIB is pending)."""
        for loc in self.locs.values():
            loc.listeners.append(self)
        await self._resync(initial=True)
        for fam, loc in self.locs.items():
            self.pending[fam].update(loc.table)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bgpd-fib")
        self._kick()

    def initial_convergence_done(self) -> None:
        """The RIB has what it will have after a (re)start: remove the adopted routes nobody
        confirmed. Idempotent."""
        if self.converged:
            return
        self.converged = True
        n = sum(len(u) for u in self.unconfirmed.values()) + len(self.strays)
        log.info("kernel: initial convergence, sweeping unconfirmed routes", routes=n)
        for fam, keys in self.unconfirmed.items():
            self.pending[fam].update(keys)
        self._kick()

    async def close(self) -> None:
        """Stop draining; with ``persist=False`` remove every route we installed."""
        if self._closed:
            return
        self._closed = True
        for loc in self.locs.values():
            if self in loc.listeners:
                loc.listeners.remove(self)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if not self.persist:
            routes = [r for inst in self.installed.values() for r in inst.values()]
            routes += self.strays
            for i in range(0, len(routes), self.batch):
                chunk = routes[i : i + self.batch]
                try:
                    self.channel.apply([(RTM_DELROUTE, r) for r in chunk])
                except OSError as e:
                    log.warning("kernel: removing routes on exit failed", error=str(e))
                    break
            log.info("kernel: removed our routes (persist: false)", routes=len(routes))
            for inst in self.installed.values():
                inst.clear()
            self.via.clear()
        self.channel.close()

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until nothing is pending (tests and benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # --- host state changes ---------------------------------------------------------------

    def resolver_changed(self, flushed=()) -> None:
        """Interfaces, addresses or other routes changed. ``flushed``: interfaces whose
        routes the kernel removed by itself (a link went down or away, an address went):
        routes of ours through them are no longer installed, whatever we resolve next."""
        if flushed:
            self._forget_via(set(flushed))
        for fam, failed in self.failed.items():
            if failed:
                self.pending[fam].update(failed)
                failed.clear()
        self._recheck = True
        self._kick()

    def host_route_changed(self, af: int, dst: bytes) -> None:
        """Another program's route to ``dst`` came or went: redo ``dst`` (a ``proto kernel``
        route to the same prefix and metric keeps ours out)."""
        fam = FAMILY_OF_AF.get(af)
        loc = self.locs.get(fam)
        if loc is not None and (dst in loc.table or dst in self.installed[fam]):
            self.pending[fam].add(dst)
            self._kick()

    def request_resync(self) -> None:
        """Dump our routes again and redo every prefix (after lost netlink messages)."""
        self._resync_needed = True
        self._kick()

    def _forget_via(self, ifindexes: set) -> None:
        if not any(n and any(h[1] in ifindexes for h in hops) for hops, n in self.via.items()):
            return  # nothing of ours went through them (a pod's interface, say)
        for fam, inst in self.installed.items():
            pend = self.pending[fam]
            for p, r in list(inst.items()):
                if any(h[1] in ifindexes for h in r.nexthops):
                    self._uninstall(fam, p)
                    pend.add(p)

    def route_changed_externally(self, msg: RouteMsg, deleted: bool) -> None:
        """Another program added or removed a route carrying our protocol id in our table."""
        fam = FAMILY_OF_AF.get(msg.family)
        if fam not in self.installed:
            return
        r = route_from_msg(msg)
        inst = self.installed[fam]
        p = r.dst
        if r.metric != kernel_metric(r.family, self.settings.metric):
            if not deleted:
                self.strays.append(r)  # swept by the drain task once converged
                self._kick()
            return
        if deleted:
            if inst.get(p) is not None:
                self._uninstall(fam, p)
        else:
            self._install(fam, p, r)
            if not self.converged:
                self.unconfirmed[fam].add(p)
        self.pending[fam].add(p)
        self._kick()

    # --- what to show ----------------------------------------------------------------------------

    def status(self, family, prefix: bytes) -> str | None:
        """``installed``, ``adopted`` (from a previous run, not confirmed yet), the reason it
        is not installed, or None (nothing for the kernel)."""
        if prefix in self.installed.get(family, ()):
            if prefix in self.unconfirmed[family]:
                return "adopted"
            return "installed"
        return self.reasons.get(family, {}).get(prefix)

    def count(self) -> int:
        return sum(len(x) for x in self.installed.values())

    # --- the drain task --------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while not self._closed:
            if not self._work() and not self._resync_needed and not self._recheck:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            try:
                if self._resync_needed:
                    await self._resync()
                while not self._closed:
                    if self._recheck:
                        self._recheck_deps()
                    if not self._work():
                        break
                    self._batch()
                    await asyncio.sleep(0)
                    if self._resync_needed:
                        break
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    log.warning("kernel: netlink overrun, resyncing", error=str(e))
                else:
                    log.error("kernel: netlink failure, resyncing", error=str(e))
                self._resync_needed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                log.exception("kernel: FIB writer failure")
                self._resync_needed = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _work(self) -> bool:
        if self.held:
            return False
        return any(self.pending.values()) or bool(self.converged and self.strays)

    def hold(self) -> None:
        """Write nothing until :meth:`release`: changes wait in ``pending`` (BIRD's kernel
        protocol with ``graceful restart`` exports nothing until the recovery ends)."""
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._kick()

    def _recheck_deps(self) -> None:
        self._recheck = False
        changed, names = self.res.recheck()
        self._memo.clear()
        users = self.users
        for key in changed:
            ps = users.get(key)
            if ps:
                self.pending[FAMILY_OF_AF[key[0]]].update(ps)
        for name in names:
            for (af, k), ps in users.items():
                if k == name:
                    self.pending[FAMILY_OF_AF[af]].update(ps)
        # forget answers nobody needs any more
        for key in [k for k in self.res.addrs if k not in users]:
            del self.res.addrs[key]

    def _set_deps(self, fam, af: int, p: bytes, new: tuple | None) -> None:
        depmap = self.deps[fam]
        old = depmap.get(p)
        if old == new:
            if new is not None:
                depmap[p] = new  # the same keys: keep the memo's object (an `is` test next time)
            return
        users = self.users
        if old:
            for k in old:
                key = (af, k)
                s = users.get(key)
                if s is not None:
                    s.discard(p)
                    if not s:
                        del users[key]
        if new:
            depmap[p] = new
            for k in new:
                key = (af, k)
                s = users.get(key)
                if s is None:
                    s = users[key] = set()
                s.add(p)
        else:
            del depmap[p]

    def _batch(self) -> None:
        t0 = time.perf_counter()
        requests: list = []
        meta: list = []  # (family, prefix, desired KernelRoute / None: delete / False: skip)
        retries: set = set()  # indexes of adds that follow an EEXIST
        budget = self.batch
        settings = self.settings
        export = self.export
        res = self.res
        state = self.state
        alien_dsts = getattr(state, "dsts", None)
        state_routes = getattr(state, "routes", None)
        memo = self._memo
        set_deps = self._set_deps
        new = tuple.__new__
        for fam, pend in self.pending.items():
            if not pend or budget <= 0:
                continue
            af = AF_OF_AFI[fam[0]]
            table = self.locs[fam].table
            inst = self.installed[fam]
            reasons = self.reasons[fam]
            failed = self.failed[fam]
            unconfirmed = self.unconfirmed[fam]
            exclusive = self.exclusive[fam]
            depmap = self.deps[fam]
            converged = self.converged
            metric = kernel_metric(af, settings.metric)
            ktable = settings.table
            proto = settings.protocol
            fast = export is None and af == AF_INET
            while pend and budget > 0:
                budget -= 1
                p = pend.pop()
                entry = table.get(p)
                if entry is None:
                    desired = deps = None
                elif (
                    fast
                    and type(entry) is Route
                    and entry.cand is entry.source
                    and entry.source.kind == "bgp"
                ):
                    # the common case: one BGP path, an IPv4 next hop; memoised per next hop
                    nh = entry.attrs.next_hop
                    m = memo.get(nh)
                    if m is None:
                        m = memo[nh] = self._memo_entry(af, nh)
                    hops, deps = m
                    if type(hops) is tuple:
                        desired = new(
                            KernelRoute, (af, p, RTN_UNICAST, hops, metric, ktable, proto)
                        )
                    else:
                        desired = hops
                else:
                    cands = entry.multipath if type(entry) is Dest else (entry,)
                    dl: list = []
                    desired = translate(fam, p, cands, res, settings, dl)
                    deps = tuple(dl) if dl else None
                    if export is not None and type(desired) is KernelRoute:
                        desired = export(fam, p, cands, desired)
                if depmap.get(p) is not deps:
                    set_deps(fam, af, p, deps)
                if failed:
                    f = failed.get(p)
                    if f is not None:
                        if f[0] == desired:
                            desired = Unresolved(f[1])
                        else:
                            del failed[p]
                cur = inst.get(p)
                if type(desired) is KernelRoute and alien_dsts and p in alien_dsts:
                    alien = state_routes.get((af, p, desired.metric))
                    if alien is not None and alien.protocol == RTPROT_KERNEL:
                        desired = Unresolved(KERNEL_OWNS)
                if type(desired) is KernelRoute:
                    if reasons:
                        reasons.pop(p, None)
                    if cur is not None and desired == cur:
                        if unconfirmed:
                            unconfirmed.discard(p)
                        continue
                    if exclusive and p in exclusive:  # EEXIST last time: delete first, once
                        exclusive.discard(p)
                        requests.append((RTM_DELROUTE, cur if cur is not None else desired))
                        meta.append((fam, p, False))
                        retries.add(len(meta))
                    requests.append((RTM_NEWROUTE, desired))
                    meta.append((fam, p, desired))
                    if cur is not None and cur.metric != desired.metric:
                        # another metric is another kernel route: add the new, then delete
                        # the old (no moment without a route)
                        requests.append((RTM_DELROUTE, cur))
                        meta.append((fam, p, False))
                    continue
                if desired is None:
                    if reasons:
                        reasons.pop(p, None)
                else:
                    reasons[p] = desired.reason
                if cur is None:
                    continue
                if desired is None and not converged and p in unconfirmed:
                    continue  # adopted: kept until the sweep
                requests.append((RTM_DELROUTE, cur))
                meta.append((fam, p, None))
        if self.converged and self.strays:
            self._sweep_strays()
        if requests:
            try:
                failures = self.channel.apply(requests)
            except OSError:
                for fam, p, _d in meta:
                    self.pending[fam].add(p)
                raise
            self._settle(meta, failures, retries)
        dt = (time.perf_counter() - t0) * 1000.0
        st = self.stats
        st["batches"] += 1
        st["last_batch_ms"] = dt
        st["busy_ms"] += dt
        if dt > st["max_batch_ms"]:
            st["max_batch_ms"] = dt

    def _memo_entry(self, af: int, nh: bytes | None) -> tuple:
        """``(next hops or Unresolved, deps)`` for a BGP next hop (the fast path's memo)."""
        if not nh:
            return Unresolved("no next hop"), None
        deps: list = []
        r = resolve_next_hop(af, nh, self.res, deps)
        return r, (tuple(deps) if deps else None)

    def _settle(self, meta: list, failures: list, retries: set) -> None:
        errs = {i: (code, text) for i, code, text in failures} if failures else None
        st = self.stats
        dsts = getattr(self.state, "dsts", None)
        state_routes = getattr(self.state, "routes", None)
        counts: dict = {}  # id(next hops) -> change in routes using them
        hops_of: dict = {}  # id(next hops) -> next hops
        overwritten = []
        added = removed = 0
        last_fam = inst = unconfirmed = None
        for i, (fam, p, desired) in enumerate(meta):
            if desired is False:  # the delete of a delete-then-add
                continue
            if fam is not last_fam:
                last_fam = fam
                inst = self.installed[fam]
                unconfirmed = self.unconfirmed[fam]
            err = errs.get(i) if errs else None
            if desired is None:
                if err is not None and err[0] != errno.ESRCH:
                    log.warning(
                        "kernel: route removal failed",
                        route=str(inst.get(p)),
                        error=err[1] or os.strerror(err[0]),
                    )
                old = inst.pop(p, None)
                if old is not None:
                    h = old[3]
                    k = id(h)
                    counts[k] = counts.get(k, 0) - 1
                    hops_of[k] = h
                if unconfirmed and p in unconfirmed:
                    unconfirmed.discard(p)
                    st["swept"] += 1
                removed += 1
                continue
            if err is None:
                old = inst.get(p)
                if old is not None:
                    h = old[3]
                    k = id(h)
                    counts[k] = counts.get(k, 0) - 1
                    hops_of[k] = h
                h = desired[3]  # nexthops
                k = id(h)
                counts[k] = counts.get(k, 0) + 1
                hops_of[k] = h
                inst[p] = desired
                if unconfirmed:
                    unconfirmed.discard(p)
                added += 1
                if dsts and p in dsts and (desired.family, p, desired.metric) in state_routes:
                    overwritten.append((desired.family, p, desired.metric))
                continue
            code, text = err
            reason = f"kernel refused: {text or os.strerror(code)}"
            st["failed"] += 1
            if code == errno.EEXIST and i not in retries:
                self.exclusive[fam].add(p)
                log.warning("kernel: route exists, retrying as delete and add", route=str(desired))
            else:
                self.failed[fam][p] = (desired, reason)
                log.warning("kernel: route not installed", route=str(desired), error=reason)
            self.reasons[fam][p] = reason
            self.pending[fam].add(p)
        via = self.via
        for k, n in counts.items():
            if n:
                h = hops_of[k]
                via[h] = via.get(h, 0) + n
        st["added"] += added
        st["removed"] += removed
        if overwritten and self.on_overwrite is not None:
            self.on_overwrite(overwritten)

    # --- what we installed, with a count of routes per set of next hops ---------------------

    def _install(self, fam, p: bytes, r: KernelRoute) -> None:
        inst = self.installed[fam]
        old = inst.get(p)
        via = self.via
        if old is not None:
            via[old.nexthops] -= 1
        via[r.nexthops] = via.get(r.nexthops, 0) + 1
        inst[p] = r

    def _uninstall(self, fam, p: bytes) -> None:
        old = self.installed[fam].pop(p, None)
        if old is not None:
            self.via[old.nexthops] -= 1

    def _sweep_strays(self) -> None:
        strays, self.strays = self.strays, []
        try:
            self.channel.apply([(RTM_DELROUTE, r) for r in strays])
        except OSError:
            self.strays = strays
            raise
        self.stats["swept"] += len(strays)

    async def _resync(self, initial: bool = False) -> None:
        """Take the kernel's view of our routes as the truth and redo every prefix."""
        self._resync_needed = False
        routes = await self.channel.dump_routes(self.settings.table, self.settings.protocol)
        installed: dict = {f: {} for f in self.installed}
        strays = []
        for m in routes:
            fam = FAMILY_OF_AF.get(m.family)
            if fam not in installed:
                continue
            r = route_from_msg(m)
            # One route of ours per prefix; metrics are per route (an export filter may set
            # them: BIRD's krt_metric), so a second one for the prefix is the stray, unless
            # it has the configured metric and the first does not.
            cur = installed[fam].get(r.dst)
            if cur is None:
                installed[fam][r.dst] = r
                continue
            configured = kernel_metric(r.family, self.settings.metric)
            if r.metric == configured and cur.metric != configured:
                installed[fam][r.dst] = r
                r = cur
            strays.append(r)
        self.installed = {f: {} for f in installed}
        self.via = {}
        for fam, inst in installed.items():
            for p, r in inst.items():
                self._install(fam, p, r)
        self.strays = strays
        for f in self.failed.values():
            f.clear()
        if initial or not self.converged:
            for fam, inst in installed.items():
                self.unconfirmed[fam] = set(inst)
        n = sum(len(x) for x in installed.values())
        if initial:
            self.stats["adopted"] = n
            if n:
                log.info("kernel: adopted routes from a previous run", routes=n, strays=len(strays))
        else:
            self.stats["resyncs"] += 1
            log.info("kernel: resynced with the kernel", routes=n)
            for fam, loc in self.locs.items():
                self.pending[fam].update(loc.table)
                if self.converged:
                    self.pending[fam].update(installed[fam])
        self._recheck = True
