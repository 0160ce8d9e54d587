"""Every way a policy spec can be wrong: the error names the key path and the reason."""

import pytest

from bgpd.policy import PolicyError, compile_policies, compile_policy

T0 = "policies.p.terms[0]"


def term(**kw):
    return {"terms": [kw]}


def match(**kw):
    return term(match=kw)


def sets(**kw):
    return term(set=kw)


CASES = [
    # the policy itself
    ([1], "policies.p", "expected a mapping, got a list"),
    ({"defualt": "accept"}, "policies.p.defualt", "unknown key (did you mean 'default'?"),
    ({"default": "maybe"}, "policies.p.default", "'maybe' is not one of: accept, reject"),
    ({"default": True}, "policies.p.default", "expected accept or reject, got the boolean true"),
    ({"terms": {"a": 1}}, "policies.p.terms", "expected a list of terms, got a mapping"),
    ({"terms": ["x"]}, T0, "expected a mapping, got the string 'x'"),
    # terms
    (term(matches={}), f"{T0}.matches", "unknown key (did you mean 'match'?"),
    (term(name=5), f"{T0}.name", "expected a term name, got the number 5"),
    (
        {"terms": [{"name": "a"}, {"name": "a"}]},
        "policies.p.terms[1].name",
        "duplicate term name 'a' (also terms[0])",
    ),
    (term(action="permit"), f"{T0}.action", "'permit' is not one of: accept, reject, next"),
    (term(match=[1]), f"{T0}.match", "expected a mapping, got a list"),
    (term(set="x"), f"{T0}.set", "expected a mapping, got the string 'x'"),
    (match(comunity=["1:1"]), f"{T0}.match.comunity", "did you mean 'community'?"),
    (match(bogus=1), f"{T0}.match.bogus", "unknown key (known keys: prefix, community"),
    # prefix lists
    (match(prefix=["10.0.0.0/8", 7]), f"{T0}.match.prefix[1]", "expected a prefix"),
    (match(prefix=["10.0.0.0/33"]), f"{T0}.match.prefix[0]", "is not a valid prefix"),
    (match(prefix=["banana"]), f"{T0}.match.prefix[0]", "'banana' is not a valid prefix"),
    (
        match(prefix=["10.0.0.0/8", "10.0.0.1/8"]),
        f"{T0}.match.prefix[1]",
        "'10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)",
    ),
    (
        match(prefix=["10.0.0.0/24 ge 33"]),
        f"{T0}.match.prefix[0]",
        "ge 33 is out of range for this IPv4 prefix (24..32)",
    ),
    (
        match(prefix=["10.0.0.0/24 ge 20"]),
        f"{T0}.match.prefix[0]",
        "ge 20 is out of range for this IPv4 prefix (24..32)",
    ),
    (
        match(prefix=["10.0.0.0/24 le 16"]),
        f"{T0}.match.prefix[0]",
        "le 16 is out of range for this IPv4 prefix (24..32)",
    ),
    (
        match(prefix=["2001:db8::/48 le 129"]),
        f"{T0}.match.prefix[0]",
        "le 129 is out of range for this IPv6 prefix (48..128)",
    ),
    (match(prefix=["10.0.0.0/8 ge 24 le 16"]), f"{T0}.match.prefix[0]", "le 16 is less than ge 24"),
    (match(prefix=["10.0.0.0/8 gt 9"]), f"{T0}.match.prefix[0]", "unknown word 'gt'"),
    (match(prefix=["10.0.0.0/8 ge"]), f"{T0}.match.prefix[0]", "expected 'PREFIX [ge N] [le M]'"),
    (match(prefix=["10.0.0.0/8 ge 9 ge 10"]), f"{T0}.match.prefix[0]", "ge given twice"),
    (match(prefix=["10.0.0.0/8 ge x"]), f"{T0}.match.prefix[0]", "ge needs a prefix length"),
    (match(prefix=[]), f"{T0}.match.prefix", "empty list"),
    (match(prefix={"a": 1}), f"{T0}.match.prefix", "expected a list, got a mapping"),
    (match(prefix=[""]), f"{T0}.match.prefix[0]", "got an empty string"),
    # communities
    (match(community=["65000"]), f"{T0}.match.community[0]", "'65000' is not a community"),
    (match(community=["65536:1"]), f"{T0}.match.community[0]", "65536 is out of range (0..65535)"),
    (match(community=["a:1"]), f"{T0}.match.community[0]", "'a' is not a number"),
    (match(community=["no-exprt"]), f"{T0}.match.community[0]", "one of: no-export"),
    (match(community=[3900001]), f"{T0}.match.community[0]", "quote it in YAML"),
    (match(community=["1:9-5"]), f"{T0}.match.community[0]", "empty range 9-5"),
    (match(community=["1:5-x"]), f"{T0}.match.community[0]", "'5-x' is not a number"),
    (match(community=["1:5-65536"]), f"{T0}.match.community[0]", "65536 is out of range"),
    (sets(community_add=["1:1-2"]), f"{T0}.set.community_add[0]", "ranges are not allowed"),
    (match(large_community=["1:2"]), f"{T0}.match.large_community[0]", "not a large community"),
    (
        match(large_community=["1:2:4294967296"]),
        f"{T0}.match.large_community[0]",
        "4294967296 is out of range (0..4294967295)",
    ),
    (match(large_community=[12345]), f"{T0}.match.large_community[0]", "quote it in YAML"),
    # AS paths
    (match(as_path=["^65001_", "(65001"]), f"{T0}.match.as_path[1]", "bad regex '(65001'"),
    (match(as_path=[65001]), f"{T0}.match.as_path[0]", "expected an AS-path regex, got the number"),
    # route information
    (match(neighbor=["foo"]), f"{T0}.match.neighbor[0]", "'foo' is not a valid address or prefix"),
    (match(neighbor=["10.0.0.1/24"]), f"{T0}.match.neighbor[0]", "has host bits set"),
    (match(source=["bgp", "bird"]), f"{T0}.match.source[1]", "'bird' is not one of: bgp"),
    (match(source="kernal"), f"{T0}.match.source", "'kernal' is not one of"),
    (match(interface=["cali*", "-"]), f"{T0}.match.interface[1]", "nothing after '-'"),
    (match(interface=[None]), f"{T0}.match.interface[0]", "got null"),
    (match(origin="igpp"), f"{T0}.match.origin", "'igpp' is not one of: igp, egp, incomplete"),
    (
        match(next_hop=["nope"]),
        f"{T0}.match.next_hop[0]",
        "'nope' is not a valid address or prefix",
    ),
    (match(family="ipv5"), f"{T0}.match.family", "'ipv5' is not one of: ipv4, ipv6"),
    # set
    (sets(local_prf=1), f"{T0}.set.local_prf", "did you mean 'local_pref'?"),
    (sets(local_pref=-1), f"{T0}.set.local_pref", "-1 is out of range (0..4294967295)"),
    (sets(local_pref=2**32), f"{T0}.set.local_pref", "out of range"),
    (sets(local_pref="high"), f"{T0}.set.local_pref", "expected an integer, got the string"),
    (sets(local_pref=True), f"{T0}.set.local_pref", "got the boolean true"),
    (sets(med="none"), f"{T0}.set.med", "expected an integer or 'remove'"),
    (sets(origin="bgp"), f"{T0}.set.origin", "'bgp' is not one of: igp, egp, incomplete"),
    (sets(next_hop="me"), f"{T0}.set.next_hop", "'me' is not a valid IP address"),
    (sets(next_hop="224.0.0.1"), f"{T0}.set.next_hop", "not a unicast address"),
    (sets(next_hop="0.0.0.0"), f"{T0}.set.next_hop", "not a unicast address"),
    (sets(next_hop=5), f"{T0}.set.next_hop", "expected 'self', 'unchanged' or an address"),
    (sets(as_path_prepend=0), f"{T0}.set.as_path_prepend", "0 is out of range (1..32)"),
    (sets(as_path_prepend=33), f"{T0}.set.as_path_prepend", "33 is out of range (1..32)"),
    (sets(as_path_prepend="2"), f"{T0}.set.as_path_prepend", "expected a count or a list"),
    (sets(as_path_prepend=[]), f"{T0}.set.as_path_prepend", "expected 1..32 AS numbers, got 0"),
    (sets(as_path_prepend=[65000, 0]), f"{T0}.set.as_path_prepend[1]", "0 is out of range"),
    (sets(community_add=["65000:*"]), f"{T0}.set.community_add[0]", "wildcards are not allowed"),
    (sets(community_add=[]), f"{T0}.set.community_add", "empty list"),
    (sets(community_set=["x"]), f"{T0}.set.community_set[0]", "'x' is not a community"),
    (sets(community_remove=["1:2:3"]), f"{T0}.set.community_remove[0]", "is not a community"),
    (
        sets(large_community_add=["1:*:3"]),
        f"{T0}.set.large_community_add[0]",
        "wildcards are not allowed",
    ),
    (
        sets(large_community_remove=["1:2"]),
        f"{T0}.set.large_community_remove[0]",
        "not a large community",
    ),
    (sets(large_community_set=[1]), f"{T0}.set.large_community_set[0]", "got the number 1"),
]


@pytest.mark.parametrize("spec, key_path, reason", CASES)
def test_policy_error(spec, key_path, reason):
    with pytest.raises(PolicyError) as info:
        compile_policy("p", spec)
    e = info.value
    assert e.key_path == key_path
    assert reason in e.reason
    assert str(e) == f"{key_path}: {e.reason}"


def test_compile_policies_errors():
    with pytest.raises(PolicyError) as info:
        compile_policies([1])
    assert (info.value.key_path, info.value.reason) == (
        "policies",
        "expected a mapping, got a list",
    )
    with pytest.raises(PolicyError) as info:
        compile_policies({5: {}})
    assert info.value.key_path == "policies"
    assert "policy names must be non-empty strings" in info.value.reason
    with pytest.raises(PolicyError) as info:
        compile_policies({"good": {}, "calico-export": {"terms": [{"match": {"prefix": ["x"]}}]}})
    assert info.value.key_path == "policies.calico-export.terms[0].match.prefix[0]"


def test_policy_error_is_a_value_error():
    e = PolicyError("policies.x", "bad")
    assert isinstance(e, ValueError)
    assert (e.key_path, e.reason, str(e)) == ("policies.x", "bad", "policies.x: bad")


def test_valid_edge_values_compile():
    # values at the limits are accepted
    compile_policy(
        "p",
        {
            "terms": [
                {
                    "match": {
                        "prefix": ["0.0.0.0/0 ge 0 le 32", "::/0 le 128", "10.0.0.0/8 ge 8"],
                        "community": ["0:0", "65535:65535", "*:*"],
                        "large_community": ["0:0:0", "4294967295:4294967295:4294967295"],
                    },
                    "set": {
                        "local_pref": 0,
                        "med": 4294967295,
                        "as_path_prepend": 32,
                        "community_set": [],
                        "community_remove": ["*:*"],
                    },
                    "action": "NEXT",
                }
            ]
        },
    )
