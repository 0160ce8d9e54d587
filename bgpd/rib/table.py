"""Adj-RIB-In and Loc-RIB per address family, with batched decisions.

Memory is the constraint for a million prefixes in Python, so the Loc-RIB stores as little as
possible per prefix: ``table[prefix]`` is a :class:`Route` (the single candidate and the
attribute set it announced, shared by all the prefixes of its UPDATE) when only one
candidate has the prefix, and a :class:`Dest` holding the routes, the best one and the
multipath set when several have it. That one dict slot per prefix is also every source's
Adj-RIB-In: ``source.adj_in[family]`` is a view of the Loc-RIB (rib/source.py), whose size
the Loc-RIB counts. The public helpers (:func:`best_of`, :func:`candidates_of`,
:func:`multipath_of`, :meth:`LocRib.route`, the map :meth:`LocRib.commit` returns) give
candidates (a :class:`Source`, or a :class:`Path` with ADD-PATH), as before; a Route stands
for its candidate where one is read (``source``, ``pid``, ``attrs_for``).

Changes are batched: :meth:`LocRib.announce` and :meth:`LocRib.withdraw` apply a whole
UPDATE's worth of prefixes and record each touched prefix once with the best route it had
before the batch; :meth:`LocRib.publish` runs the decision process over the touched prefixes
that have several candidates and hands the touched map to the listeners (export groups, FIB).

Prefixes new to the Loc-RIB (a table being loaded: nobody had them, nothing was touched) are
recorded as a *run* instead, one per UPDATE: ``(source, attrs, prefixes)``, the list as
received. A run costs no per-prefix work, and an export group can send it as a whole
(rib/export.py). A prefix of a run had no best path before the batch; if it is touched again
in the same batch it is also in the touched map, and the run's "nothing before" is the one
that holds (the earlier change). Listeners that take runs (``takes_runs``) get them apart;
the others get one touched map with the runs' prefixes in it.
"""

from .decision import Cand, DecisionConfig, select
from .source import Path, Route, Source


class Dest:
    """A prefix with several candidates: their routes, the best and the multipath set."""

    __slots__ = ("cands", "best", "multipath", "lost")

    def __init__(self, cands: list) -> None:
        self.cands = cands  # [Route]
        self.best = cands[0]
        self.multipath: tuple = (cands[0],)
        self.lost: dict = {}  # Route -> the decision step it lost at


def best_of(entry):
    """The best candidate of a Loc-RIB entry (None for None)."""
    if entry is None:
        return None
    if type(entry) is Dest:
        return entry.best.cand
    return entry.cand


def candidates_of(entry) -> list:
    if entry is None:
        return []
    if type(entry) is Dest:
        return [r.cand for r in entry.cands]
    return [entry.cand]


def multipath_of(entry) -> tuple:
    if entry is None:
        return ()
    if type(entry) is Dest:
        return tuple(r.cand for r in entry.multipath)
    return (entry.cand,)


def routes_of(entry) -> tuple:
    """The routes of a Loc-RIB entry (each with ``cand``, ``source``, ``attrs``)."""
    if entry is None:
        return ()
    if type(entry) is Dest:
        return tuple(entry.cands)
    return (entry,)


def best_route(entry):
    """The best :class:`Route` of a Loc-RIB entry (None for None)."""
    if type(entry) is Dest:
        return entry.best
    return entry


def _cand_map(touched: dict) -> dict:
    return {p: (None if r is None else r.cand) for p, r in touched.items()}


class LocRib:
    """The Loc-RIB of one address family."""

    def __init__(self, family, cfg: DecisionConfig | None = None) -> None:
        self.family = family
        self.cfg = cfg or DecisionConfig()
        self.table: dict = {}  # prefix -> Route | Dest
        self.touched: dict = {}  # prefix -> best route before this batch (or None)
        self.runs: list = []  # (source, attrs, [prefix]) new to the Loc-RIB in this batch
        self.dirty: set = set()  # touched prefixes with several candidates: run the decision
        self.listeners: list = []  # objects with rib_changed(family, touched, locrib)

    def __len__(self) -> int:
        return len(self.table)

    # --- applying Adj-RIB-In changes -----------------------------------------------------

    def _route(self, cand, attrs) -> Route:
        r = cand.last_route if type(cand) is Source else None
        if r is not None and r.attrs is attrs:
            return r
        r = Route(cand, attrs)
        if type(cand) is Source:
            cand.last_route = r
        return r

    def _bind(self, source: Source) -> None:
        source.locs[self.family] = self
        source.counts[self.family] = 0

    def announce(self, source: Source, prefixes, attrs) -> None:
        """``source`` announces ``prefixes`` (keys as received) with ``attrs``."""
        fam = self.family
        if source.locs.get(fam) is not self:
            self._bind(source)
        if fam in source.addpath:
            self._announce_paths(source, prefixes, attrs)
            return
        table = self.table
        touched = self.touched
        stale = source.stale.get(fam)
        route = self._route(source, attrs)
        if not stale and table.keys().isdisjoint(prefixes) and touched.keys().isdisjoint(prefixes):
            # New prefixes nobody has (a table being loaded): no per-prefix Python work.
            n = len(table)
            table.update(dict.fromkeys(prefixes, route))
            added = len(table) - n
            if not added:
                return  # nothing announced
            source.counts[fam] += added
            if added != len(prefixes) or type(prefixes) is not list:
                prefixes = list(dict.fromkeys(prefixes))  # repeated, or not a list we can keep
            self.runs.append((source, attrs, prefixes))
            return
        put = self._put
        added = 0
        for p in prefixes:
            refreshed = False
            if stale and p in stale:
                stale.discard(p)  # re-announced after a graceful restart: fresh again
                refreshed = True
            added += put(p, source, route, refreshed)
        if added:
            source.counts[fam] += added

    def _announce_paths(self, source: Source, items, attrs) -> None:
        paths = source.paths
        stale = source.stale.get(self.family)
        routes: dict = {}  # path id -> this announcement's Route
        put = self._put
        added = 0
        for key in items:
            pid, p = key
            refreshed = False
            if stale and key in stale:
                stale.discard(key)  # re-announced after a graceful restart: fresh again
                refreshed = True
            route = routes.get(pid)
            if route is None:
                cand = paths.get(pid)
                if cand is None:
                    cand = paths[pid] = Path(source, pid)
                route = routes[pid] = Route(cand, attrs)
            added += put(p, route.cand, route, refreshed)
        if added:
            source.counts[self.family] += added

    def _put(self, p: bytes, cand, route: Route, refreshed: bool) -> int:
        """Put ``route``, of candidate ``cand`` (a Source, or a Path with ADD-PATH), at
        ``p``; ``refreshed``: it was stale (the decision runs again even if its attributes
        did not change). Returns 1 when it is a new candidate there, else 0."""
        table = self.table
        touched = self.touched
        cur = table.get(p)
        if cur is None:
            table[p] = route
            if p not in touched:
                touched[p] = None
            return 1
        if type(cur) is Route:
            if cur.cand is cand:
                if cur.attrs is not route.attrs or refreshed:
                    table[p] = route
                    if p not in touched:
                        touched[p] = cur
                return 0
            if p not in touched:
                touched[p] = cur
            table[p] = Dest([cur, route])
            self.dirty.add(p)
            return 1
        if p not in touched:
            touched[p] = cur.best
        self.dirty.add(p)
        cands = cur.cands
        for i, r in enumerate(cands):
            if r.cand is cand:
                if cur.best is r:
                    cur.best = route
                cands[i] = route
                return 0
        cands.append(route)
        return 1

    def withdraw(self, source: Source, keys) -> None:
        """``source`` withdraws ``keys`` (prefixes, or ``(path_id, prefix)`` with ADD-PATH)."""
        fam = self.family
        if not source.counts.get(fam) or source.locs.get(fam) is not self:
            return  # nothing announced here
        table = self.table
        touched = self.touched
        addpath = fam in source.addpath
        paths = source.paths if addpath else None
        stale = source.stale.get(fam)
        removed = 0
        for key in keys:
            if addpath:
                pid, p = key
                cand = paths.get(pid)
                if cand is None:
                    continue
            else:
                p = key
                cand = source
            cur = table.get(p)
            if cur is None:
                continue
            if type(cur) is Route:
                if cur.cand is not cand:
                    continue
                if p not in touched:
                    touched[p] = cur
                del table[p]
            else:
                cands = cur.cands
                i = 0
                for r in cands:
                    if r.cand is cand:
                        break
                    i += 1
                else:
                    continue
                if p not in touched:
                    touched[p] = cur.best
                del cands[i]
                if len(cands) == 1:
                    table[p] = cands[0]
                    self.dirty.discard(p)
                else:
                    if cur.best is r:
                        cur.best = cands[0]
                    self.dirty.add(p)
            removed += 1
            if stale:
                stale.discard(key)
        if removed:
            source.counts[fam] -= removed

    def retouch(self, p: bytes) -> None:
        """Re-run the decision for ``p`` at the next commit (e.g. a path became stale)."""
        cur = self.table.get(p)
        if cur is None:
            return
        if p not in self.touched:
            self.touched[p] = cur.best if type(cur) is Dest else cur
        if type(cur) is Dest:
            self.dirty.add(p)

    def keys_of(self, source: Source) -> list:
        """Every key ``source`` announced in this family (a walk of the Loc-RIB)."""
        fam = self.family
        if not source.counts.get(fam) or source.locs.get(fam) is not self:
            return []
        if fam in source.addpath:
            return list(source.adj_in[fam])
        keys = []
        add = keys.append
        for p, e in self.table.items():
            if type(e) is Route:
                if e.source is source:
                    add(p)
            else:
                for r in e.cands:
                    if r.source is source:
                        add(p)
                        break
        return keys

    def mark_stale(self, source: Source) -> int:
        """Graceful restart (RFC 4724 §4.2): keep ``source``'s routes, marked stale, so that
        fresh routes win over them; returns how many."""
        fam = self.family
        keys = set(self.keys_of(source))
        if not keys:
            source.stale.pop(fam, None)
            return 0
        source.stale[fam] = keys
        for key in keys:
            self.retouch(key[1] if type(key) is tuple else key)
        return len(keys)

    def sweep_stale(self, source: Source) -> int:
        """Withdraw whatever of ``source`` is still stale (End-of-RIB or a timer)."""
        keys = source.stale.pop(self.family, None)
        if not keys:
            return 0
        self.withdraw(source, list(keys))
        return len(keys)

    def flush(self, source: Source) -> None:
        """Withdraw everything ``source`` announced in this family."""
        keys = self.keys_of(source)
        if keys:
            self.withdraw(source, keys)
        if source.last_route is not None and source.last_route.cand is source:
            source.last_route = None

    # --- decision ----------------------------------------------------------------------------

    def commit(self) -> dict:
        """Run the decision process over the batch and notify the listeners; returns the
        touched map (prefix -> best candidate before the batch), the runs' prefixes included."""
        touched = _cand_map(self.touched_map())
        self.publish()
        return touched

    def touched_map(self) -> dict:
        """The batch so far as one map: prefix -> best route before the batch."""
        if not self.runs:
            return dict(self.touched)
        merged = dict(self.touched)
        for _src, _attrs, prefixes in self.runs:
            merged.update(dict.fromkeys(prefixes))  # the earlier change: nothing before
        return merged

    def publish(self) -> None:
        """:meth:`commit` without building the touched map for the caller."""
        touched = self.touched
        runs = self.runs
        if not touched and not runs:
            return
        self.touched = {}
        self.runs = []
        table = self.table
        fam = self.family
        cfg = self.cfg
        dirty = self.dirty
        self.dirty = set()
        for p in dirty:
            cur = table.get(p)
            if type(cur) is Dest:
                self._select(fam, p, cur, cfg)
        merged = None
        for listener in self.listeners:
            if getattr(listener, "takes_runs", False):
                listener.rib_changed(fam, touched, self, runs)
                continue
            if merged is None:
                merged = touched
                if runs:
                    merged = dict(touched)
                    for _src, _attrs, prefixes in runs:
                        merged.update(dict.fromkeys(prefixes))
            listener.rib_changed(fam, merged, self)

    @staticmethod
    def _select(fam, p, dest: Dest, cfg: DecisionConfig) -> None:
        cands = []
        for r in dest.cands:
            src = r.source
            c = r.cand
            key = p if type(c) is Source else (c.pid, p)
            stale = src.stale.get(fam)
            cands.append(Cand(r, r.attrs, bool(stale) and key in stale, fam))
        best, multipath, lost = select(cands, cfg)
        dest.best = best.c
        dest.multipath = tuple(m.c for m in multipath)
        dest.lost = lost

    def route(self, p: bytes):
        """``(best, multipath, [(candidate, attrs, lost_step)])`` for one prefix, or None."""
        cur = self.table.get(p)
        if cur is None:
            return None
        if type(cur) is Dest:
            return (
                cur.best.cand,
                tuple(r.cand for r in cur.multipath),
                [(r.cand, r.attrs, cur.lost.get(r)) for r in cur.cands],
            )
        return cur.cand, (cur.cand,), [(cur.cand, cur.attrs, None)]
