"""Routes, Adj-RIB-In, Loc-RIB, Adj-RIB-Out and the decision process. Sans-I/O."""

from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

from .decision import STEP_NAMES, DecisionConfig
from .export import Exporter, ExportGroup
from .source import PREFERENCE, Path, Route, Source, router_id_int
from .table import Dest, LocRib, best_of, best_route, candidates_of, multipath_of, routes_of


class Rib:
    """The Loc-RIBs of every family we carry, and the export groups fed from them."""

    def __init__(self, cfg: DecisionConfig | None = None, families=(IPV4_UNICAST, IPV6_UNICAST)):
        self.cfg = cfg or DecisionConfig()
        self.loc: dict = {f: LocRib(f, self.cfg) for f in families}
        self.exporter = Exporter(self.loc)

    def flush(self, source: Source, families=None) -> None:
        for fam, t in self.loc.items():
            if families is None or fam in families:
                t.flush(source)

    def mark_stale(self, source: Source, families) -> int:
        return sum(self.loc[f].mark_stale(source) for f in families if f in self.loc)

    def sweep_stale(self, source: Source, families=None) -> int:
        fams = list(source.stale) if families is None else families
        return sum(self.loc[f].sweep_stale(source) for f in fams if f in self.loc)

    def commit(self) -> None:
        for t in self.loc.values():
            t.publish()


__all__ = [
    "PREFERENCE",
    "STEP_NAMES",
    "DecisionConfig",
    "Dest",
    "ExportGroup",
    "Exporter",
    "LocRib",
    "Path",
    "Rib",
    "Route",
    "Source",
    "best_of",
    "best_route",
    "candidates_of",
    "multipath_of",
    "routes_of",
    "router_id_int",
]
