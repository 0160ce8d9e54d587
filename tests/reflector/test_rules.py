"""Route-reflection and export/import rules (RFC 4456, RFC 4271 §9.1.3, RFC 1997).

Every (source kind, target kind) pair is checked both on a route reflector (cluster id set)
and on a plain speaker, for ``allowed()`` and for the exact attribute set ``export_attrs()``
produces.
"""

import ipaddress

import pytest

from bgpd.reflector import Target, allowed, community_allows, export_attrs, import_ok
from bgpd.rib import Source, router_id_int
from bgpd.wire import AttrSet, intern
from bgpd.wire.constants import (
    AS_SEQUENCE,
    AS_SET,
    NO_ADVERTISE,
    NO_EXPORT,
    NO_EXPORT_SUBCONFED,
)

LOCAL_AS = 65000
PEER_AS = 65001
ROUTER_ID = ipaddress.ip_address("10.0.0.254").packed
CLUSTER_ID = ipaddress.ip_address("10.0.0.100").packed
OTHER_CLUSTER = ipaddress.ip_address("10.0.0.200").packed
COMM = (PEER_AS << 16) | 7


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def A(**kw) -> AttrSet:
    return intern(AttrSet(**kw))


# --- sources -----------------------------------------------------------------------------------


def make_source(kind: str) -> Source:
    if kind in ("local", "static"):
        return Source(kind, kind, local_as=LOCAL_AS)
    if kind == "ebgp":
        return Source(
            "ebgp", "bgp", asn=PEER_AS, local_as=LOCAL_AS, router_id=router_id_int("192.0.2.1")
        )
    if kind == "client":
        return Source(
            "client",
            "bgp",
            asn=LOCAL_AS,
            local_as=LOCAL_AS,
            rr_client=True,
            router_id=router_id_int("10.0.0.1"),
        )
    if kind == "nonclient":
        return Source(
            "nonclient", "bgp", asn=LOCAL_AS, local_as=LOCAL_AS, router_id=router_id_int("10.0.0.2")
        )
    raise AssertionError(kind)


def route_from(kind: str) -> AttrSet:
    """The attribute set as it sits in the Adj-RIB-In of a source of this kind."""
    if kind in ("local", "static"):
        return A(origin=0, as_path=())  # no next hop, no LOCAL_PREF: filled in on export
    if kind == "ebgp":
        # LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST from eBGP are discarded on decode
        return A(
            origin=0,
            as_path=((AS_SEQUENCE, (PEER_AS, 64999)),),
            next_hop=ip("192.0.2.1"),
            med=50,
            communities=(COMM,),
        )
    nh = "10.0.0.1" if kind == "client" else "10.0.0.2"
    return A(
        origin=1,
        as_path=((AS_SEQUENCE, (PEER_AS,)),),
        next_hop=ip(nh),
        med=50,
        local_pref=150,
        communities=(COMM,),
    )


# --- targets -----------------------------------------------------------------------------------

NH_EBGP = ip("192.0.2.254")
NH_IBGP = ip("10.0.0.254")

TARGETS = {
    "ebgp": Target(ibgp=False, rr_client=False, local_as=LOCAL_AS, next_hop=NH_EBGP),
    "client": Target(ibgp=True, rr_client=True, local_as=LOCAL_AS, next_hop=NH_IBGP),
    "nonclient": Target(ibgp=True, rr_client=False, local_as=LOCAL_AS, next_hop=NH_IBGP),
}

SOURCES = ("local", "static", "ebgp", "client", "nonclient")

# (source, target) -> (allowed on a reflector, allowed on a plain speaker)
ALLOWED = {
    ("local", "ebgp"): (True, True),
    ("local", "client"): (True, True),
    ("local", "nonclient"): (True, True),
    ("static", "ebgp"): (True, True),
    ("static", "client"): (True, True),
    ("static", "nonclient"): (True, True),
    ("ebgp", "ebgp"): (True, True),
    ("ebgp", "client"): (True, True),
    ("ebgp", "nonclient"): (True, True),
    ("client", "ebgp"): (True, True),
    ("client", "client"): (True, False),  # reflected client -> client
    ("client", "nonclient"): (True, False),  # reflected client -> non-client
    ("nonclient", "ebgp"): (True, True),
    ("nonclient", "client"): (True, False),  # reflected non-client -> client
    ("nonclient", "nonclient"): (False, False),  # never between non-clients
}

CASES = [
    pytest.param(s, t, rr, id=f"{s}->{t}-{'rr' if rr else 'plain'}")
    for s in SOURCES
    for t in TARGETS
    for rr in (True, False)
]


def expected_attrs(src_kind: str, tgt_kind: str, attrs: AttrSet, src: Source) -> AttrSet:
    """What the target must receive, written out per case (not derived from the code)."""
    if tgt_kind == "ebgp":
        if src_kind in ("local", "static"):
            return A(origin=0, as_path=((AS_SEQUENCE, (LOCAL_AS,)),), next_hop=NH_EBGP)
        if src_kind == "ebgp":
            return A(
                origin=0,
                as_path=((AS_SEQUENCE, (LOCAL_AS, PEER_AS, 64999)),),
                next_hop=NH_EBGP,
                communities=(COMM,),
            )
        # iBGP-learned to eBGP: no LOCAL_PREF, no learned MED, no RR attributes
        return A(
            origin=1,
            as_path=((AS_SEQUENCE, (LOCAL_AS, PEER_AS)),),
            next_hop=NH_EBGP,
            communities=(COMM,),
        )
    # iBGP targets
    if src_kind in ("local", "static"):
        return A(origin=0, as_path=(), next_hop=NH_IBGP, local_pref=100)
    if src_kind == "ebgp":
        # next hop unchanged (no next-hop-self by default), LOCAL_PREF 100 added, MED kept
        return A(
            origin=0,
            as_path=((AS_SEQUENCE, (PEER_AS, 64999)),),
            next_hop=ip("192.0.2.1"),
            med=50,
            local_pref=100,
            communities=(COMM,),
        )
    # reflected: ORIGINATOR_ID and CLUSTER_LIST added, everything else as received
    return A(
        origin=1,
        as_path=((AS_SEQUENCE, (PEER_AS,)),),
        next_hop=attrs.next_hop,
        med=50,
        local_pref=150,
        communities=(COMM,),
        originator_id=src.router_id.to_bytes(4, "big"),
        cluster_list=(CLUSTER_ID,),
    )


@pytest.mark.parametrize("src_kind, tgt_kind, reflector", CASES)
def test_allowed(src_kind, tgt_kind, reflector):
    src = make_source(src_kind)
    cluster = CLUSTER_ID if reflector else None
    expect = ALLOWED[(src_kind, tgt_kind)][0 if reflector else 1]
    assert allowed(src, TARGETS[tgt_kind], cluster) is expect


@pytest.mark.parametrize("src_kind, tgt_kind, reflector", CASES)
def test_export_attrs(src_kind, tgt_kind, reflector):
    src = make_source(src_kind)
    attrs = route_from(src_kind)
    cluster = CLUSTER_ID if reflector else None
    out = export_attrs(src, attrs, TARGETS[tgt_kind], cluster)
    if not ALLOWED[(src_kind, tgt_kind)][0 if reflector else 1]:
        assert out is None
        return
    assert out == expected_attrs(src_kind, tgt_kind, attrs, src)
    assert out is intern(out)  # exported sets are interned too


def test_every_source_target_pair_is_covered():
    assert set(ALLOWED) == {(s, t) for s in SOURCES for t in TARGETS}


# --- reflection details ------------------------------------------------------------------------


def test_reflection_keeps_an_existing_originator_id_and_prepends_the_cluster_id():
    src = make_source("client")
    orig = ip("10.9.9.9")
    attrs = route_from("client").replace(originator_id=orig, cluster_list=(OTHER_CLUSTER,))
    out = export_attrs(src, attrs, TARGETS["nonclient"], CLUSTER_ID)
    assert out.originator_id == orig
    assert out.cluster_list == (CLUSTER_ID, OTHER_CLUSTER)
    assert out == attrs.replace(cluster_list=(CLUSTER_ID, OTHER_CLUSTER))


def test_reflection_keeps_next_hop_and_unknown_attributes():
    src = make_source("nonclient")
    attrs = route_from("nonclient").replace(
        unknown=((0xE0, 99, b"\x01\x02"),),
        large_communities=((65000, 1, 2),),
        ext_communities=(b"\x00\x02\xfd\xe8\x00\x00\x00\x01",),
        atomic_aggregate=True,
        aggregator=(PEER_AS, ip("192.0.2.77")),
    )
    out = export_attrs(src, attrs, TARGETS["client"], CLUSTER_ID)
    assert out == attrs.replace(
        originator_id=src.router_id.to_bytes(4, "big"), cluster_list=(CLUSTER_ID,)
    )


def test_reflection_with_explicit_next_hop_self():
    src = make_source("client")
    target = Target(
        ibgp=True, rr_client=False, local_as=LOCAL_AS, next_hop=NH_IBGP, next_hop_self=True
    )
    out = export_attrs(src, route_from("client"), target, CLUSTER_ID)
    assert out.next_hop == NH_IBGP
    assert out.cluster_list == (CLUSTER_ID,)


# --- iBGP export of local and eBGP routes --------------------------------------------------------


def test_ibgp_export_keeps_an_existing_local_pref():
    src = make_source("static")
    attrs = A(origin=0, as_path=(), local_pref=300)
    out = export_attrs(src, attrs, TARGETS["nonclient"], None)
    assert out.local_pref == 300 and out.next_hop == NH_IBGP


def test_ibgp_export_of_local_route_with_a_next_hop_keeps_it():
    src = make_source("static")
    attrs = A(origin=0, as_path=(), next_hop=ip("10.1.1.1"))
    out = export_attrs(src, attrs, TARGETS["nonclient"], None)
    assert out.next_hop == ip("10.1.1.1")


def test_ibgp_export_of_local_route_without_our_address_is_not_sent():
    src = make_source("local")
    target = Target(ibgp=True, rr_client=False, local_as=LOCAL_AS, next_hop=None)
    assert export_attrs(src, route_from("local"), target, None) is None


def test_ibgp_export_adds_an_empty_as_path_when_absent():
    src = make_source("local")
    out = export_attrs(src, A(origin=0), TARGETS["client"], CLUSTER_ID)
    assert out.as_path == ()


def test_ibgp_next_hop_self_for_ebgp_routes():
    src = make_source("ebgp")
    target = Target(
        ibgp=True, rr_client=False, local_as=LOCAL_AS, next_hop=NH_IBGP, next_hop_self=True
    )
    out = export_attrs(src, route_from("ebgp"), target, None)
    assert out.next_hop == NH_IBGP and out.local_pref == 100


# --- eBGP export -----------------------------------------------------------------------------------


def test_ebgp_export_strips_rr_attributes_and_local_pref():
    src = make_source("nonclient")
    attrs = route_from("nonclient").replace(
        originator_id=ip("10.9.9.9"), cluster_list=(OTHER_CLUSTER,)
    )
    out = export_attrs(src, attrs, TARGETS["ebgp"], CLUSTER_ID)
    assert out.originator_id is None and out.cluster_list == ()
    assert out.local_pref is None and out.med is None
    assert out.next_hop == NH_EBGP


def test_ebgp_export_keeps_our_own_med():
    src = make_source("static")
    out = export_attrs(src, A(origin=0, as_path=(), med=20), TARGETS["ebgp"], None)
    assert out.med == 20


def test_ebgp_export_send_med():
    src = make_source("ebgp")
    target = Target(ibgp=False, rr_client=False, local_as=LOCAL_AS, next_hop=NH_EBGP, send_med=True)
    assert export_attrs(src, route_from("ebgp"), target, None).med == 50


def test_ebgp_export_without_next_hop_self_keeps_the_next_hop():
    src = make_source("ebgp")
    target = Target(
        ibgp=False, rr_client=False, local_as=LOCAL_AS, next_hop=NH_EBGP, next_hop_self=False
    )
    assert export_attrs(src, route_from("ebgp"), target, None).next_hop == ip("192.0.2.1")
    # ...but a route without one gets ours
    assert export_attrs(make_source("local"), route_from("local"), target, None).next_hop == NH_EBGP


def test_ebgp_export_without_our_address_is_not_sent():
    target = Target(ibgp=False, rr_client=False, local_as=LOCAL_AS, next_hop=None)
    assert export_attrs(make_source("ebgp"), route_from("ebgp"), target, None) is None


@pytest.mark.parametrize(
    "as_path, expected",
    [
        ((), ((AS_SEQUENCE, (LOCAL_AS,)),)),
        (None, ((AS_SEQUENCE, (LOCAL_AS,)),)),
        (
            ((AS_SEQUENCE, (1, 2)), (AS_SET, (3, 4))),
            ((AS_SEQUENCE, (LOCAL_AS, 1, 2)), (AS_SET, (3, 4))),
        ),
        # a leading AS_SET gets a new sequence in front of it
        (((AS_SET, (3, 4)),), ((AS_SEQUENCE, (LOCAL_AS,)), (AS_SET, (3, 4)))),
        # a full first segment (255 ASNs) gets a new one
        (
            ((AS_SEQUENCE, tuple(range(1, 256))),),
            ((AS_SEQUENCE, (LOCAL_AS,)), (AS_SEQUENCE, tuple(range(1, 256)))),
        ),
        (
            ((AS_SEQUENCE, tuple(range(1, 255))),),
            ((AS_SEQUENCE, (LOCAL_AS, *range(1, 255))),),
        ),
    ],
    ids=["empty", "absent", "seq+set", "leading-set", "full-segment", "254-segment"],
)
def test_ebgp_export_prepends_our_as(as_path, expected):
    src = make_source("ebgp")
    attrs = A(origin=0, as_path=as_path, next_hop=ip("192.0.2.1"))
    assert export_attrs(src, attrs, TARGETS["ebgp"], None).as_path == expected


def test_ebgp_export_uses_the_targets_local_as():
    target = Target(ibgp=False, rr_client=False, local_as=64512, next_hop=NH_EBGP)
    out = export_attrs(make_source("ebgp"), route_from("ebgp"), target, None)
    assert out.as_path == ((AS_SEQUENCE, (64512, PEER_AS, 64999)),)


def test_export_of_absent_attributes_is_nothing():
    assert export_attrs(make_source("ebgp"), None, TARGETS["client"], None) is None


# --- well-known communities ------------------------------------------------------------------


@pytest.mark.parametrize(
    "community, to_ibgp, to_ebgp",
    [
        (NO_ADVERTISE, False, False),
        (NO_EXPORT, True, False),
        (NO_EXPORT_SUBCONFED, True, False),
        (COMM, True, True),
    ],
    ids=["NO_ADVERTISE", "NO_EXPORT", "NO_EXPORT_SUBCONFED", "other"],
)
@pytest.mark.parametrize("src_kind", SOURCES)
def test_well_known_communities(src_kind, community, to_ibgp, to_ebgp):
    src = make_source(src_kind)
    attrs = route_from(src_kind).replace(communities=(COMM, community))
    for tgt_kind, expect in (("client", to_ibgp), ("nonclient", to_ibgp), ("ebgp", to_ebgp)):
        target = TARGETS[tgt_kind]
        if not allowed(src, target, CLUSTER_ID):
            continue
        out = export_attrs(src, attrs, target, CLUSTER_ID)
        assert (out is not None) is expect, (src_kind, tgt_kind)
        if out is not None:
            assert out.communities == (COMM, community)  # communities pass unchanged
        assert community_allows(attrs, target) is expect


# --- import loop checks ----------------------------------------------------------------------


def check_import(attrs, kind, cluster=CLUSTER_ID, allow_own_as=0):
    return import_ok(attrs, make_source(kind), LOCAL_AS, ROUTER_ID, cluster, allow_own_as)


@pytest.mark.parametrize("kind", ["ebgp", "client", "nonclient"])
def test_import_accepts_a_clean_route(kind):
    assert check_import(route_from(kind), kind) is None


@pytest.mark.parametrize("kind", ["client", "nonclient"])
@pytest.mark.parametrize("cluster", [CLUSTER_ID, None])
def test_import_drops_our_own_originator_id(kind, cluster):
    attrs = route_from(kind).replace(originator_id=ROUTER_ID)
    assert check_import(attrs, kind, cluster) is not None
    assert check_import(route_from(kind).replace(originator_id=ip("10.9.9.9")), kind) is None


@pytest.mark.parametrize("kind", ["client", "nonclient"])
@pytest.mark.parametrize(
    "cluster_list",
    [(CLUSTER_ID,), (OTHER_CLUSTER, CLUSTER_ID), (CLUSTER_ID, OTHER_CLUSTER)],
)
def test_import_drops_our_cluster_id_in_cluster_list(kind, cluster_list):
    attrs = route_from(kind).replace(originator_id=ip("10.9.9.9"), cluster_list=cluster_list)
    assert check_import(attrs, kind) is not None


def test_import_accepts_other_clusters_and_non_reflectors():
    attrs = route_from("nonclient").replace(
        originator_id=ip("10.9.9.9"), cluster_list=(OTHER_CLUSTER,)
    )
    assert check_import(attrs, "nonclient") is None
    # not a reflector: CLUSTER_LIST is not checked
    assert check_import(attrs.replace(cluster_list=(CLUSTER_ID,)), "nonclient", None) is None


def test_redundant_reflectors_sharing_a_cluster_id():
    # RR1 and RR2 serve the same clients with one cluster id. RR2 reflects a client's route to
    # RR1 (its non-client iBGP peer); RR1 already has the route from the client and must drop
    # RR2's copy, which carries their shared cluster id.
    client = make_source("client")
    rr1_view_of_rr2 = make_source("nonclient")
    from_client = route_from("client")
    assert check_import(from_client, "client") is None
    reflected_by_rr2 = export_attrs(client, from_client, TARGETS["nonclient"], CLUSTER_ID)
    assert reflected_by_rr2.cluster_list == (CLUSTER_ID,)
    why = import_ok(reflected_by_rr2, rr1_view_of_rr2, LOCAL_AS, ROUTER_ID, CLUSTER_ID)
    assert why is not None


def test_our_local_route_reflected_back_to_us_is_dropped():
    # We originate a route to a reflector (a non-client session from our side); the reflector
    # sets ORIGINATOR_ID to our router id and may reflect it back.
    local = make_source("local")
    sent = export_attrs(local, route_from("local"), TARGETS["nonclient"], None)
    assert sent.originator_id is None
    us_as_seen_by_rr = Source(
        "us", "bgp", asn=LOCAL_AS, local_as=LOCAL_AS, router_id=int.from_bytes(ROUTER_ID, "big")
    )
    reflected = export_attrs(us_as_seen_by_rr, sent, TARGETS["client"], OTHER_CLUSTER)
    assert reflected.originator_id == ROUTER_ID
    assert check_import(reflected, "nonclient", cluster=None) is not None


@pytest.mark.parametrize(
    "path, allow, dropped",
    [
        (((AS_SEQUENCE, (PEER_AS, 64999)),), 0, False),
        (((AS_SEQUENCE, (PEER_AS, LOCAL_AS, 64999)),), 0, True),
        (((AS_SEQUENCE, (PEER_AS, LOCAL_AS, 64999)),), 1, False),
        (((AS_SEQUENCE, (PEER_AS, LOCAL_AS, LOCAL_AS)),), 1, True),
        (((AS_SEQUENCE, (PEER_AS, LOCAL_AS, LOCAL_AS)),), 2, False),
        (((AS_SEQUENCE, (PEER_AS, LOCAL_AS)), (AS_SET, (LOCAL_AS, 7))), 1, True),
        (((AS_SEQUENCE, (PEER_AS,)), (AS_SET, (LOCAL_AS, 7))), 0, True),
    ],
)
def test_import_own_as_in_path_from_ebgp(path, allow, dropped):
    attrs = route_from("ebgp").replace(as_path=path)
    assert (check_import(attrs, "ebgp", allow_own_as=allow) is not None) is dropped


def test_import_own_as_not_checked_on_ibgp():
    attrs = route_from("client").replace(as_path=((AS_SEQUENCE, (PEER_AS, LOCAL_AS)),))
    assert check_import(attrs, "client") is None


def test_import_reasons_are_text():
    attrs = route_from("ebgp").replace(as_path=((AS_SEQUENCE, (LOCAL_AS,)),))
    assert "AS" in check_import(attrs, "ebgp")
    assert "ORIGINATOR_ID" in check_import(
        route_from("client").replace(originator_id=ROUTER_ID), "client"
    )
    assert "CLUSTER" in check_import(
        route_from("client").replace(cluster_list=(CLUSTER_ID,)), "client"
    )
