"""BMP's view of today's :mod:`bgpd.rib` (read only): resync tables, Loc-RIB changes, counts.

The adapters between the RIB's shapes and :class:`~bgpd.bmp.service.BmpService`; when the RIB
moves (bgpd/rde), these are what follow it:

* :class:`RibTables` is the ``tables_provider()`` result: a neighbor's Adj-RIB-In is its
  ``Source.adj_in[family]`` (keys are prefixes, or ``(path_id, prefix)`` with ADD-PATH;
  attributes after import policy, bgpd keeps no pre-policy copy), the Loc-RIB is each
  ``LocRib.table``'s best candidate;
* :class:`LocRibListener` goes in every ``LocRib.listeners``: each commit's touched prefixes
  join the service's pending set (``loc_rib_touched``), read back in slices with
  :meth:`RibTables.best_many` (the service's ``loc_rib_lookup``);
* :func:`rib_stats` is a ``stats_provider()`` body: routes per Adj-RIB-In and in the Loc-RIB
  (plus whatever counters the daemon keeps, e.g. prefixes rejected by import policy).
"""

from bgpd.rib.source import Route
from bgpd.rib.table import best_route

from .monitor import live_items


class RibTables:
    """``adj_rib_in(key)`` / ``loc_rib()`` over the live RIB. ``sources`` maps the BMP peer
    key (the one given to ``peer_up``) to that neighbor's ``Source``."""

    def __init__(self, rib, sources: dict) -> None:
        self.rib = rib
        self.sources = sources

    def adj_rib_in(self, key):
        src = self.sources.get(key)
        if src is None:
            return
        for fam, table in src.adj_in.items():
            for k, attrs in live_items(table):
                yield fam, k, attrs

    def best_many(self, family, keys: list) -> list:
        """The Loc-RIB's attribute set for each prefix (None: no best path), for
        ``BmpService(loc_rib_lookup=...)``: one Loc-RIB lookup per prefix (an entry is a
        Route, the set at hand, or a Dest)."""
        loc = self.rib.loc.get(family)
        if loc is None:
            return [None] * len(keys)
        entries = list(map(loc.table.get, keys))
        out = []
        for e in entries:
            t = type(e)
            if t is Route:
                out.append(e.attrs)
            elif e is None:
                out.append(None)
            else:
                out.append(e.best.attrs)
        return out

    def loc_rib(self):
        for fam, loc in self.rib.loc.items():
            for p, entry in live_items(loc.table):
                attrs = best_route(entry).attrs
                if attrs is not None:
                    yield fam, p, attrs


class LocRibListener:
    """A ``LocRib`` listener: each commit's touched prefixes go to
    :meth:`BmpService.loc_rib_touched` (a dict update, nothing read or encoded on the commit's
    path); the service reads them back through :meth:`RibTables.best_many` in slices."""

    __slots__ = ("bmp",)

    def __init__(self, bmp) -> None:
        self.bmp = bmp

    def rib_changed(self, family, touched: dict, locrib) -> None:
        if self.bmp.active:  # no station up: nothing to do (a station resyncs on connecting)
            self.bmp.loc_rib_touched(family, touched)


def rib_stats(rib, sources: dict, counters: dict | None = None) -> dict:
    """``{"peers": {key: {...}}, "loc_rib": {...}}`` for :meth:`BmpService.send_stats`:
    ``adj_rib_in`` and ``adj_rib_in_family`` per neighbor, ``loc_rib`` and
    ``loc_rib_family``; ``counters`` adds the daemon's own per-peer values by statistic name
    (``{key: {"rejected": n, ...}}``)."""
    peers = {}
    for key, src in sources.items():
        fams = {fam: len(t) for fam, t in src.adj_in.items()}
        values = {"adj_rib_in": sum(fams.values()), "adj_rib_in_family": fams}
        if counters and key in counters:
            values.update(counters[key])
        peers[key] = values
    loc = {fam: len(t.table) for fam, t in rib.loc.items()}
    return {"peers": peers, "loc_rib": {"loc_rib": sum(loc.values()), "loc_rib_family": loc}}


__all__ = ["LocRibListener", "RibTables", "rib_stats"]
