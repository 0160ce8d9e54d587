"""Adj-RIB-In and Loc-RIB per address family, with batched decisions.

Memory is the constraint for a million prefixes in Python, so the Loc-RIB stores as little as
possible per prefix: ``table[prefix]`` is the single candidate (a :class:`Source`, or a
:class:`Path` with ADD-PATH) when only one source has the prefix, and a :class:`Dest` holding
the candidate list, the best path and the multipath set when several have it. A candidate's
attributes live in its source's Adj-RIB-In (``source.adj_in[family][key]``), shared interned
sets, so the Loc-RIB adds one dict slot per prefix and nothing else in the common case.

Changes are batched: :meth:`LocRib.announce` and :meth:`LocRib.withdraw` apply a whole
UPDATE's worth of prefixes and record each touched prefix once with the best candidate it had
before the batch; :meth:`LocRib.commit` runs the decision process over the touched prefixes
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
from .source import Path, Source


class Dest:
    """A prefix with several candidates."""

    __slots__ = ("cands", "best", "multipath", "lost")

    def __init__(self, cands: list) -> None:
        self.cands = cands
        self.best = cands[0]
        self.multipath: tuple = (cands[0],)
        self.lost: dict = {}


def best_of(entry):
    """The best candidate of a Loc-RIB entry (None for None)."""
    if type(entry) is Dest:
        return entry.best
    return entry


def candidates_of(entry) -> list:
    if entry is None:
        return []
    if type(entry) is Dest:
        return entry.cands
    return [entry]


def multipath_of(entry) -> tuple:
    if entry is None:
        return ()
    if type(entry) is Dest:
        return entry.multipath
    return (entry,)


class LocRib:
    """The Loc-RIB of one address family."""

    def __init__(self, family, cfg: DecisionConfig | None = None) -> None:
        self.family = family
        self.cfg = cfg or DecisionConfig()
        self.table: dict = {}
        self.touched: dict = {}  # prefix -> best candidate before this batch (or None)
        self.runs: list = []  # (source, attrs, [prefix]) new to the Loc-RIB in this batch
        self.dirty: set = set()  # touched prefixes with several candidates: run the decision
        self.listeners: list = []  # objects with rib_changed(family, touched, locrib)

    def __len__(self) -> int:
        return len(self.table)

    # --- applying Adj-RIB-In changes -----------------------------------------------------

    def announce(self, source: Source, prefixes, attrs) -> None:
        """``source`` announces ``prefixes`` (keys as received) with ``attrs``."""
        fam = self.family
        adj = source.adj_in[fam]
        table = self.table
        touched = self.touched
        stale = source.stale.get(fam)
        if fam in source.addpath:
            self._announce_paths(source, prefixes, attrs)
            return
        if not stale and table.keys().isdisjoint(prefixes) and touched.keys().isdisjoint(prefixes):
            # New prefixes nobody has (a table being loaded): no per-prefix Python work.
            new = dict.fromkeys(prefixes, attrs)
            adj.update(new)
            table.update(dict.fromkeys(new, source))
            if len(new) != len(prefixes) or type(prefixes) is not list:
                prefixes = list(new)  # repeated in the UPDATE, or not a list we can keep
            self.runs.append((source, attrs, prefixes))
            return
        dirty = self.dirty
        for p in prefixes:
            old = adj.get(p)
            adj[p] = attrs
            refreshed = False
            if stale and p in stale:
                stale.discard(p)  # re-announced after a graceful restart: fresh again
                refreshed = True
            cur = table.get(p)
            if cur is None:
                table[p] = source
                if p not in touched:
                    touched[p] = None
            elif cur is source:
                if (old is not attrs or refreshed) and p not in touched:
                    touched[p] = source
            elif type(cur) is Dest:
                if p not in touched:
                    touched[p] = cur.best
                if old is None:
                    cur.cands.append(source)
                dirty.add(p)
            else:
                if p not in touched:
                    touched[p] = cur
                table[p] = Dest([cur, source])
                dirty.add(p)

    def _announce_paths(self, source: Source, items, attrs) -> None:
        fam = self.family
        adj = source.adj_in[fam]
        table = self.table
        touched = self.touched
        paths = _paths_of(source)
        stale = source.stale.get(fam)
        for key in items:
            pid, p = key
            old = adj.get(key)
            adj[key] = attrs
            if stale:
                stale.discard(key)
            cand = paths.get(pid)
            if cand is None:
                cand = paths[pid] = Path(source, pid)
            cur = table.get(p)
            if cur is None:
                table[p] = cand
                if p not in touched:
                    touched[p] = None
            elif cur is cand:
                if old is not attrs and p not in touched:
                    touched[p] = cand
            elif type(cur) is Dest:
                if p not in touched:
                    touched[p] = cur.best
                if old is None:
                    cur.cands.append(cand)
                self.dirty.add(p)
            else:
                if p not in touched:
                    touched[p] = cur
                table[p] = Dest([cur, cand])
                self.dirty.add(p)

    def withdraw(self, source: Source, keys) -> None:
        """``source`` withdraws ``keys`` (prefixes, or ``(path_id, prefix)`` with ADD-PATH)."""
        fam = self.family
        adj = source.adj_in[fam]
        table = self.table
        touched = self.touched
        addpath = fam in source.addpath
        paths = _paths_of(source) if addpath else None
        stale = source.stale.get(fam)
        for key in keys:
            if adj.pop(key, None) is None:
                continue
            if stale:
                stale.discard(key)
            if addpath:
                pid, p = key
                cand = paths.get(pid)
            else:
                p = key
                cand = source
            cur = table.get(p)
            if cur is cand:
                if p not in touched:
                    touched[p] = cand
                del table[p]
            elif type(cur) is Dest:
                if p not in touched:
                    touched[p] = cur.best
                cands = cur.cands
                try:
                    cands.remove(cand)
                except ValueError:
                    continue
                if len(cands) == 1:
                    table[p] = cands[0]
                    self.dirty.discard(p)
                else:
                    if cur.best is cand:
                        cur.best = cands[0]
                    self.dirty.add(p)

    def retouch(self, p: bytes) -> None:
        """Re-run the decision for ``p`` at the next commit (e.g. a path became stale)."""
        cur = self.table.get(p)
        if cur is None:
            return
        if p not in self.touched:
            self.touched[p] = cur.best if type(cur) is Dest else cur
        if type(cur) is Dest:
            self.dirty.add(p)

    def mark_stale(self, source: Source) -> int:
        """Graceful restart (RFC 4724 §4.2): keep ``source``'s routes, marked stale, so that
        fresh routes win over them; returns how many."""
        fam = self.family
        keys = set(source.adj_in[fam])
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
        self.withdraw(source, list(source.adj_in[self.family]))

    # --- decision ----------------------------------------------------------------------------

    def commit(self) -> dict:
        """Run the decision process over the batch and notify the listeners; returns the
        touched map (prefix -> best before the batch), the runs' prefixes included."""
        touched = self.touched_map()
        self.publish()
        return touched

    def touched_map(self) -> dict:
        """The batch so far as one map: prefix -> best candidate before the batch."""
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
        for c in dest.cands:
            src = c.source
            key = p if type(c) is Source else (c.pid, p)
            stale = src.stale.get(fam)
            cands.append(Cand(c, c.attrs_for(fam, p), bool(stale) and key in stale, fam))
        best, multipath, lost = select(cands, cfg)
        dest.best = best.c
        dest.multipath = tuple(m.c for m in multipath)
        dest.lost = lost

    def route(self, p: bytes):
        """``(best, multipath, [(candidate, attrs, lost_step)])`` for one prefix, or None."""
        cur = self.table.get(p)
        if cur is None:
            return None
        fam = self.family
        if type(cur) is Dest:
            return (
                cur.best,
                cur.multipath,
                [(c, c.attrs_for(fam, p), cur.lost.get(c)) for c in cur.cands],
            )
        return cur, (cur,), [(cur, cur.attrs_for(fam, p), None)]


def _paths_of(source: Source) -> dict:
    return source.paths
