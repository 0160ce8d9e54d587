"""Route-reflection rules (RFC 4456) and the BGP export/import rules around them.

Who gets what (RFC 4456 §6, RFC 4271 §9.1.3):
- routes from eBGP neighbors and local routes go to every neighbor;
- routes from a client go to every neighbor (clients and non-clients);
- routes from a non-client iBGP neighbor go to clients only (and eBGP neighbors);
- without a cluster ID (not a reflector) iBGP routes never go to other iBGP neighbors.
When reflecting, ORIGINATOR_ID is set to the originating neighbor's router ID if absent and our
cluster ID is prepended to CLUSTER_LIST; nothing else changes (NEXT_HOP included). On import,
routes carrying our router ID as ORIGINATOR_ID or our cluster ID in CLUSTER_LIST are dropped.
"""

from dataclasses import dataclass

from bgpd.rib import Source
from bgpd.wire import AttrSet
from bgpd.wire.constants import AS_SEQUENCE, NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED


@dataclass(frozen=True, slots=True)
class Target:
    """The export context of a group of neighbors (what the rules need to know about them)."""

    ibgp: bool
    rr_client: bool
    local_as: int
    next_hop: bytes | None  # our address toward them (per family, for next-hop self)
    next_hop_self: bool | None = None  # None: automatic (eBGP yes, iBGP only for local routes)
    send_med: bool = False  # propagate a MED learned from another AS to eBGP (off by RFC)


def allowed(src: Source, target: Target, cluster_id: bytes | None) -> bool:
    """RFC 4456 §6 / RFC 4271 §9.1.3: may a route from ``src`` go to ``target``?"""
    if not src.is_bgp or not src.ibgp or not target.ibgp:
        return True
    if cluster_id is None:
        return False  # iBGP split horizon
    return src.rr_client or target.rr_client


# ORIGINATOR_ID and CLUSTER_LIST values of reflected sets, one object for all the sets that
# carry the same one (a set is exported once, but a table has thousands of sets from one
# neighbor). Emptied when full: it only saves memory, the sets keep their values.
_SHARED: dict = {}
_SHARED_MAX = 4096


def _shared(value):
    v = _SHARED.get(value)
    if v is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        v = _SHARED[value] = value
    return v


def community_allows(attrs: AttrSet, target: Target) -> bool:
    """RFC 1997 well-known communities."""
    comms = attrs.communities
    if not comms:
        return True
    if NO_ADVERTISE in comms:
        return False
    return target.ibgp or (NO_EXPORT not in comms and NO_EXPORT_SUBCONFED not in comms)


def export_attrs(
    src: Source,
    attrs: AttrSet,
    target: Target,
    cluster_id: bytes | None,
) -> AttrSet | None:
    """The attribute set ``target`` receives for a route from ``src`` (None: not sent)."""
    if attrs is None or not allowed(src, target, cluster_id) or not community_allows(attrs, target):
        return None
    if target.ibgp:
        changes: dict = {}
        if src.is_bgp and src.ibgp:
            # Reflection (RFC 4456 §8): keep everything, add ORIGINATOR_ID and CLUSTER_LIST.
            if attrs.originator_id is None:
                changes["originator_id"] = _shared(src.router_id.to_bytes(4, "big"))
            changes["cluster_list"] = _shared((cluster_id, *attrs.cluster_list))
            if target.next_hop_self and target.next_hop is not None:
                changes["next_hop"] = target.next_hop
        else:
            if attrs.local_pref is None:
                changes["local_pref"] = 100
            if (not src.is_bgp and attrs.next_hop is None) or target.next_hop_self:
                if target.next_hop is None:
                    return None
                changes["next_hop"] = target.next_hop
            if attrs.as_path is None or (attrs.as_path and not src.is_bgp):
                # A local route's AS path holds nothing but prepends of our own AS, meant for
                # eBGP (route API, services): an iBGP neighbor would see its own AS (a loop).
                changes["as_path"] = ()
        return attrs.replace(**changes) if changes else attrs
    # eBGP (RFC 4271 §5.1.2-5.1.5): prepend our AS, next hop self, no LOCAL_PREF, no
    # ORIGINATOR_ID/CLUSTER_LIST, MED only if we set it ourselves.
    if target.next_hop is None:
        return None
    path = attrs.as_path or ()
    if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
        new_path = ((AS_SEQUENCE, (target.local_as, *path[0][1])), *path[1:])
    else:
        new_path = ((AS_SEQUENCE, (target.local_as,)), *path)
    changes = {
        "as_path": new_path,
        "local_pref": None,
        "originator_id": None,
        "cluster_list": (),
    }
    if target.next_hop_self is not False or attrs.next_hop is None:
        changes["next_hop"] = target.next_hop
    if src.is_bgp and not target.send_med:
        changes["med"] = None
    return attrs.replace(**changes)


def import_ok(
    attrs: AttrSet,
    src: Source,
    local_as: int,
    router_id: bytes,
    cluster_id: bytes | None,
    allow_own_as: int = 0,
) -> str | None:
    """Why a route must be dropped on import (loop prevention), or None if it is fine."""
    if src.ibgp:
        if attrs.originator_id == router_id:
            return "ORIGINATOR_ID is our router ID"
        if cluster_id is not None and cluster_id in attrs.cluster_list:
            return "our cluster ID is in CLUSTER_LIST"
    else:
        count = 0
        for _t, asns in attrs.as_path or ():
            count += asns.count(local_as)
        if count > allow_own_as:
            return "our AS is in AS_PATH"
    return None
