"""Each set action: the resulting AttrSet fields, and that results are interned and cached."""

import ipaddress

from policy_helpers import apply_set, attrs, one, run, wire

from bgpd.policy import RouteInfo
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE, AS_SET, IPV4_UNICAST, NO_EXPORT


def c(a, b):
    return a << 16 | b


def test_local_pref():
    r = apply_set({"local_pref": 200}, attrs(origin=0, local_pref=100))
    assert r.local_pref == 200
    assert r.origin == 0


def test_med_set_and_remove():
    assert apply_set({"med": 10}, attrs(med=5)).med == 10
    assert apply_set({"med": 0}, attrs()).med == 0
    assert apply_set({"med": "remove"}, attrs(med=5)).med is None


def test_origin():
    assert apply_set({"origin": "incomplete"}, attrs(origin=0)).origin == 2
    assert apply_set({"origin": "igp"}, attrs(origin=2)).origin == 0
    assert apply_set({"origin": "egp"}, attrs()).origin == 1


def test_community_add_keeps_order_and_skips_present():
    a = attrs(communities=[c(1, 1), c(65000, 1)])
    r = apply_set({"community_add": ["65000:1", "65000:2", "no-export", "65000:2"]}, a)
    assert r.communities == (c(1, 1), c(65000, 1), c(65000, 2), NO_EXPORT)


def test_community_remove_exact_and_wildcards():
    a = attrs(communities=[c(65000, 1), c(65000, 2), c(65001, 2), c(1, 100), NO_EXPORT])
    assert apply_set({"community_remove": ["65000:2"]}, a).communities == (
        c(65000, 1),
        c(65001, 2),
        c(1, 100),
        NO_EXPORT,
    )
    assert apply_set({"community_remove": ["65000:*"]}, a).communities == (
        c(65001, 2),
        c(1, 100),
        NO_EXPORT,
    )
    assert apply_set({"community_remove": ["*:2", "no-export"]}, a).communities == (
        c(65000, 1),
        c(1, 100),
    )
    assert apply_set({"community_remove": ["*:*"]}, a).communities == ()
    assert apply_set({"community_remove": ["65000-65001:2-100"]}, a).communities == (
        c(65000, 1),
        c(1, 100),
        NO_EXPORT,
    )
    # removing what is not there changes nothing: the very same set comes back
    assert apply_set({"community_remove": ["9:9"]}, a) is a


def test_community_set_replaces_all():
    a = attrs(communities=[c(65000, 1), c(65000, 2)])
    assert apply_set({"community_set": []}, a).communities == ()
    assert apply_set({"community_set": ["1:1", "no-export"]}, a).communities == (
        c(1, 1),
        NO_EXPORT,
    )


def test_community_steps_run_set_remove_add_whatever_the_key_order():
    a = attrs(communities=[c(9, 9)])
    spec = {"community_add": ["1:3"], "community_remove": ["1:*"], "community_set": ["1:1", "2:2"]}
    assert apply_set(spec, a).communities == (c(2, 2), c(1, 3))


def test_large_communities():
    a = attrs(large_communities=[(64512, 1, 1), (64512, 2, 2), (1, 2, 3)])
    r = apply_set({"large_community_add": ["64512:1:1", "64512:9:9"]}, a)
    assert r.large_communities == ((64512, 1, 1), (64512, 2, 2), (1, 2, 3), (64512, 9, 9))
    r = apply_set({"large_community_remove": ["64512:*:*"]}, a)
    assert r.large_communities == ((1, 2, 3),)
    r = apply_set({"large_community_remove": ["*:2:*"]}, a)
    assert r.large_communities == ((64512, 1, 1),)
    r = apply_set({"large_community_set": ["7:7:7"]}, a)
    assert r.large_communities == ((7, 7, 7),)
    r = apply_set({"large_community_set": []}, a)
    assert r.large_communities == ()


def test_as_path_prepend_count_uses_local_as():
    route = RouteInfo(local_as=65000)
    r = apply_set({"as_path_prepend": 2}, attrs(path=[65001, 65002]), route)
    assert r.as_path == ((AS_SEQUENCE, (65000, 65000, 65001, 65002)),)
    r = apply_set({"as_path_prepend": 1}, attrs(path=[]), route)
    assert r.as_path == ((AS_SEQUENCE, (65000,)),)
    r = apply_set({"as_path_prepend": 3}, attrs(), route)  # absent path
    assert r.as_path == ((AS_SEQUENCE, (65000, 65000, 65000)),)
    a = attrs(path=[65001])
    assert apply_set({"as_path_prepend": 2}, a, RouteInfo()) is a  # no local AS: no AS 0


def test_as_path_prepend_list_and_set_first():
    r = apply_set({"as_path_prepend": [64512, 64513]}, attrs(path=[65001]))
    assert r.as_path == ((AS_SEQUENCE, (64512, 64513, 65001)),)
    a = attrs(as_path=((AS_SET, (1, 2)),))
    r = apply_set({"as_path_prepend": [64512]}, a)
    assert r.as_path == ((AS_SEQUENCE, (64512,)), (AS_SET, (1, 2)))


def test_as_path_prepend_results_cached_per_local_as():
    p = one(set={"as_path_prepend": 1})
    a = attrs(path=[65001])
    r1 = run(p, a=a, route=RouteInfo(local_as=65000))
    r2 = run(p, a=a, route=RouteInfo(local_as=65100))
    assert r1.as_path[0][1][0] == 65000
    assert r2.as_path[0][1][0] == 65100
    assert run(p, a=a, route=RouteInfo(local_as=65000)) is r1


def test_next_hop_self_and_address():
    me4 = bytes([192, 0, 2, 1])
    me6 = ipaddress.ip_address("2001:db8::1").packed
    a = attrs(next_hop=bytes([198, 51, 100, 1]))
    assert apply_set({"next_hop": "self"}, a, RouteInfo(next_hop_self=me4)).next_hop == me4
    r = apply_set({"next_hop": "self"}, attrs(), RouteInfo(next_hop_self=me6), "2001:db8::/32")
    assert r.next_hop == me6
    # without an address to use, next_hop: self leaves the set alone
    assert apply_set({"next_hop": "self"}, a, RouteInfo()) is a
    assert apply_set({"next_hop": "203.0.113.9"}, a).next_hop == bytes([203, 0, 113, 9])
    r = apply_set({"next_hop": "2001:db8::9"}, attrs(), prefix="2001:db8::/32")
    assert r.next_hop == ipaddress.ip_address("2001:db8::9").packed
    assert apply_set({"next_hop": "unchanged"}, a) is a


def test_next_hop_self_cached_per_address():
    p = one(set={"next_hop": "self"})
    a = attrs(next_hop=bytes([198, 51, 100, 1]))
    one_ = run(p, a=a, route=RouteInfo(next_hop_self=b"\x0a\x00\x00\x01"))
    two = run(p, a=a, route=RouteInfo(next_hop_self=b"\x0a\x00\x00\x02"))
    assert one_.next_hop == b"\x0a\x00\x00\x01"
    assert two.next_hop == b"\x0a\x00\x00\x02"
    assert run(p, a=a, route=RouteInfo(next_hop_self=b"\x0a\x00\x00\x01")) is one_


def test_results_are_interned():
    spec = {
        "local_pref": 300,
        "med": 7,
        "community_add": ["65000:1"],
        "large_community_add": ["1:2:3"],
        "origin": "egp",
    }
    a = attrs(origin=0, path=[65001], next_hop=b"\x01\x02\x03\x04")
    p = one(set=spec)
    r1 = run(p, a=a)
    # the same input gives the identical object, from another policy with the same block too
    assert run(p, a=a) is r1
    assert run(one(set=spec), a=a) is r1
    # and it is the canonical (interned) set for those values
    expected = AttrSet(
        origin=1,
        as_path=((AS_SEQUENCE, (65001,)),),
        next_hop=b"\x01\x02\x03\x04",
        med=7,
        local_pref=300,
        communities=(c(65000, 1),),
        large_communities=((1, 2, 3),),
    )
    assert intern(expected) is r1
    # an equal input (another interned object with the same values) gives the same result
    assert run(p, a=attrs(origin=0, path=[65001], next_hop=b"\x01\x02\x03\x04")) is r1


def test_set_block_runs_once_per_set():
    # The result of a set block is kept in the input set's cache: a second prefix with the
    # same set finds it there.
    p = one({"prefix": ["10.0.0.0/8 le 32"]}, set={"local_pref": 50})
    a = attrs(origin=0)
    r1 = p.evaluate(a, wire("10.1.0.0/16"), IPV4_UNICAST, RouteInfo())
    cached = [v for k, v in a.cache.items() if k[:2] == ("policy", "set")]
    assert cached == [r1]
    r2 = p.evaluate(a, wire("10.2.0.0/16"), IPV4_UNICAST, RouteInfo())
    assert r2 is r1


def test_unchanged_result_is_the_input_and_not_a_cycle():
    a = attrs(local_pref=200)
    p = one(set={"local_pref": 200})
    assert run(p, a=a) is a
    assert a not in a.cache.values()  # cached as a marker, not as a reference to itself


def test_set_is_applied_on_accept_only_not_on_reject():
    p = one(set={"local_pref": 1}, action="reject")
    assert run(p, a=attrs()) is None


def test_input_set_is_never_modified():
    a = attrs(origin=0, communities=[c(1, 1)])
    apply_set({"community_add": ["2:2"], "local_pref": 5, "med": 1}, a)
    assert a.communities == (c(1, 1),)
    assert a.local_pref is None
    assert a.med is None
