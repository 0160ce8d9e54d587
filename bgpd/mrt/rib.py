"""A :class:`~bgpd.mrt.dump.TableSnapshot` from today's :mod:`bgpd.rib` (read only).

This is the adapter between the RIB's shapes and the dump's plain-data input; when the RIB
moves (bgpd/rde), this is the one function to follow it. It reads:

* ``rib.loc[family].table``: prefix -> one candidate, or a ``Dest`` of several
  (``best_of``, ``candidates_of``);
* a candidate: a ``Source`` (no ADD-PATH) or a ``Path`` (``.source``, ``.pid``), whose
  attributes are ``candidate.attrs_for(family, prefix)`` (what the neighbor sent, after import
  policy: bgpd keeps no pre-policy copy of accepted routes);
* the neighbors to list, as ``(Source, DumpPeer)`` pairs: local origins (static, kernel,
  connected, networks) have no peer entry and show only as the Loc-RIB's best path;
* optionally, per neighbor, the routes its import dropped (the engine's ``Peer.filtered``).
"""

from bgpd.rib.table import best_of, candidates_of

from .dump import DumpPeer, TableSnapshot


def snapshot_from_rib(
    rib,
    neighbors,
    *,
    router_id: str,
    local_as: int,
    now: float,
    view_name: str = "bgpd",
    filtered=None,
) -> TableSnapshot:
    """The snapshot :func:`~bgpd.mrt.dump.dump_table` consumes, iterating the live RIB lazily
    (prefix keys copied per family when its turn comes, each looked up when reached).

    ``filtered``, when given, lists per neighbor (in the order of ``neighbors``) the routes
    its import dropped, ``{family: {key: attrs}}`` (keys as in ``Source.adj_in``): they are in
    its Adj-RIB-In too, and are written as its entries, with the attributes as received."""
    neighbors = list(neighbors)
    index = {id(src): i for i, (src, _peer) in enumerate(neighbors)}
    peers = [peer for _src, peer in neighbors]
    filtered = list(filtered or ())

    def dropped(fam) -> dict:
        """prefix -> [(peer index, attrs, path id)] of the routes import dropped."""
        out: dict = {}
        for i, tables in enumerate(filtered):
            for k, attrs in list((tables or {}).get(fam, {}).items()):
                pid, p = k if isinstance(k, tuple) else (None, k)
                out.setdefault(p, []).append((i, attrs, pid))
        return out

    def routes():
        for fam, loc in rib.loc.items():
            table = loc.table
            extra = dropped(fam) if filtered else {}
            keys = list(table)
            if extra:
                keys += [p for p in extra if p not in table]
            for p in keys:
                entry = table.get(p)
                paths = []
                best = None
                if entry is not None:
                    best = best_of(entry)
                    for c in candidates_of(entry):
                        src = c.source
                        i = index.get(id(src))
                        if i is None:
                            continue
                        pid = c.pid if fam in src.addpath else None
                        paths.append((i, c.attrs_for(fam, p), pid))
                if extra:
                    paths += extra.get(p, ())
                if best is None and not paths:
                    continue  # withdrawn since the dump began
                yield fam, p, best.attrs_for(fam, p) if best is not None else None, paths

    return TableSnapshot(
        router_id=router_id,
        local_as=local_as,
        peers=peers,
        routes=routes(),
        view_name=view_name,
        timestamp=now,
    )


__all__ = ["DumpPeer", "snapshot_from_rib"]
