"""Term order, ``next``, defaults, attr-only classification, caching, chains, a Calico policy."""

import pytest
from policy_helpers import attrs, fam, one, policy, run, wire

from bgpd.policy import (
    ACCEPT_ALL,
    REJECT_ALL,
    Policy,
    PolicyChain,
    RouteInfo,
    Term,
    chain,
    compile_policies,
    compile_policy,
)
from bgpd.policy.match import Condition
from bgpd.wire.constants import IPV4_UNICAST


def c(a, b):
    return a << 16 | b


# --- term order, actions, defaults ----------------------------------------------------------


def test_first_deciding_term_wins():
    p = policy(
        [
            {"match": {"prefix": ["10.0.0.0/8 le 32"]}, "action": "reject"},
            {"match": {"prefix": ["0.0.0.0/0 le 32"]}, "set": {"local_pref": 5}},
        ]
    )
    assert run(p, "10.1.0.0/16") is None
    assert run(p, "192.0.2.0/24").local_pref == 5


def test_order_matters():
    terms = [
        {"match": {"community": ["65000:1"]}, "set": {"local_pref": 1}},
        {"match": {"community": ["65000:*"]}, "set": {"local_pref": 2}},
    ]
    a = attrs(communities=[c(65000, 1)])
    assert run(policy(terms), a=a).local_pref == 1
    assert run(policy(terms[::-1]), a=a).local_pref == 2


def test_next_accumulates_changes_and_later_terms_see_them():
    p = policy(
        [
            {"set": {"community_add": ["65000:7"]}, "action": "next"},
            {"match": {"prefix": ["10.0.0.0/8 le 32"]}, "set": {"med": 3}, "action": "next"},
            # matches only because the first term added 65000:7
            {"match": {"community": ["65000:7"]}, "set": {"local_pref": 9}},
        ]
    )
    r = run(p, "10.0.0.0/24", a=attrs(origin=0))
    assert (r.communities, r.med, r.local_pref) == ((c(65000, 7),), 3, 9)
    r = run(p, "192.0.2.0/24", a=attrs(origin=0))
    assert (r.communities, r.med, r.local_pref) == ((c(65000, 7),), None, 9)


def test_next_then_default():
    terms = [{"set": {"local_pref": 7}, "action": "next"}]
    assert run(policy(terms, default="reject")) is None
    assert run(policy(terms, default="accept")).local_pref == 7


def test_defaults():
    assert run(policy([])) is None  # the default default is reject
    assert run(compile_policy("x", {})) is None
    assert run(compile_policy("x", None)) is None
    a = attrs(origin=0)
    assert run(compile_policy("x", {"default": "accept"}), a=a) is a
    nomatch = [{"match": {"community": ["1:1"]}}]
    assert run(policy(nomatch, "accept"), a=a) is a
    assert run(policy(nomatch, "reject"), a=a) is None


def test_action_defaults_to_accept():
    p = compile_policy("x", {"terms": [{"match": {"origin": "igp"}}]})
    a = attrs(origin=0)
    assert run(p, a=a) is a
    assert run(p, a=attrs(origin=2)) is None


def test_builtin_accept_and_reject():
    a = attrs(origin=0)
    assert run(ACCEPT_ALL, a=a) is a
    assert run(REJECT_ALL, a=a) is None


def test_explain():
    p = policy(
        [
            {"name": "comm", "match": {"community": ["1:1"]}, "action": "reject"},
            {"name": "tag", "set": {"local_pref": 9}, "action": "next"},
        ],
        default="accept",
    )
    result, steps = p.explain(attrs(), wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo())
    assert result.local_pref == 9
    assert steps == [
        {"term": "comm", "matched": False, "failed": "community"},
        {"term": "tag", "matched": True, "action": "next"},
        {"term": "default", "matched": True, "action": "accept"},
    ]


# --- attr_only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "match, expected",
    [
        ({}, True),
        ({"community": ["1:1"]}, True),
        ({"large_community": ["1:1:1"]}, True),
        ({"as_path": ["^1_"]}, True),
        ({"origin": "igp"}, True),
        ({"next_hop": ["192.0.2.0/24"]}, True),
        ({"community": ["1:1"], "as_path": ["_2$"], "origin": ["egp"]}, True),
        ({"prefix": ["10.0.0.0/8"]}, False),
        ({"neighbor": ["192.0.2.1"]}, False),
        ({"source": ["static"]}, False),
        ({"interface": ["cali*"]}, False),
        ({"family": "ipv4"}, False),
        ({"next_hop": ["self"]}, False),
        ({"community": ["1:1"], "prefix": ["10.0.0.0/8"]}, False),
    ],
)
def test_attr_only(match, expected):
    assert one(match).attr_only is expected


def test_attr_only_needs_every_term():
    p = policy([{"match": {"community": ["1:1"]}}, {"match": {"source": "bgp"}}])
    assert not p.attr_only
    # set actions never make a policy route-dependent: their inputs are in the cache key
    p = policy(
        [{"match": {"community": ["1:1"]}, "set": {"next_hop": "self", "as_path_prepend": 2}}]
    )
    assert p.attr_only


# --- evaluate_cached ------------------------------------------------------------------------


def counting_policy(attr_only: bool, verdict: bool = True, default: str = "reject"):
    calls = []

    def test(attrs, prefix, family, route):
        calls.append(prefix)
        return verdict

    term = Term("t", (Condition("community", test, attr_only),), None, "accept")
    return Policy("counting", [term], default), calls


def test_evaluate_cached_runs_once_per_set():
    p, calls = counting_policy(attr_only=True)
    a = attrs(origin=0)
    route = RouteInfo()
    assert p.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, route, "g1") is a
    assert p.evaluate_cached(a, wire("10.0.1.0/24"), IPV4_UNICAST, route, "g1") is a
    assert len(calls) == 1
    assert p.cache_key(route, "g1") in a.cache
    assert p.cache_key(route, "g1")[:3] == ("policy", p.uid, "g1")
    # another cache key is another context
    p.evaluate_cached(a, wire("10.0.2.0/24"), IPV4_UNICAST, route, "g2")
    assert len(calls) == 2
    # another set is evaluated on its own
    p.evaluate_cached(attrs(origin=1), wire("10.0.2.0/24"), IPV4_UNICAST, route, "g1")
    assert len(calls) == 3


def test_evaluate_cached_reads_the_cache():
    p, calls = counting_policy(attr_only=True)
    a = attrs(origin=0)
    route = RouteInfo()
    p.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, route)
    planted = attrs(origin=2, med=12345)
    a.cache[p.cache_key(route)] = planted
    assert p.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, route) is planted
    assert len(calls) == 1


def test_evaluate_cached_remembers_rejections():
    p, calls = counting_policy(attr_only=True, verdict=False)
    a = attrs(origin=0)
    for _ in range(3):
        assert p.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo()) is None
    assert len(calls) == 1


def test_evaluate_cached_not_attr_only_always_evaluates():
    p, calls = counting_policy(attr_only=False)
    a = attrs(origin=0)
    for _ in range(3):
        p.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo(), "g")
    assert len(calls) == 3
    assert not any(isinstance(k, tuple) and k[:2] == ("policy", p.uid) for k in a.cache)


def test_evaluate_cached_separates_next_hop_self():
    p = one({"community": ["1:1"]}, set={"next_hop": "self"})
    a = attrs(communities=[c(1, 1)], next_hop=b"\x01\x01\x01\x01")
    r1 = p.evaluate_cached(
        a, wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo(next_hop_self=b"\x0a\0\0\1")
    )
    r2 = p.evaluate_cached(
        a, wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo(next_hop_self=b"\x0a\0\0\2")
    )
    assert (r1.next_hop, r2.next_hop) == (b"\x0a\0\0\1", b"\x0a\0\0\2")


def test_evaluate_cached_matches_evaluate():
    p = policy(
        [
            {"match": {"as_path": ["_65002_"]}, "action": "reject"},
            {"match": {"community": ["65000:*"]}, "set": {"local_pref": 10}},
        ]
    )
    assert p.attr_only
    for a in (
        attrs(path=[65001, 65002]),
        attrs(path=[65001], communities=[c(65000, 5)]),
        attrs(path=[65001]),
    ):
        for _ in range(2):
            got = p.evaluate_cached(a, wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo())
            assert got is p.evaluate(a, wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo())


def test_costly_attr_tests_remembered_per_set_in_route_dependent_policies():
    calls = []

    def costly(attrs, prefix, family, route):
        calls.append(prefix)
        return True

    cond = Condition("as_path", costly, True, True)
    source = Condition("source", lambda a, p, f, r: r.source_kind == "bgp", False)
    p = Policy("memo", [Term("t", (source, cond), None, "accept")])
    assert not p.attr_only
    a = attrs(origin=0)
    for i in range(5):
        assert p.evaluate(a, wire(f"10.0.{i}.0/24"), IPV4_UNICAST, RouteInfo()) is a
    assert len(calls) == 1
    p.evaluate(attrs(origin=1), wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo())
    assert len(calls) == 2
    # in an attr-only policy the whole verdict is cached instead (no per-condition entries)
    calls.clear()
    q = Policy("whole", [Term("t", (cond,), None, "accept")])
    b = attrs(origin=2)
    for _ in range(3):
        q.evaluate_cached(b, wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo())
    assert len(calls) == 1
    assert not any(k[:2] == ("policy", "cond") for k in b.cache)


def test_compiled_as_path_condition_is_remembered_per_set():
    p = one({"prefix": ["10.0.0.0/8 le 32"], "as_path": ["_65002$"]})
    a = attrs(path=[65001, 65002])
    assert run(p, "10.1.0.0/16", a=a) is a
    assert [v for k, v in a.cache.items() if k[:2] == ("policy", "cond")] == [True]
    assert run(p, "10.2.0.0/16", a=a) is a
    assert run(p, "11.2.0.0/16", a=a) is None


def test_uid_is_never_reused():
    uids = {compile_policy("x", {}).uid for _ in range(50)}
    assert len(uids) == 50


# --- chains ---------------------------------------------------------------------------------


def test_chain_passes_modified_set_on():
    tag = one(set={"community_add": ["65000:1"]})
    lp = one({"community": ["65000:1"]}, set={"local_pref": 300})
    r = run(chain([tag, lp]), a=attrs(origin=0))
    assert r.communities == (c(65000, 1),)
    assert r.local_pref == 300


def test_chain_rejection_stops():
    second, calls = counting_policy(attr_only=True)
    assert run(chain([REJECT_ALL, second])) is None
    assert calls == []
    first = one({"community": ["9:9"]})  # rejects a set without 9:9
    assert run(chain([first, second]), a=attrs()) is None
    assert calls == []


def test_chain_of_one_and_of_none():
    p = one()
    assert chain([p]) is p
    empty = chain([])
    a = attrs(origin=0)
    assert isinstance(empty, PolicyChain)
    assert run(empty, a=a) is a
    assert empty.attr_only


def test_chain_evaluate_cached():
    p1, calls1 = counting_policy(attr_only=True)
    p2, calls2 = counting_policy(attr_only=True)
    ch = chain([p1, p2])
    assert ch.attr_only
    a = attrs(origin=0)
    for _ in range(3):
        assert ch.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo()) is a
    assert (len(calls1), len(calls2)) == (1, 1)
    # a mixed chain still caches its attr-only members
    p3, calls3 = counting_policy(attr_only=True)
    p4, calls4 = counting_policy(attr_only=False)
    mixed = chain([p3, p4])
    assert not mixed.attr_only
    for _ in range(3):
        mixed.evaluate_cached(a, wire("10.0.0.0/24"), IPV4_UNICAST, RouteInfo())
    assert (len(calls3), len(calls4)) == (1, 3)


def test_chain_explain():
    ch = chain([one(set={"local_pref": 1}, action="next", default="accept"), REJECT_ALL])
    result, steps = ch.explain(attrs(), wire("10.0.0.0/8"), IPV4_UNICAST, RouteInfo())
    assert result is None
    assert [s["policy"] for s in steps] == ["t", "t", "reject"]


# --- compile_policies -----------------------------------------------------------------------


def test_compile_policies():
    ps = compile_policies({"a": {"default": "accept"}, "b": None})
    assert sorted(ps) == ["a", "b"]
    assert ps["a"].name == "a"
    assert ps["a"].default == "accept"
    assert ps["b"].default == "reject"
    assert compile_policies(None) == {}


# --- a Calico-style export policy -----------------------------------------------------------

CALICO = {
    "default": "reject",
    "terms": [
        {
            "name": "no-host-routes",
            "match": {"prefix": ["10.244.0.0/16 ge 32"]},
            "action": "reject",
        },
        {
            "name": "pod-blocks",
            "match": {
                "prefix": ["10.244.0.0/16 ge 26 le 26", "fd00:244::/48 ge 122 le 122"],
                "source": ["static"],
            },
            "set": {"community_add": ["65000:100"]},
            "action": "accept",
        },
    ],
}


@pytest.mark.parametrize(
    "prefix, kind, accepted",
    [
        ("10.244.17.64/26", "static", True),
        ("10.244.0.0/26", "static", True),
        ("fd00:244::40/122", "static", True),
        ("10.244.17.65/32", "static", False),  # a pod's /32 inside a block: suppressed
        ("10.244.17.65/32", "kernel", False),
        ("10.244.17.64/26", "kernel", False),  # not the blackhole static
        ("10.244.17.64/26", "bgp", False),
        ("10.244.17.0/25", "static", False),
        ("10.244.0.0/16", "static", False),
        ("10.245.0.0/26", "static", False),
        ("0.0.0.0/0", "static", False),
        ("fd00:244::/64", "static", False),
        ("192.168.1.0/24", "connected", False),
    ],
)
def test_calico_export(prefix, kind, accepted):
    p = compile_policy("calico-export", CALICO)
    assert not p.attr_only
    a = attrs(origin=0)
    r = p.evaluate(a, wire(prefix), fam(prefix), RouteInfo(kind))
    if accepted:
        assert r is not None
        assert r.communities == (c(65000, 100),)
        # every accepted block shares one interned set
        assert r is p.evaluate(a, wire("10.244.1.0/26"), IPV4_UNICAST, RouteInfo("static"))
    else:
        assert r is None
