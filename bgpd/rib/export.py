"""Adj-RIB-Out as state: export groups that turn Loc-RIB changes into packed UPDATEs.

Peers that share an export context (policy, iBGP/eBGP, reflector role, encoding options) share
an :class:`ExportGroup`. A group keeps, per family, the set of prefixes whose advertised state
changed (``pending``: prefix -> the best candidate before the change); nothing else. When its
members can take more output, :meth:`ExportGroup.drain` reads the current Loc-RIB state for a
batch of pending prefixes, computes the outgoing attribute set per (attribute set, source)
through its export ``context`` (an :class:`ExportFn`, which caches its results on the set),
buckets prefixes by outgoing set and
packs each bucket once; the same bytes go to every member. A slow peer therefore costs memory
bounded by the table, never a backlog, and the latest state always wins.

Split horizon: a route is not sent back to the member it came from (BIRD, GoBGP and FRR do
the same); such prefixes go in a bucket that excludes that member, and when the best path
moves to a member that had been sent the previous best, that member gets a withdrawal.
A context with ``skip_next_hop_echo`` (BIRD's rules) also keeps from each member the routes
whose outgoing NEXT_HOP is that member's own address (BIRD 1.6 drops them as "Invalid
NEXT_HOP"), the same way.

A peer whose session comes up joins a syncing group that starts with the whole Loc-RIB
pending (the initial table, then End-of-RIB): a new one, or one of its export key that has
sent nothing yet (sessions that come up between two drains sync together: each route is
exported once for all of them, not once per member); once both it and the steady group of
its export key have nothing pending, it merges into that group. With ADD-PATH, a syncing
group takes the steady group's export results for the prefixes pending nothing there.

What is pending is kept two ways, per family. ``pending`` maps a prefix to the best path
before its first unsent change (what the members may hold). ``runs`` are lists of prefixes
that the members hold nothing for: the Loc-RIB's runs (one UPDATE's new prefixes, with the
source and attribute set they all have) and the whole table of a new member's initial sync
(a list of the keys, 8 octets a prefix, instead of a dict entry). A run is older than any
``pending`` entry for one of its prefixes (a prefix already pending is left out of a run when
the run arrives), so when a run is drained, prefixes it shares with ``pending`` are taken out
of ``pending`` and sent from the current state as "nothing before"; runs are drained before
``pending``. A run of new prefixes none of which changed since (none is in ``pending``) all
still have its source and set: it is exported with one call and packed as a whole, with no
per-prefix work.
"""

import weakref
from collections import deque
from typing import Protocol

from bgpd.wire import AttrSet, Context, end_of_rib, pack_announce, pack_withdraw

from .source import Source
from .table import Dest, LocRib, routes_of


class ExportFn(Protocol):
    """The export rules of a group: the set its members receive for a route from ``source``
    (None: not sent). ``prefix_dependent``: the result depends on the prefix, not only on
    (source, set), so one result is never reused for a run of prefixes. The route engine's
    ``ExportContext`` is the one implementation (bgpd/rde/exports.py)."""

    prefix_dependent: bool

    def __call__(self, source: Source, attrs: AttrSet, prefix: bytes, family) -> AttrSet | None: ...


class _Out:
    """What one drain pass of a group produces for one family, before packing."""

    __slots__ = ("buckets", "withdraws", "member_withdraws", "skip")

    def __init__(self) -> None:
        # (id(out attrs), id(excluded member source), id(echo member source))
        #   -> (attrs, (excluded member sources), [prefix])
        self.buckets: dict = {}
        self.withdraws: dict = {}  # excluded source (or None) -> [prefix]
        self.member_withdraws: dict = {}  # member source -> [prefix]
        self.skip: list = []  # the bucket of filtered, never-advertised prefixes: dropped


class ExportGroup:
    # Loc-RIB listener protocol: rib_changed(family, touched, locrib, runs)
    takes_runs = True

    __slots__ = (
        "key",
        "ctx",
        "context",
        "families",
        "members",
        "pending",
        "runs",
        "run_count",
        "addpath",
        "advertised",
        "trailer",
        "index",
        "prefix_dependent",
        "packed",
        "echo",
        "echomap",
        "fresh",
        "__weakref__",
    )

    def __init__(self, key, ctx: Context, context: ExportFn, families, index: int = 0) -> None:
        self.key = key
        self.ctx = ctx
        self.context = context
        self.families = tuple(families)
        self.members: list = []
        self.pending: dict = {f: {} for f in self.families}
        # family -> deque of [prefixes, start, source, attrs, old]: prefixes[start:] to send,
        # all with nothing (old None), maybe something (MAYBE) or the route of the source
        # ``old`` (a withdrawn table: GONE_RUN_MIN) at the members before; source/attrs:
        # what they all have unless changed since (None: look each one up).
        self.runs: dict = {f: deque() for f in self.families}
        self.run_count = 0  # prefixes in runs
        self.addpath = frozenset(f for f in self.families if f in ctx.add_path_tx)
        # ADD-PATH groups remember which path ids each prefix was sent with, to withdraw them.
        self.advertised: dict = {f: {} for f in self.addpath}
        # Messages a member gets once its initial table is out (End-of-RIB, or EoRR).
        self.trailer: dict = {}
        self.index = index
        # the context's result depends on the prefix, not only on (source, attribute set)
        self.prefix_dependent = bool(getattr(context, "prefix_dependent", False))
        # UPDATEs of one prefix already packed for this export key (shared by its groups)
        self.packed: dict = {}
        # routes whose next hop is a member's own address are kept from that member
        self.echo = bool(getattr(context, "skip_next_hop_echo", False))
        self.echomap: dict = {}  # member source by its address, during a drain (echo only)
        # a new member's initial sync that has not been drained yet: its members hold
        # nothing, and what is pending is the whole current table, so another new member of
        # the same export key can join it (Exporter.join)
        self.fresh = False

    def __repr__(self) -> str:
        return f"ExportGroup({self.index}, members={len(self.members)})"

    @property
    def idle(self) -> bool:
        return not self.run_count and not any(self.pending.values())

    def pending_count(self) -> int:
        return self.run_count + sum(len(p) for p in self.pending.values())

    # --- input from the Loc-RIB -------------------------------------------------------------

    def rib_changed(self, family, touched: dict, locrib: LocRib, runs=()) -> None:
        pending = self.pending.get(family)
        if pending is None:
            return
        if runs:
            q = self.runs[family]
            if _has_gone(q):
                # a run of withdrawals is waiting: fold it into ``pending``, where the check
                # below finds its prefixes (else the new run would send them twice)
                self._fold_runs(family)
            for src, attrs, prefixes in runs:
                if not prefixes:
                    continue
                if pending and not pending.keys().isdisjoint(prefixes):
                    # already pending from an earlier change: that entry says what the
                    # members may hold, so it stays and the run leaves the prefix out
                    prefixes = [p for p in prefixes if p not in pending]
                    if not prefixes:
                        continue
                q.append([prefixes, 0, src, attrs, None])
                self.run_count += len(prefixes)
        if not touched:
            return
        q = self.runs[family]
        if not pending and not q and len(touched) >= GONE_RUN_MIN:
            run = _gone_run(touched)
            if run is not None:
                q.append(run)
                self.run_count += len(run[0])
                return
        if not pending or pending.keys().isdisjoint(touched):
            pending.update(touched)
        else:
            for p in touched.keys() - pending.keys():
                pending[p] = touched[p]
        if q and len(pending) + sum(len(r[0]) - r[1] for r in q) > len(locrib.table):
            # More pending than the table has prefixes: some are both in a run and in
            # ``pending`` (a member that takes nothing while the table changes again). Fold
            # the runs into ``pending`` so that what is pending stays bounded by the table.
            self._fold_runs(family)

    def _fold_runs(self, family) -> None:
        """Turn ``family``'s runs into ``pending`` entries (the run's "before" wins: it is
        the older change)."""
        pending = self.pending[family]
        q = self.runs[family]
        for prefixes, start, _src, _attrs, old in q:
            pending.update(dict.fromkeys(prefixes[start:] if start else prefixes, old))
            self.run_count -= len(prefixes) - start
        q.clear()

    def settle_runs(self) -> None:
        """Take the prefixes of runs out of ``pending`` (the runs are older: the members
        hold what the run says, not what the entry says); a run of withdrawals (its source
        in ``old``) goes into ``pending`` instead, where it says what the members hold."""
        for fam, q in self.runs.items():
            pending = self.pending[fam]
            if _has_gone(q):
                self._fold_runs(fam)
            elif pending:
                for run in q:
                    for p in run[0][run[1] :]:
                        pending.pop(p, None)

    def full_sync(self, locribs: dict, old=None, exclude=None) -> None:
        """Make the whole Loc-RIB pending (a new member's initial table): a run of its keys.
        ``old``: what the members hold before (None: nothing; MAYBE); ``exclude``: prefixes
        left out (pending elsewhere with what the members hold)."""
        for fam in self.families:
            loc = locribs.get(fam)
            q = self.runs[fam]
            self.run_count -= sum(len(r[0]) - r[1] for r in q)
            q.clear()
            self.pending[fam] = {}
            if loc is None or not loc.table:
                continue
            ex = exclude.get(fam) if exclude else None
            keys = [p for p in loc.table if p not in ex] if ex else list(loc.table)
            if keys:
                q.append([keys, 0, None, None, old])
                self.run_count += len(keys)

    # --- output -----------------------------------------------------------------------------

    def writable(self) -> bool:
        return all(m.writable for m in self.members)

    def drain(self, locribs: dict, budget: int, ref=None) -> tuple[dict, int]:
        """Pack up to ``budget`` pending prefixes. Returns ({member: (bytes, ...)}, prefixes
        done): one tuple of messages for all the members that split horizon leaves whole.

        ``ref``: another group of the same export key and context (the steady one) whose
        ADD-PATH results are taken for the prefixes it has nothing pending for, instead of
        exporting them again (see :meth:`_drain_addpath`)."""
        out: dict = {}  # member -> (bytes, ...), one tuple shared by the members it can be
        done = 0
        self.fresh = False  # from here on the members may hold something
        if self.echo:
            self.echomap = {
                m.source.address_key: m.source for m in self.members if m.source.address_key
            }
        for fam in self.families:
            if done >= budget:
                break
            runs = self.runs[fam]
            pending = self.pending[fam]
            if not runs and not pending:
                continue
            loc = locribs[fam]
            addpath = fam in self.addpath
            acc = None if addpath else _Out()
            while runs and done < budget:
                run = runs[0]
                prefixes, start, src, attrs, old = run
                left = len(prefixes) - start
                n = min(left, budget - done)
                if n == left:
                    runs.popleft()
                    chunk = prefixes if not start else prefixes[start:]
                else:
                    run[1] = start + n
                    chunk = prefixes[start : start + n]
                done += n
                self.run_count -= n
                if pending and not pending.keys().isdisjoint(chunk):
                    # changed since the run: the run's "before" holds (it is the older one)
                    for p in chunk:
                        pending.pop(p, None)
                    src = None
                if addpath:
                    self._drain_addpath(fam, dict.fromkeys(chunk, old), loc, out, ref)
                elif old is not None or self.prefix_dependent:
                    self._drain_best(fam, dict.fromkeys(chunk, old), loc, acc)
                elif src is None or not loc.touched.keys().isdisjoint(chunk):
                    self._drain_fresh(fam, chunk, loc, acc)
                else:
                    self._drain_run(fam, src, attrs, chunk, acc)
            if pending and done < budget:
                n = min(len(pending), budget - done)
                if n == len(pending):
                    batch = pending
                    self.pending[fam] = {}
                else:
                    # Order does not matter: each prefix's latest state is read at drain time.
                    batch = {}
                    pop = pending.popitem
                    for _ in range(n):
                        k, v = pop()
                        batch[k] = v
                done += len(batch)
                if addpath:
                    self._drain_addpath(fam, batch, loc, out, ref)
                else:
                    self._drain_best(fam, batch, loc, acc)
            if acc is not None:
                self._pack(fam, acc, out)
        if self.trailer and self.idle:
            for m, msgs in self.trailer.items():
                if msgs and m in self.members:
                    out[m] = out.get(m, ()) + tuple(msgs)
            self.trailer = {}
        return out, done

    def _drain_run(self, fam, src: Source, attrs, chunk: list, acc: _Out) -> None:
        """Prefixes new to the Loc-RIB from one UPDATE, unchanged since: all have ``src``'s
        route with ``attrs`` and nothing before, so one export result covers them all."""
        result = self.context(src, attrs, chunk[0], fam)
        if result is None:
            return  # never advertised
        excl = src if src.group is self else None
        echo = self._echo_of(result, excl) if self.echo else None
        key = (id(result), id(excl), id(echo))
        entry = acc.buckets.get(key)
        if entry is None:
            acc.buckets[key] = (result, _apart(excl, echo), list(chunk))
        else:
            entry[2].extend(chunk)

    def _drain_fresh(self, fam, chunk: list, loc: LocRib, acc: _Out) -> None:
        """Prefixes the members hold nothing for (an initial table, a run changed since):
        each one's current best route, exported; consecutive prefixes with the same route
        share its result and bucket. Not for a prefix-dependent export (see _drain_best)."""
        table_get = loc.table.get
        export = self.context
        buckets = acc.buckets
        skip = acc.skip
        echoing = self.echo
        last = bl = None
        for p in chunk:
            r = table_get(p)
            if r is None:
                continue  # gone since: nothing to send, nothing was sent
            if r is not last:
                if type(r) is Dest:
                    r = r.best
                    if r is last:
                        bl.append(p)
                        continue
                last = r
                src = r.source
                result = export(src, r.attrs, p, fam)
                if result is None:
                    bl = skip  # filtered, never advertised
                    continue
                excl = src if src.group is self else None
                echo = self._echo_of(result, excl) if echoing else None
                key = (id(result), id(excl), id(echo))
                entry = buckets.get(key)
                if entry is None:
                    bl = []
                    buckets[key] = (result, _apart(excl, echo), bl)
                else:
                    bl = entry[2]
            bl.append(p)

    def _drain_best(self, fam, batch: dict, loc: LocRib, acc: _Out) -> None:
        """One batch of best-path changes, read from the Loc-RIB -> buckets in ``acc``.

        Consecutive prefixes usually share their best path's source and attribute set (they
        came in one UPDATE), so the export result and the bucket of the previous prefix are
        reused without another lookup; buckets are keyed by object ids (C-level hashing).
        """
        table_get = loc.table.get
        export = self.context
        buckets = acc.buckets
        withdraws = acc.withdraws
        member_withdraws = acc.member_withdraws
        skip = acc.skip
        prefix_dependent = self.prefix_dependent
        last_src = last_attrs = last_bucket = None
        echoing = self.echo
        echo = None
        for p, old in batch.items():
            cur = table_get(p)
            if cur is None:
                if old is None:
                    continue  # had no best before and has none now: nothing was sent
                old_src = old.source
                if old_src is not None and old_src.group is not self:
                    old_src = None
                wl = withdraws.get(old_src)
                if wl is None:
                    wl = withdraws[old_src] = []
                wl.append(p)
                continue
            best = cur.best if type(cur) is Dest else cur
            src = best.source
            attrs = best.attrs
            if old is None and attrs is last_attrs and src is last_src and not prefix_dependent:
                last_bucket.append(p)
                continue
            result = export(src, attrs, p, fam)
            if result is None:
                if old is None:
                    last_src, last_attrs, last_bucket = src, attrs, skip
                    continue  # never advertised
                old_src = old.source
                if old_src is not None and old_src.group is not self:
                    old_src = None
                wl = withdraws.get(old_src)
                if wl is None:
                    wl = withdraws[old_src] = []
                wl.append(p)
                last_src = None
                continue
            excl = src if src.group is self else None
            if excl is not None and old is not None and old.source is not excl:
                # The member that now owns the best path had been sent the old one.
                member_withdraws.setdefault(excl, []).append(p)
            if echoing:
                echo = self._echo_of(result, excl)
                if echo is not None and old is not None:  # it may hold the route from before
                    member_withdraws.setdefault(echo, []).append(p)
            key = (id(result), id(excl), id(echo))
            entry = buckets.get(key)
            if entry is None:
                entry = buckets[key] = (result, _apart(excl, echo), [])
            bl = entry[2]
            bl.append(p)
            last_src, last_attrs, last_bucket = src, attrs, bl

    def _pack(self, fam, acc: _Out, out: dict) -> None:
        """Pack what a drain pass found, the same bytes for every member (less split horizon).

        Every member gets the same list object unless split horizon leaves something out
        for it (the lists in ``out`` are shared: never extended in place)."""
        ctx = self.ctx
        shared: list = []  # for every member
        apart: dict = {}  # member source -> what every other member gets
        for excl, prefixes in acc.withdraws.items():
            msgs = pack_withdraw(fam, prefixes, ctx)
            if excl is None:
                shared += msgs
            else:
                apart.setdefault((excl,), []).extend(msgs)
        packed = self.packed
        for attrs, ex, prefixes in acc.buckets.values():
            if len(prefixes) == 1:
                msgs = _packed_one(packed, fam, attrs, prefixes, ctx)
            else:
                msgs = pack_announce(fam, attrs, prefixes, ctx)
            if not ex:
                shared += msgs
            else:
                apart.setdefault(ex, []).extend(msgs)
        own = {src: pack_withdraw(fam, ps, ctx) for src, ps in acc.member_withdraws.items()}
        self._deliver(out, shared, apart, own)

    def _deliver(self, out: dict, shared: list, apart: dict, own: dict) -> None:
        """Hand each member its messages: ``shared`` to all, ``apart[(src, ...)]`` to all but
        the member sources in the key, ``own[src]`` to that member only; one list object for
        every member that split horizon leaves nothing out of."""
        if apart:
            everything = list(shared)
            for msgs in apart.values():
                everything.extend(msgs)
        else:
            everything = shared
        everything = tuple(everything)  # one object for every member: see send_updates
        members = self.members
        if not apart and not own:
            if not everything:
                return
            if not out:
                out.update(dict.fromkeys(members, everything))
                return
        left_out = {s for ex in apart for s in ex}
        for m in members:
            src = m.source
            if src in left_out or src in own:
                mine = list(shared)  # extended in place: linear in what the member gets
                for ex, msgs in apart.items():
                    if src not in ex:
                        mine.extend(msgs)
                mine.extend(own.get(src, ()))
                mine = tuple(mine)
            else:
                mine = everything
            if mine:
                prev = out.get(m)
                out[m] = prev + mine if prev else mine

    def _echo_of(self, result: AttrSet, excl) -> Source | None:
        """The member (other than ``excl``) whose own address is ``result``'s NEXT_HOP, for
        ``skip_next_hop_echo``: it is not sent the route (``echomap``: set by :meth:`drain`)."""
        nh = result.next_hop
        if nh is None:
            return None
        src = self.echomap.get(nh[:16] if len(nh) == 32 else nh)  # an IPv6 pair: the global
        return None if src is excl else src

    def _drain_addpath(self, fam, batch: dict, loc: LocRib, out: dict, ref=None) -> None:
        """ADD-PATH send: every candidate path goes out with a path id of its own.

        With ``ref`` (a group of the same export key and context that has no runs): a
        prefix it has nothing pending for has, in its ``advertised``, the export result of
        every current path (a path it has none for was filtered), computed since the
        prefix last changed; those results are taken as they are. Members that join while
        the table fills up (a route reflector's clients coming up one after the other,
        each with routes of its own) then cost no export of the table each."""
        table = loc.table
        export = self.context
        ctx = self.ctx
        adv = self.advertised[fam]
        buckets: dict = {}
        withdraw_items: dict = {}  # excluded source -> [(pid, prefix)]
        echo_withdraws: dict = {}  # member source -> [(pid, prefix)] (skip_next_hop_echo)
        echoing = self.echo
        echo = None
        ref_adv = ref_pending = None
        if ref is not None and fam in ref.addpath:
            ref_adv = ref.advertised[fam]
            ref_pending = ref.pending[fam]
        known = None
        for p in batch:
            new: dict = {}
            old = adv.get(p) or {}
            if ref_adv is not None and p not in ref_pending:
                known = ref_adv.get(p) or _NONE
            for r in routes_of(table.get(p)):
                src = r.source
                pid = _path_id(r.cand)
                if known is None:
                    result = export(src, r.attrs, p, fam)
                else:
                    hit = known.get(pid)
                    if hit is None:
                        continue  # filtered
                    result = hit[0]
                    if result is None or hit[1] is not src:
                        result = export(src, r.attrs, p, fam)
                if result is None:
                    continue
                new[pid] = (result, src)
                prev = old.get(pid)
                if prev is not None and prev[0] is result:
                    continue  # unchanged
                excl = src if src.group is self else None
                if echoing:
                    echo = self._echo_of(result, excl)
                    if echo is not None and prev is not None:
                        echo_withdraws.setdefault(echo, []).append((pid, p))
                bl = buckets.get((result, excl, echo))
                if bl is None:
                    bl = buckets[(result, excl, echo)] = []
                bl.append((pid, p))
            for pid, (_r, src) in old.items():
                if pid not in new:
                    excl = src if src.group is self else None
                    withdraw_items.setdefault(excl, []).append((pid, p))
            if new:
                adv[p] = new
            else:
                adv.pop(p, None)
            known = None
        shared: list = []
        apart: dict = {}
        for excl, items in withdraw_items.items():
            msgs = pack_withdraw(fam, items, ctx)
            if excl is None:
                shared += msgs
            else:
                apart.setdefault((excl,), []).extend(msgs)
        packed = self.packed
        for (attrs, excl, echo), items in buckets.items():
            if len(items) == 1:
                msgs = _packed_one(packed, fam, attrs, items, ctx)
            else:
                msgs = pack_announce(fam, attrs, items, ctx)
            ex = _apart(excl, echo)
            if not ex:
                shared += msgs
            else:
                apart.setdefault(ex, []).extend(msgs)
        own = {src: pack_withdraw(fam, items, ctx) for src, items in echo_withdraws.items()}
        self._deliver(out, shared, apart, own)


_NONE: dict = {}  # a reference group's advertised paths of a prefix it sends nothing for


def _apart(excl, echo) -> tuple:
    """The member sources a bucket is kept from (split horizon, next-hop echo)."""
    if echo is None:
        return () if excl is None else (excl,)
    return (echo,) if excl is None else (excl, echo)


# Single-prefix UPDATEs kept per export key: when each route has a set of its own (a Calico
# reflector: one block per node, each with its node's next hop), every member that joins
# needs the same UPDATEs again; they are not packed again. Bounded (cleared when full).
PACKED_MAX = 16384


def _packed_one(packed: dict, fam, attrs: AttrSet, prefixes: list, ctx: Context) -> list:
    key = (id(attrs), fam, prefixes[0])
    hit = packed.get(key)
    if hit is not None and hit[0]() is attrs:
        return hit[1]
    msgs = pack_announce(fam, attrs, prefixes, ctx)
    if len(packed) >= PACKED_MAX:
        packed.clear()
    # The set is held weakly and its entry goes with it (no set kept alive, no id reused).
    packed[key] = (weakref.ref(attrs, lambda _r, k=key, d=packed: d.pop(k, None)), msgs)
    return msgs


def _same_encoding(a: Context, b: Context) -> bool:
    """Whether UPDATEs packed for one context are right for the other too."""
    return (
        a.as4 == b.as4
        and a.add_path_tx == b.add_path_tx
        and a.extended_message == b.extended_message
    )


def _sent(adv: dict) -> dict:
    return {p: {pid: r for pid, (r, _s) in d.items()} for p, d in adv.items()}


class _Maybe:
    """``pending`` marker: the member may hold some route for the prefix (from a source that is
    not a member of the group), so a prefix with nothing to send gets a withdrawal."""

    source = None
    __slots__ = ()


MAYBE = _Maybe()


# A change of this many prefixes or more, all of whose best routes before came from one
# source (that source's session went down: its whole table is withdrawn), waits in an idle
# group as a run (a list of prefixes and the source) instead of a ``pending`` entry per
# prefix holding its old route: at a million prefixes, 8 MiB instead of ~40 MiB per group,
# and the old routes are freed at once instead of after the drain.
GONE_RUN_MIN = 1024


def _has_gone(q) -> bool:
    """Whether a family's runs hold a run of withdrawals (see :func:`_gone_run`)."""
    return any(r[4] is not None and r[4] is not MAYBE for r in q)


def _gone_run(touched: dict) -> list | None:
    """``touched`` as a run ``[prefixes, 0, None, None, source]`` when every prefix had a
    best route before and all came from one source; else None."""
    values = iter(touched.values())
    first = next(values)
    if first is None:
        return None
    src = first.source
    for r in values:
        if r is None or r.source is not src:
            return None
    return [list(touched), 0, None, None, src]


def _path_id(c) -> int:
    """A path id per candidate, stable while the source exists."""
    return c.tx_id


SLOW_AFTER = 2.0  # seconds a member may be unable to take output before it leaves its group


def _slow(member, now: float) -> bool:
    since = getattr(member, "unwritable_since", None)
    return not member.writable and since is not None and now - since >= SLOW_AFTER


class Exporter:
    """All export groups over one set of Loc-RIBs."""

    def __init__(self, locribs: dict) -> None:
        self.locribs = locribs
        self.steady: dict = {}  # export key -> ExportGroup
        self.syncing: list = []  # groups of members receiving their initial table
        self.packed: dict = {}  # export key -> single-prefix UPDATEs (see _packed_one)
        self.fresh: dict = {}  # export key -> its syncing group that has sent nothing yet
        self._index = 0

    def groups(self) -> list:
        return list(self.steady.values()) + self.syncing

    def join(
        self, member, key, ctx: Context, context: ExportFn, families, trailer=None
    ) -> ExportGroup:
        """``member`` (with .source, .writable) starts receiving its initial table.

        ``trailer`` is what it gets once the table is out: End-of-RIB per family by default.
        It joins a syncing group of ``key`` that has not been drained yet (a session that came
        up since the last drain) if there is one, else a new one.
        """
        g = self._fresh_group(key, ctx, context, families)
        if g is None:
            g = self._new_group(key, ctx, context, families)
            g.full_sync(self.locribs)
            g.fresh = True
            self.fresh[key] = g
        self._add(g, member, trailer)
        return g

    def _new_group(self, key, ctx: Context, context: ExportFn, families) -> ExportGroup:
        """An empty syncing group (nothing pending, no member yet)."""
        self._index += 1
        g = ExportGroup(key, ctx, context, families, self._index)
        g.packed = self._packed_for(key)
        self._listen(g)
        self.syncing.append(g)
        return g

    @staticmethod
    def _add(g: ExportGroup, member, trailer) -> None:
        g.members.append(member)
        member.source.group = g
        g.trailer[member] = (
            [end_of_rib(f) for f in g.families] if trailer is None else list(trailer)
        )

    def _fresh_group(self, key, ctx: Context, context, families) -> ExportGroup | None:
        """The syncing group of ``key`` that has sent nothing yet, if any: its members hold
        nothing and everything in the Loc-RIB is pending in it (its initial table, then every
        change since), which is all a new member needs too."""
        g = self.fresh.get(key)
        if (
            g is not None
            and g.fresh
            and g.members
            and g.context is context
            and g.families == tuple(families)
            and _same_encoding(g.ctx, ctx)
            and g.writable()
        ):
            return g
        return None

    def rejoin(
        self, member, key, ctx, context, families, trailer=None, resync: bool = False
    ) -> ExportGroup:
        """``member`` gets its table again (route refresh), keeping what was still pending.

        ``resync``: the export rules changed (policy, reflection role), so every prefix is
        treated as possibly advertised before: what the new rules filter is withdrawn.
        """
        old = member.source.group
        self.leave(member)
        if not resync and old is None:
            return self.join(member, key, ctx, context, families, trailer)
        # what the member may hold is its own: a group of its own, never shared (not fresh)
        g = self._new_group(key, ctx, context, families)
        self._add(g, member, trailer)
        # what the old group still had pending says what the member may hold: those
        # prefixes keep their entry, the rest of the table is sent again
        exclude = None
        if old is not None:
            old.settle_runs()
            exclude = {f: old.pending.get(f) for f in g.families}
        g.full_sync(self.locribs, MAYBE if resync else None, exclude)
        if old is not None:
            for fam in g.families:
                g.pending[fam].update(old.pending.get(fam, {}))
                if fam in g.addpath and fam in old.addpath:
                    # what the peer holds, with no result: every path is sent again
                    g.advertised[fam] = {
                        p: {pid: (None, s) for pid, (_r, s) in d.items()}
                        for p, d in old.advertised[fam].items()
                    }
        return g

    def leave(self, member) -> None:
        g = member.source.group
        member.source.group = None
        if g is None:
            return
        if member in g.members:
            g.members.remove(member)
        g.trailer.pop(member, None)
        if not g.members:
            self._unlisten(g)
            if g in self.syncing:
                self.syncing.remove(g)
            if self.fresh.get(g.key) is g:
                del self.fresh[g.key]
            if self.steady.get(g.key) is g:
                del self.steady[g.key]
            if all(x.key != g.key for x in self.groups()):
                self.packed.pop(g.key, None)

    def _packed_for(self, key) -> dict:
        return self.packed.setdefault(key, {})

    def _listen(self, g: ExportGroup) -> None:
        for fam in g.families:
            loc = self.locribs.get(fam)
            if loc is not None and g not in loc.listeners:
                loc.listeners.append(g)

    def _unlisten(self, g: ExportGroup) -> None:
        for loc in self.locribs.values():
            if g in loc.listeners:
                loc.listeners.remove(g)

    def backlog(self) -> int:
        """Pending prefixes in groups that can send now (a group stuck behind a slow member
        is not counted: its backlog is bounded by the table and must not hold others up)."""
        total = 0
        for g in self.groups():
            n = g.pending_count()
            if n and g.writable():
                total += n
        return total

    def backlog_over(self, limit: int) -> bool:
        """``backlog() > limit``, without asking every member whether it is writable while
        everything pending (writable or not) is within the limit."""
        if sum(g.pending_count() for g in self.groups()) <= limit:
            return False
        return self.backlog() > limit

    def has_work(self) -> bool:
        return any(not g.idle or g.trailer for g in self.groups())

    def drain(self, budget: int = 20000, now: float | None = None) -> tuple[dict, bool]:
        """Pack output for every writable group. Returns ({member: (bytes, ...)}, more_pending).

        With ``now``, a member that has not been able to take output for ``SLOW_AFTER``
        seconds is moved to a group of its own, so that it no longer holds up the others.
        """
        result: dict = {}
        more = False
        for g in self.groups():
            if g.idle and not g.trailer:
                continue
            if not g.writable():
                if now is not None and len(g.members) > 1:
                    slow = [m for m in g.members if _slow(m, now)]
                    if slow and len(slow) < len(g.members):
                        self._split(g, slow)
                if not g.writable():
                    more = True
                    continue
            ref = self.steady.get(g.key)
            if ref is g or ref is None or ref.context is not g.context or ref.run_count:
                ref = None
            out, _done = g.drain(self.locribs, budget, ref)
            if out:
                result.update(out)  # a member is in one group only
            if not g.idle:
                more = True
        if self.fresh:
            self.fresh = {k: g for k, g in self.fresh.items() if g.fresh}
        self._merge()
        return result, more

    def _split(self, g: ExportGroup, slow: list) -> ExportGroup:
        """Move ``slow`` members out of ``g`` into a new group with the same state (what is
        pending, and for ADD-PATH what was sent); it merges back once both are idle."""
        self._index += 1
        ng = ExportGroup(g.key, g.ctx, g.context, g.families, self._index)
        ng.prefix_dependent = g.prefix_dependent
        ng.packed = g.packed
        ng.pending = {f: dict(p) for f, p in g.pending.items()}
        ng.runs = {f: deque([list(r) for r in q]) for f, q in g.runs.items()}
        ng.run_count = g.run_count
        ng.advertised = {f: {p: dict(d) for p, d in adv.items()} for f, adv in g.advertised.items()}
        for m in slow:
            g.members.remove(m)
            ng.members.append(m)
            m.source.group = ng
            if m in g.trailer:
                ng.trailer[m] = g.trailer.pop(m)
        self._listen(ng)
        self.syncing.append(ng)
        return ng

    def _merge(self) -> None:
        """Fold idle syncing groups into the steady group of their export key."""
        for g in list(self.syncing):
            if not g.idle or g.trailer:
                continue
            steady = self.steady.get(g.key)
            if steady is None:
                self.syncing.remove(g)
                self.steady[g.key] = g
                continue
            if (
                not steady.idle
                or steady.families != g.families
                or steady.addpath != g.addpath
                or not _same_encoding(steady.ctx, g.ctx)
            ):
                continue
            if steady.addpath and any(
                _sent(steady.advertised[f]) != _sent(g.advertised[f]) for f in steady.addpath
            ):
                continue
            for m in g.members:
                steady.members.append(m)
                m.source.group = steady
            self._unlisten(g)
            self.syncing.remove(g)
