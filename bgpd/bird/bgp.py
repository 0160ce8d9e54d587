"""The BGP attribute conventions of BIRD 1.6 around its filters.

A BIRD filter does not see a BGP route's attributes as they came off the wire, nor as bgpd's
own export rules would make them: BIRD prepares them first, and Calico's filters depend on it
(``defined(bgp_local_pref)`` is always true for a BGP route; a local route exported to a peer
carries LOCAL_PREF 100 in the export filter). These functions do what BIRD does, on bgpd's
interned :class:`~bgpd.wire.attrs.AttrSet`:

* :func:`import_attrs`: what a route received from a neighbor holds before its import filter
  runs (proto/bgp/attrs.c ``bgp_decode_attrs``): LOCAL_PREF from an external neighbor is
  dropped (unless ``allow bgp_local_pref``), and a route without one gets
  ``default bgp_local_pref`` (100).
* :func:`export_attrs`: what a route offered to neighbor ``to`` holds when its export filter
  runs, or None when BIRD does not offer it (``bgp_import_control``): not back to where it
  came from, not iBGP to iBGP unless one side is a route-reflection client, not with our
  cluster ID in CLUSTER_LIST toward a client, not against NO_ADVERTISE / NO_EXPORT; a
  locally originated route gets ORIGIN IGP, an AS_PATH (empty toward iBGP, our AS toward
  eBGP), a NEXT_HOP and LOCAL_PREF 100 (``bgp_create_attrs``, over whatever the route had); a
  BGP route gets our AS prepended and MED set to 0 toward eBGP, the NEXT_HOP rewritten or
  kept, and ORIGINATOR_ID/CLUSTER_LIST when reflected (``bgp_update_attrs``).
* :func:`wire_attrs`: what goes out after the filter accepted: community lists and
  CLUSTER_LIST sorted; toward eBGP no LOCAL_PREF (unless ``allow bgp_local_pref``), no
  ORIGINATOR_ID or CLUSTER_LIST, no non-transitive extended community.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpd.wire.attrs import AttrSet
from bgpd.wire.constants import AS_SEQUENCE, NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED

LLGR_STALE = 0xFFFF0006


@dataclass(frozen=True)
class Peer:
    """One ``protocol bgp`` as its export and import rules need it (from
    :class:`~bgpd.bird.model.Bgp` and the session: see :func:`peer_of`)."""

    name: str
    local_as: int
    remote_as: int
    source_address: bytes  # our address on the session (the NEXT_HOP we set)
    remote_id: int = 0  # the neighbor's router ID (ORIGINATOR_ID of routes it gave us)
    rr_client: bool = False
    rr_cluster_id: int = 0  # 0: the router ID
    next_hop_self: bool = False
    next_hop_keep: bool = False
    default_local_pref: int = 100
    allow_local_pref: bool = False
    interpret_communities: bool = True
    rs_client: bool = False
    llgr_aware: bool = False

    @property
    def internal(self) -> bool:
        return self.local_as == self.remote_as


def peer_of(proto, router_id: int, source_address: bytes, remote_id: int = 0) -> Peer:
    """A :class:`Peer` from a parsed ``protocol bgp`` and what the session knows."""
    return Peer(
        name=proto.name,
        local_as=proto.local_as,
        remote_as=proto.remote_as,
        source_address=source_address,
        remote_id=remote_id,
        rr_client=proto.rr_client,
        rr_cluster_id=proto.rr_cluster_id or router_id,
        next_hop_self=proto.next_hop_self,
        next_hop_keep=proto.next_hop_keep,
        default_local_pref=proto.default_local_pref,
        allow_local_pref=proto.allow_local_pref,
        interpret_communities=proto.interpret_communities,
        rs_client=proto.rs_client,
    )


def import_attrs(attrs: AttrSet, frm: Peer) -> AttrSet:
    """The attributes a route from ``frm`` holds in BIRD before the import filter."""
    lp = attrs.local_pref
    if not frm.internal and not frm.allow_local_pref:
        lp = None
    if lp is None:
        lp = frm.default_local_pref
    if lp == attrs.local_pref:
        return attrs
    return attrs.replace(local_pref=lp)


def export_attrs(
    attrs: AttrSet,
    to: Peer,
    frm: Peer | None,
    *,
    gw: bytes | None = None,
    dest: str = "router",
    same_interface: bool = False,
) -> AttrSet | None:
    """The attributes of a route offered to ``to`` as BIRD's export filter sees them, or None
    when BIRD does not offer the route to ``to`` at all.

    ``frm``: the neighbor the route came from (None: a local route: kernel, static, direct).
    ``gw``/``dest``: the local route's gateway (packed) and kind; ``same_interface``: the
    route's interface is the one toward ``to`` (BIRD then keeps a gateway as next hop for
    direct eBGP).
    """
    if frm is None:
        return _create(attrs, to, gw, dest, same_interface)
    if frm is to or frm.name == to.name:
        return None  # poison reverse
    if to.rr_client and to.rr_cluster_id in _cluster_ids(attrs):
        return None
    if to.interpret_communities and _community_forbids(attrs, to):
        return None
    if to.local_as == frm.local_as and to.internal and frm.internal:
        if not (to.rr_client or frm.rr_client):
            return None
        return _update(attrs, to, frm, reflect=True, same_interface=same_interface)
    return _update(attrs, to, frm, reflect=False, same_interface=same_interface)


def _cluster_ids(attrs: AttrSet) -> set:
    return {int.from_bytes(c, "big") for c in attrs.cluster_list}


def _community_forbids(attrs: AttrSet, to: Peer) -> bool:
    c = attrs.communities
    if not c:
        return False
    if NO_ADVERTISE in c:
        return True
    if not to.internal and (NO_EXPORT in c or NO_EXPORT_SUBCONFED in c):
        return True
    return not to.llgr_aware and LLGR_STALE in c


def _create(attrs, to: Peer, gw, dest, same_interface) -> AttrSet:
    path = () if to.internal else ((AS_SEQUENCE, (to.local_as,)),)
    link_local = gw is not None and len(gw) == 16 and gw[0] == 0xFE and gw[1] & 0xC0 == 0x80
    if (
        to.next_hop_self
        or dest != "router"
        or not gw
        or link_local
        or (not to.internal and not to.next_hop_keep and not same_interface)
    ):
        nh = to.source_address
    else:
        nh = gw
    return attrs.replace(origin=0, as_path=path, next_hop=nh, local_pref=to.default_local_pref)


def _update(attrs, to: Peer, frm: Peer, reflect: bool, same_interface: bool) -> AttrSet:
    changes: dict = {}
    if not to.internal and not to.rs_client:
        path = attrs.as_path or ()
        if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
            changes["as_path"] = ((AS_SEQUENCE, (to.local_as, *path[0][1])), *path[1:])
        else:
            changes["as_path"] = ((AS_SEQUENCE, (to.local_as,)), *path)
        if attrs.med is not None:
            changes["med"] = 0  # BIRD attaches MED 0 ("perhaps it would be better to undefine")
    nh = attrs.next_hop
    keep = (
        nh is not None
        and not to.next_hop_self
        and (to.next_hop_keep or (to.internal and any(nh[:16])) or same_interface)
    )
    if not keep:
        changes["next_hop"] = to.source_address
    if reflect:
        if attrs.originator_id is None:
            changes["originator_id"] = frm.remote_id.to_bytes(4, "big")
        cid = frm.rr_cluster_id if frm.rr_client else to.rr_cluster_id
        clusters = (cid.to_bytes(4, "big"), *attrs.cluster_list)
        if frm.rr_client and to.rr_client and frm.rr_cluster_id != to.rr_cluster_id:
            clusters = (to.rr_cluster_id.to_bytes(4, "big"), *clusters)
        changes["cluster_list"] = clusters
    changes = {k: v for k, v in changes.items() if getattr(attrs, k) != v}
    return attrs.replace(**changes) if changes else attrs


def wire_attrs(attrs: AttrSet, to: Peer) -> AttrSet:
    """What BIRD sends to ``to`` after its export filter accepted ``attrs``: community lists
    and CLUSTER_LIST sorted (BIRD's ``bgp_normalize_*_set``), non-transitive extended
    communities dropped toward eBGP; toward eBGP also no LOCAL_PREF (unless ``allow
    bgp_local_pref``), ORIGINATOR_ID or CLUSTER_LIST."""
    changes: dict = {}
    internal = to.internal
    if attrs.communities:
        changes["communities"] = tuple(sorted(set(attrs.communities)))
    if attrs.large_communities:
        changes["large_communities"] = tuple(sorted(set(attrs.large_communities)))
    if attrs.ext_communities:
        ecs = attrs.ext_communities
        if not internal:
            ecs = [e for e in ecs if not e[0] & 0x40]  # EC_TBIT: non-transitive
        changes["ext_communities"] = tuple(sorted(ecs))
    if attrs.cluster_list:
        changes["cluster_list"] = tuple(sorted(attrs.cluster_list))
    if not internal:
        if attrs.local_pref is not None and not to.allow_local_pref:
            changes["local_pref"] = None
        if attrs.originator_id is not None:
            changes["originator_id"] = None
        if attrs.cluster_list:
            changes["cluster_list"] = ()
    changes = {k: v for k, v in changes.items() if getattr(attrs, k) != v}
    return attrs.replace(**changes) if changes else attrs
