"""The decision process (RFC 4271 §9.1.2, RFC 4456 §9) as an ordered list of named steps.

Each step compares two candidates and returns a negative number when the first is better, a
positive one when the second is, 0 when they tie. The first non-zero step decides, and its
name is recorded on the loser. Candidates equal up to (and including) the IGP-cost step form
the multipath (ECMP) set, as OpenBGPD's similarity levels do.

MED: compared only between routes from the same neighboring AS unless ``always_compare_med``.
We do not do deterministic-MED grouping; selection runs over the whole candidate list on every
change, comparing each candidate with the current best, which makes the result depend only
on the set for the common cases (documented in docs/configuration.md).
"""

import functools
from dataclasses import dataclass

from bgpd.wire.constants import AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SEQUENCE, AS_SET


@dataclass(slots=True)
class DecisionConfig:
    always_compare_med: bool = False
    multipath: int = 1  # number of equal paths installed/used (BIRD's "merge paths")
    multipath_relax: bool = False  # allow ECMP across different AS paths of equal length
    ignore_as_path_length: bool = False
    nexthop_ok: object = None  # callable(family, attrs) -> bool; None: every next hop is fine
    igp_cost: object = None  # callable(family, attrs) -> int


class Cand:
    """A candidate as the steps see it: source, attributes, path id."""

    __slots__ = ("c", "src", "attrs", "pid", "stale", "fam")

    def __init__(self, c, attrs, stale: bool = False, fam=None) -> None:
        self.fam = fam
        self.c = c  # the Source or Path
        self.src = c.source
        self.attrs = attrs
        self.pid = c.pid
        self.stale = stale


def _lp(a) -> int:
    lp = a.attrs.local_pref
    return 100 if lp is None else lp


def _neighbor_as(attrs) -> int | None:
    """The AS the route came from: the first AS of the path outside confederation segments."""
    if not attrs.as_path:
        return 0  # originated in our own AS (RFC 4271 9.1.2.2 c)
    for t, asns in attrs.as_path or ():
        if t in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            continue
        if t == AS_SEQUENCE and asns:
            return asns[0]
        if t == AS_SET:
            return None
    return None


def _path_len(attrs) -> int:
    return attrs.as_path_len()  # AS_SET counts 1, confederation segments 0


def _preference(c) -> int:
    """The route's own preference (an import filter set it), else its source's."""
    attrs = c.attrs
    p = attrs.preference if attrs is not None else None
    return c.src.preference if p is None else p


def step_preference(a, b, cfg) -> int:
    return _preference(b) - _preference(a)


def step_nexthop(a, b, cfg) -> int:
    ok = cfg.nexthop_ok
    if ok is None:
        return 0
    return int(not ok(a.fam, a.attrs)) - int(not ok(b.fam, b.attrs))


def step_stale(a, b, cfg) -> int:
    # Fresh routes beat stale ones during graceful restart (RFC 4724 §4.2 leaves it open; BIRD
    # and OpenBGPD prefer fresh).
    return int(a.stale) - int(b.stale)


def step_local_pref(a, b, cfg) -> int:
    return _lp(b) - _lp(a)


def step_local(a, b, cfg) -> int:
    """Locally originated routes win over learned ones."""
    return int(a.src.kind == "bgp") - int(b.src.kind == "bgp")


def step_as_path(a, b, cfg) -> int:
    if cfg.ignore_as_path_length:
        return 0
    return _path_len(a.attrs) - _path_len(b.attrs)


def step_origin(a, b, cfg) -> int:
    return (a.attrs.origin or 0) - (b.attrs.origin or 0)


def step_med(a, b, cfg) -> int:
    if not cfg.always_compare_med:
        na, nb = _neighbor_as(a.attrs), _neighbor_as(b.attrs)
        if na is None or na != nb:
            return 0
    return (a.attrs.med or 0) - (b.attrs.med or 0)


def step_ebgp(a, b, cfg) -> int:
    return int(a.src.ibgp) - int(b.src.ibgp)


def step_igp_cost(a, b, cfg) -> int:
    cost = cfg.igp_cost
    if cost is None:
        return a.src.igp_cost - b.src.igp_cost
    return cost(a.fam, a.attrs) - cost(b.fam, b.attrs)


def _rid(c) -> int:
    oid = c.attrs.originator_id
    if oid is not None:
        return int.from_bytes(oid, "big")
    return c.src.router_id


def step_router_id(a, b, cfg) -> int:
    ra, rb = _rid(a), _rid(b)
    return (ra > rb) - (ra < rb)


def step_cluster_list(a, b, cfg) -> int:
    return len(a.attrs.cluster_list) - len(b.attrs.cluster_list)


def step_peer_address(a, b, cfg) -> int:
    ka, kb = a.src.address_key, b.src.address_key
    return (ka > kb) - (ka < kb)


def step_path_id(a, b, cfg) -> int:
    return (a.pid > b.pid) - (a.pid < b.pid)


STEPS = (
    ("preference", step_preference),
    ("nexthop_unreachable", step_nexthop),
    ("stale", step_stale),
    ("local_pref", step_local_pref),
    ("locally_originated", step_local),
    ("as_path_length", step_as_path),
    ("origin", step_origin),
    ("med", step_med),
    ("ebgp_over_ibgp", step_ebgp),
    ("igp_cost", step_igp_cost),
    ("router_id", step_router_id),
    ("cluster_list_length", step_cluster_list),
    ("peer_address", step_peer_address),
    ("path_id", step_path_id),
)
STEP_NAMES = tuple(name for name, _ in STEPS)
MULTIPATH_LEVEL = STEP_NAMES.index("igp_cost")  # equal through this step => multipath


def compare(a: Cand, b: Cand, cfg: DecisionConfig) -> tuple[int, int]:
    """(sign, step index): sign < 0 when ``a`` is better."""
    for i, (_name, fn) in enumerate(STEPS):
        r = fn(a, b, cfg)
        if r:
            return (-1 if r < 0 else 1), i
    return 0, len(STEPS)


def select(cands: list[Cand], cfg: DecisionConfig):
    """Best candidate, the multipath set (best first) and, per loser, the step that beat it.

    The multipath set is the best path and the next best of those equal to it (up to the
    IGP-cost step), in decision order, one per next hop: which ones are used never depends on
    the order the candidates arrived in (otherwise a speaker whose peers came and went would
    install another ECMP set than one given the same routes from a clean start).
    """
    best = cands[0]
    for c in cands[1:]:
        if compare(c, best, cfg)[0] < 0:
            best = c
    lost: dict = {}
    equal = []
    for c in cands:
        if c is best:
            continue
        _sign, step = compare(best, c, cfg)
        lost[c.c] = STEP_NAMES[step] if step < len(STEPS) else "equal"
        if cfg.multipath > 1 and step > MULTIPATH_LEVEL and _multipath_ok(best, c, cfg):
            equal.append(c)
    multipath = [best]
    if equal:
        if len(equal) > 1:
            equal.sort(key=functools.cmp_to_key(lambda a, b: _compare_ties(a, b, cfg)))
        hops = {best.attrs.next_hop}
        for c in equal:
            if len(multipath) >= cfg.multipath:
                break
            if c.attrs.next_hop not in hops:
                multipath.append(c)
                hops.add(c.attrs.next_hop)
    return best, multipath, lost


def _compare_ties(a: Cand, b: Cand, cfg: DecisionConfig) -> int:
    """Order candidates equal through the IGP-cost step by the steps after it."""
    for _name, fn in STEPS[MULTIPATH_LEVEL + 1 :]:
        r = fn(a, b, cfg)
        if r:
            return r
    return 0


def _multipath_ok(best: Cand, c: Cand, cfg: DecisionConfig) -> bool:
    """ECMP needs the same next-hop family and, unless relaxed, the same AS path."""
    if c.attrs.next_hop is None or best.attrs.next_hop is None:
        return False
    if best.attrs.next_hop == c.attrs.next_hop:
        return False  # same next hop adds nothing to forwarding
    if cfg.multipath_relax:
        return True
    return best.attrs.as_path == c.attrs.as_path
