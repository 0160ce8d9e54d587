"""Each match condition on its own: prefix lists, communities, AS paths, route information."""

import ipaddress
import random

import pytest
from policy_helpers import attrs, fam, matches, one, run, wire

from bgpd.policy import RouteInfo, as_path_text
from bgpd.wire.constants import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    NO_ADVERTISE,
    NO_EXPORT,
    NO_EXPORT_SUBCONFED,
)

# --- prefix lists ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, prefix, expected",
    [
        # exact
        ("10.0.0.0/24", "10.0.0.0/24", True),
        ("10.0.0.0/24", "10.0.0.0/25", False),
        ("10.0.0.0/24", "10.0.0.0/23", False),
        ("10.0.0.0/24", "10.0.1.0/24", False),
        # ge N le N: exactly the /26 blocks of a /16
        ("10.244.0.0/16 ge 26 le 26", "10.244.3.64/26", True),
        ("10.244.0.0/16 ge 26 le 26", "10.244.0.0/26", True),
        ("10.244.0.0/16 ge 26 le 26", "10.244.255.192/26", True),
        ("10.244.0.0/16 ge 26 le 26", "10.244.3.0/25", False),
        ("10.244.0.0/16 ge 26 le 26", "10.244.3.64/27", False),
        ("10.244.0.0/16 ge 26 le 26", "10.244.0.0/16", False),
        ("10.244.0.0/16 ge 26 le 26", "10.245.3.64/26", False),
        ("10.244.0.0/16 ge 26 le 26", "10.0.0.0/8", False),
        # ge only: up to the host length
        ("10.0.0.0/8 ge 24", "10.1.2.0/24", True),
        ("10.0.0.0/8 ge 24", "10.1.2.3/32", True),
        ("10.0.0.0/8 ge 24", "10.1.0.0/16", False),
        # le only: from the prefix's own length
        ("10.0.0.0/8 le 16", "10.0.0.0/8", True),
        ("10.128.0.0/9", "10.128.0.0/9", True),
        ("10.0.0.0/8 le 16", "10.200.0.0/16", True),
        ("10.0.0.0/8 le 16", "10.200.0.0/17", False),
        ("10.0.0.0/8 le 16", "11.0.0.0/16", False),
        # lengths that are not octet multiples
        ("10.128.0.0/9 ge 9 le 12", "10.144.0.0/12", True),
        ("10.128.0.0/9 ge 9 le 12", "10.0.0.0/12", False),
        ("172.16.0.0/12 le 20", "172.31.240.0/20", True),
        ("172.16.0.0/12 le 20", "172.32.0.0/20", False),
        # /0
        ("0.0.0.0/0", "0.0.0.0/0", True),
        ("0.0.0.0/0", "10.0.0.0/8", False),
        ("0.0.0.0/0 le 32", "0.0.0.0/0", True),
        ("0.0.0.0/0 le 32", "203.0.113.7/32", True),
        ("0.0.0.0/0 ge 25", "203.0.113.0/24", False),
        ("0.0.0.0/0 ge 25", "203.0.113.128/25", True),
        # host routes
        ("192.0.2.1/32", "192.0.2.1/32", True),
        ("192.0.2.1", "192.0.2.1/32", True),
        ("192.0.2.1/32", "192.0.2.2/32", False),
        ("192.0.2.0/24 ge 32", "192.0.2.77/32", True),
        ("192.0.2.0/24 ge 32", "192.0.3.77/32", False),
        # IPv6
        ("2001:db8::/48 le 64", "2001:db8::/48", True),
        ("2001:db8::/48 le 64", "2001:db8:0:ff00::/56", True),
        ("2001:db8::/48 le 64", "2001:db8:0:1::/64", True),
        ("2001:db8::/48 le 64", "2001:db8:0:1::/65", False),
        ("2001:db8::/48 le 64", "2001:db8:1::/48", False),
        ("2001:db8::/48 le 64", "2001:db8::/47", False),
        ("2001:db8:8000::/33 ge 40", "2001:db8:ff00::/40", True),
        ("2001:db8:8000::/33 ge 40", "2001:db8:7f00::/40", False),
        ("::/0", "::/0", True),
        ("::/0", "2001:db8::/32", False),
        ("::/0 le 128", "2001:db8::1/128", True),
        ("2001:db8::1/128", "2001:db8::1/128", True),
        ("2001:db8::1", "2001:db8::1/128", True),
        ("2001:db8::1/128", "2001:db8::2/128", False),
        ("2001:db8::/64 ge 128", "2001:db8::abcd/128", True),
        # families never mix
        ("0.0.0.0/0 le 32", "::/0", False),
        ("::/0 le 128", "0.0.0.0/0", False),
        ("::/0 le 128", "10.0.0.0/8", False),
    ],
)
def test_prefix_entry(entry, prefix, expected):
    assert matches({"prefix": [entry]}, prefix) is expected


def test_prefix_list_is_any_of_and_mixes_families():
    m = {"prefix": ["10.0.0.0/8 le 16", "2001:db8::/32 le 48", "192.0.2.0/24 ge 32"]}
    assert matches(m, "10.1.0.0/16")
    assert matches(m, "2001:db8:1::/48")
    assert matches(m, "192.0.2.9/32")
    assert not matches(m, "192.0.2.0/24")
    assert not matches(m, "2001:db8::/64")
    assert matches({"prefix": "10.0.0.0/8"}, "10.0.0.0/8")  # a single string is a list of one


def test_prefix_list_overlapping_entries_same_network():
    # two entries for the same network with disjoint length ranges
    m = {"prefix": ["10.0.0.0/8 ge 16 le 16", "10.0.0.0/8 ge 24 le 24"]}
    assert matches(m, "10.1.0.0/16")
    assert matches(m, "10.1.2.0/24")
    assert not matches(m, "10.1.0.0/20")


def _reference(entry: str, prefix: str) -> bool:
    words = entry.split()
    net = ipaddress.ip_network(words[0])
    p = ipaddress.ip_network(prefix)
    opts = dict(zip(words[1::2], map(int, words[2::2]), strict=True))
    top = net.max_prefixlen
    ge = opts.get("ge", net.prefixlen)
    le = opts.get("le", top if "ge" in opts else net.prefixlen)
    if "ge" not in opts and "le" not in opts:
        ge = le = net.prefixlen
    return p.version == net.version and p.subnet_of(net) and ge <= p.prefixlen <= le


def test_prefix_list_against_ipaddress_reference():
    rng = random.Random(7)

    def rand_net(v6: bool, lo=0, hi=None):
        bits = 128 if v6 else 32
        n = rng.randint(lo, hi if hi is not None else bits)
        base = rng.choice((0x20010DB8 << 96, 10 << 120)) if v6 else rng.choice((10 << 24, 0))
        addr = base | rng.getrandbits(bits - 8) if rng.random() < 0.5 else rng.getrandbits(bits)
        return ipaddress.ip_network((addr, n), strict=False)

    entries = []
    for _ in range(30):
        v6 = rng.random() < 0.4
        net = rand_net(v6, 0, 24 if not v6 else 64)
        top = net.max_prefixlen
        r = rng.random()
        if r < 0.3:
            entries.append(str(net))
        else:
            ge = rng.randint(net.prefixlen, top)
            le = rng.randint(ge, top)
            entries.append(f"{net} ge {ge} le {le}" if r < 0.7 else f"{net} le {le}")
    p = one({"prefix": entries})
    # prefixes: random ones plus sub-prefixes of the entries (so that hits are common)
    prefixes = [rand_net(rng.random() < 0.4) for _ in range(300)]
    for e in entries:
        net = ipaddress.ip_network(e.split()[0])
        for _ in range(10):
            plen = rng.randint(net.prefixlen, net.max_prefixlen)
            host = rng.getrandbits(net.max_prefixlen - net.prefixlen)
            prefixes.append(
                ipaddress.ip_network((int(net.network_address) | host, plen), strict=False)
            )
    hits = 0
    for net in prefixes:
        text = str(net)
        want = any(_reference(e, text) for e in entries)
        got = p.evaluate(attrs(), wire(text), fam(text), RouteInfo()) is not None
        assert got is want, (text, entries)
        hits += want
    assert hits > 50


# --- communities ----------------------------------------------------------------------------


def c(a, b):
    return a << 16 | b


@pytest.mark.parametrize(
    "pattern, comms, expected",
    [
        ("65000:100", [c(65000, 100)], True),
        ("65000:100", [c(65000, 101), c(1, 100)], False),
        ("65000:100", [c(1, 1), c(65000, 100)], True),
        ("65000:100", [], False),
        ("no-export", [NO_EXPORT], True),
        ("NO_EXPORT", [NO_EXPORT], True),
        ("no-advertise", [NO_ADVERTISE], True),
        ("no-export-subconfed", [NO_EXPORT_SUBCONFED], True),
        ("local-as", [NO_EXPORT_SUBCONFED], True),
        ("no-export", [NO_ADVERTISE], False),
        ("blackhole", [c(65535, 666)], True),
        ("graceful-shutdown", [c(65535, 0)], True),
        ("65535:65281", [NO_EXPORT], True),
        ("65000:*", [c(65000, 7)], True),
        ("65000:*", [c(65001, 7)], False),
        ("*:100", [c(1, 100)], True),
        ("*:100", [c(100, 1)], False),
        ("*:*", [c(9, 9)], True),
        ("*:*", [], False),
        ("0:0", [0], True),
        ("65000:100-199", [c(65000, 150)], True),
        ("65000:100-199", [c(65000, 100)], True),
        ("65000:100-199", [c(65000, 199)], True),
        ("65000:100-199", [c(65000, 200)], False),
        ("65000:100-199", [c(65001, 150)], False),
        ("64512-65534:*", [c(64600, 1)], True),
        ("64512-65534:*", [c(65535, 1)], False),
        ("64512-65534:7-8", [c(64600, 8)], True),
        ("64512-65534:7-8", [c(64600, 9)], False),
    ],
)
def test_community(pattern, comms, expected):
    assert matches({"community": [pattern]}, a=attrs(communities=comms)) is expected


def test_community_list_any_of():
    m = {"community": ["65000:100", "no-export", "64999:*"]}
    assert matches(m, a=attrs(communities=[NO_EXPORT]))
    assert matches(m, a=attrs(communities=[c(64999, 3)]))
    assert not matches(m, a=attrs(communities=[c(64998, 3)]))


@pytest.mark.parametrize(
    "pattern, comms, expected",
    [
        ("64512:1:2", [(64512, 1, 2)], True),
        ("64512:1:2", [(64512, 1, 3)], False),
        ("64512:1:2", [], False),
        ("4294967295:4294967295:0", [(2**32 - 1, 2**32 - 1, 0)], True),
        ("64512:*:2", [(64512, 99, 2)], True),
        ("64512:*:2", [(64512, 99, 3)], False),
        ("*:1:*", [(5, 1, 6)], True),
        ("*:*:7", [(5, 1, 6), (1, 1, 7)], True),
        ("*:*:*", [(5, 1, 6)], True),
        ("*:*:*", [], False),
        ("64512:100-199:*", [(64512, 150, 9)], True),
        ("64512:100-199:*", [(64512, 99, 9)], False),
        ("4200000000-4294967294:1:1", [(4200000001, 1, 1)], True),
        ("4200000000-4294967294:1:1", [(4199999999, 1, 1)], False),
    ],
)
def test_large_community(pattern, comms, expected):
    assert matches({"large_community": [pattern]}, a=attrs(large_communities=comms)) is expected


# --- AS paths -------------------------------------------------------------------------------


def test_as_path_text():
    assert as_path_text(None) == ""
    assert as_path_text(()) == ""
    assert as_path_text(((AS_SEQUENCE, (65001, 65002)),)) == "65001 65002"
    path = (
        (AS_CONFED_SEQUENCE, (65010, 65011)),
        (AS_CONFED_SET, (65012, 65013)),
        (AS_SEQUENCE, (65001,)),
        (AS_SET, (65004, 65005)),
    )
    assert as_path_text(path) == "(65010 65011) [65012,65013] 65001 {65004,65005}"


@pytest.mark.parametrize(
    "regex, path, expected",
    [
        ("^65001 ", [65001, 65002], True),
        ("^65001 ", [65001], False),  # a space must follow
        ("^65001_", [65001], True),
        ("^65001_", [650011], False),
        ("_65002$", [65001, 65002], True),
        ("_65002$", [65001, 165002], False),
        ("_65002$", [65002], True),
        ("^$", [], True),
        ("^$", None, True),
        ("^$", [65001], False),
        ("_65003_", [65003], True),
        ("_65003_", [1, 65003, 2], True),
        ("_65003_", [1, 650033, 2], False),
        ("_65003_", [1, 165003], False),
        ("^65001_65002_", [65001, 65002, 65003], True),
        ("^65001_65002_", [65001, 65003, 65002], False),
        ("^(65001_)+$", [65001, 65001, 65001], True),  # prepends only
        ("^(65001_)+$", [65001, 65001, 65002], False),
        ("_6500[0-9]$", [1, 65007], True),
        (r"^\d+$", [64512], True),
        (r"^\d+$", [64512, 1], False),
        ("65002", [165002], True),  # a bare number is a substring search, as in FRR
        (".*", None, True),
    ],
)
def test_as_path_regex(regex, path, expected):
    a = attrs(path=path) if path is not None else attrs()
    assert matches({"as_path": [regex]}, a=a) is expected


def test_as_path_underscore_matches_set_and_confed_delimiters():
    a = attrs(as_path=((AS_SEQUENCE, (65001,)), (AS_SET, (65004, 65005))))
    assert matches({"as_path": ["_65005_"]}, a=a)
    assert matches({"as_path": ["_65004_"]}, a=a)
    assert not matches({"as_path": ["^65004"]}, a=a)
    b = attrs(as_path=((AS_CONFED_SEQUENCE, (65010,)), (AS_SEQUENCE, (65001,))))
    assert matches({"as_path": ["_65010_"]}, a=b)
    assert matches({"as_path": ["_65001$"]}, a=b)


def test_as_path_list_any_of_and_text_cached_on_set():
    a = attrs(path=[65001, 65002])
    m = {"as_path": ["^64999_", "_65002$"]}
    assert matches(m, a=a)
    assert a.cache[("policy", "as_path_text")] == "65001 65002"


# --- route information ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "neighbor, expected",
    [
        ("192.0.2.1", True),
        ("192.0.2.2", False),
        ("10.0.0.77", True),
        ("10.0.1.1", False),
        ("2001:db8::1", True),
        ("2001:DB8::1", True),
        ("fe80::1%eth0", False),
        (None, False),
    ],
)
def test_neighbor(neighbor, expected):
    m = {"neighbor": ["192.0.2.1", "10.0.0.0/24", "2001:db8::/64"]}
    assert matches(m, route=RouteInfo(neighbor=neighbor)) is expected


def test_neighbor_memo_is_consistent():
    p = one({"neighbor": ["192.0.2.1"]})
    for _ in range(3):
        assert run(p, route=RouteInfo(neighbor="192.0.2.1")) is not None
        assert run(p, route=RouteInfo(neighbor="192.0.2.9")) is None


@pytest.mark.parametrize("kind", ["bgp", "static", "kernel", "connected", "local"])
def test_source(kind):
    assert matches({"source": [kind]}, route=RouteInfo(kind))
    others = [k for k in ("bgp", "static", "kernel", "connected", "local") if k != kind]
    assert not matches({"source": others}, route=RouteInfo(kind))
    assert matches({"source": kind}, route=RouteInfo(kind))


@pytest.mark.parametrize(
    "globs, name, expected",
    [
        (["cali*", "-kube*"], "cali1234abcd", True),
        (["cali*", "-kube*"], "kube-ipvs0", False),
        (["cali*", "-kube*"], "eth0", False),  # no rule matched
        (["-kube*", "*"], "eth0", True),
        (["-kube*", "*"], "kube-ipvs0", False),
        # first match wins
        (["-cali1*", "cali*"], "cali1abc", False),
        (["-cali1*", "cali*"], "cali2abc", True),
        (["cali*", "-cali1*"], "cali1abc", True),
        # exclusions only: everything else matches
        (["-lo", "-docker*"], "eth0", True),
        (["-lo", "-docker*"], "lo", False),
        (["-lo", "-docker*"], "docker0", False),
        # glob syntax
        (["eth?"], "eth1", True),
        (["eth?"], "eth10", False),
        (["vxlan.calico"], "vxlan.calico", True),
        (["vxlan.calico"], "vxlanxcalico", False),
        (["tunl[0-9]"], "tunl0", True),
        # routes without an interface never match
        (["*"], None, False),
        (["-lo"], None, False),
    ],
)
def test_interface(globs, name, expected):
    assert matches({"interface": globs}, route=RouteInfo("kernel", interface=name)) is expected


@pytest.mark.parametrize(
    "spec, origin, expected",
    [
        ("igp", 0, True),
        ("igp", 1, False),
        ("egp", 1, True),
        ("incomplete", 2, True),
        ("IGP", 0, True),
        (["igp", "incomplete"], 2, True),
        (["igp", "incomplete"], 1, False),
        ("igp", None, False),
    ],
)
def test_origin(spec, origin, expected):
    assert matches({"origin": spec}, a=attrs(origin=origin)) is expected


def test_next_hop():
    m = {"next_hop": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]}
    v4 = bytes([192, 0, 2, 9])
    assert matches(m, a=attrs(next_hop=v4))
    assert matches(m, a=attrs(next_hop=bytes([198, 51, 100, 7])))
    assert not matches(m, a=attrs(next_hop=bytes([198, 51, 100, 8])))
    assert not matches(m, a=attrs())
    g = ipaddress.ip_address("2001:db8::5").packed
    ll = ipaddress.ip_address("fe80::1").packed
    assert matches(m, "2001:db8::/48", a=attrs(next_hop=g))
    assert matches(m, "2001:db8::/48", a=attrs(next_hop=g + ll))  # global + link-local
    assert not matches(m, "2001:db8::/48", a=attrs(next_hop=ll))


def test_next_hop_self():
    me = bytes([192, 0, 2, 1])
    a = attrs(next_hop=me)
    assert matches({"next_hop": ["self"]}, a=a, route=RouteInfo(next_hop_self=me))
    assert not matches({"next_hop": ["self"]}, a=a, route=RouteInfo(next_hop_self=b"\1\1\1\1"))
    assert not matches({"next_hop": ["self"]}, a=a, route=RouteInfo())


def test_family():
    assert matches({"family": "ipv4"}, "10.0.0.0/8")
    assert not matches({"family": "ipv4"}, "2001:db8::/32")
    assert matches({"family": ["ipv6"]}, "2001:db8::/32")


def test_conditions_of_a_term_all_hold():
    m = {"prefix": ["10.0.0.0/8 le 32"], "community": ["65000:1"], "source": ["bgp"]}
    good = attrs(communities=[c(65000, 1)])
    assert matches(m, "10.1.0.0/16", a=good, route=RouteInfo("bgp"))
    assert not matches(m, "11.1.0.0/16", a=good, route=RouteInfo("bgp"))
    assert not matches(m, "10.1.0.0/16", a=attrs(), route=RouteInfo("bgp"))
    assert not matches(m, "10.1.0.0/16", a=good, route=RouteInfo("static"))


def test_empty_match_matches_everything():
    assert matches({}, "2001:db8::/32")
    assert matches(None, "10.0.0.0/8")
